//! How engine values map to SQLite columns: timestamps as unix milliseconds, ids and enums as
//! their text forms, counts and positions as INTEGER. Every stored value was valid when it was
//! written, so one that no longer parses means the file was changed behind Herald's back; it
//! surfaces as `Unavailable` like any other storage failure.

use std::error::Error;

use herald_engine::store::StoreError;
use herald_engine::validate::Invalid;
use rusqlite::Row;
use rusqlite::types::Type;
use time::OffsetDateTime;

/// A storage failure as the port reports it. The text names what failed (SQLite's own message
/// names tables and columns, never bound values), so it carries no tokens, secrets or message
/// text.
pub(crate) fn db(error: rusqlite::Error) -> StoreError {
    StoreError::Unavailable(format!("sqlite: {error}"))
}

pub(crate) fn millis(at: OffsetDateTime) -> i64 {
    // The time crate's range (±9999 years) is about 3e14 ms: it always fits.
    at.unix_timestamp_nanos().div_euclid(1_000_000) as i64
}

/// `at` as it reads back from the store (millisecond precision, UTC).
pub(crate) fn stored_time(at: OffsetDateTime) -> Result<OffsetDateTime, StoreError> {
    from_millis(millis(at)).map_err(|_| StoreError::Unavailable("time out of range".into()))
}

fn from_millis(ms: i64) -> Result<OffsetDateTime, time::error::ComponentRange> {
    OffsetDateTime::from_unix_timestamp_nanos(i128::from(ms) * 1_000_000)
}

/// SQLite integers are signed; positions and counts never come near `i64::MAX`, so
/// saturating keeps comparisons right for any `u64` a caller passes.
pub(crate) fn int(n: u64) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}

pub(crate) fn time_at(row: &Row<'_>, idx: usize) -> rusqlite::Result<OffsetDateTime> {
    from_millis(row.get(idx)?).map_err(|e| conversion(idx, Type::Integer, e))
}

pub(crate) fn opt_time_at(row: &Row<'_>, idx: usize) -> rusqlite::Result<Option<OffsetDateTime>> {
    match row.get::<_, Option<i64>>(idx)? {
        Some(ms) => from_millis(ms)
            .map(Some)
            .map_err(|e| conversion(idx, Type::Integer, e)),
        None => Ok(None),
    }
}

pub(crate) fn count_at(row: &Row<'_>, idx: usize) -> rusqlite::Result<u64> {
    let n: i64 = row.get(idx)?;
    u64::try_from(n).map_err(|e| conversion(idx, Type::Integer, e))
}

/// A text column parsed into an engine value (an id, an enum).
pub(crate) fn parsed_at<T, E>(
    row: &Row<'_>,
    idx: usize,
    parse: impl FnOnce(String) -> Result<T, E>,
) -> rusqlite::Result<T>
where
    E: Error + Send + Sync + 'static,
{
    parse(row.get(idx)?).map_err(|e| conversion(idx, Type::Text, e))
}

/// For enums whose `parse` answers `Option`.
pub(crate) fn known<T>(value: Option<T>, what: &str) -> Result<T, Invalid> {
    value.ok_or_else(|| Invalid::new("", format!("unknown {what}")))
}

pub(crate) fn conversion(
    idx: usize,
    ty: Type,
    e: impl Error + Send + Sync + 'static,
) -> rusqlite::Error {
    rusqlite::Error::FromSqlConversionFailure(idx, ty, Box::new(e))
}

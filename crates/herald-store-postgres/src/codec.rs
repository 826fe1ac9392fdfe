//! How engine values map to PostgreSQL columns (timestamps as unix milliseconds, ids and enums
//! as text, counts and positions as BIGINT, documents as JSON text), and the few helpers every
//! module runs statements through (each statement is prepared once per connection).

use std::fmt::Display;

use deadpool_postgres::Transaction;
use herald_engine::store::StoreError;
use herald_engine::validate::Invalid;
use serde::Serialize;
use serde::de::DeserializeOwned;
use time::OffsetDateTime;
use tokio_postgres::Row;
use tokio_postgres::types::{FromSql, ToSql};

pub(crate) type Tx<'a> = Transaction<'a>;
pub(crate) type Params<'a> = [&'a (dyn ToSql + Sync)];

/// A storage failure as the port reports it: the SQLSTATE and PostgreSQL's message (which
/// names tables and constraints, never bound values — the DETAIL line that may quote them is
/// left out).
pub(crate) fn db(error: tokio_postgres::Error) -> StoreError {
    match error.as_db_error() {
        Some(e) => {
            StoreError::Unavailable(format!("postgres {}: {}", e.code().code(), e.message()))
        }
        None => match std::error::Error::source(&error) {
            Some(cause) => StoreError::Unavailable(format!("postgres: {error}: {cause}")),
            None => StoreError::Unavailable(format!("postgres: {error}")),
        },
    }
}

/// A deadlock, a serialization failure or a unique-key race (two nodes inserting the same key
/// at once; every insert checks for the key first, so only a race gets here): the transaction
/// can simply run again, and the next run sees what the other committed.
pub(crate) fn retryable(error: &StoreError) -> bool {
    const RETRYABLE: [&str; 3] = ["postgres 40P01:", "postgres 40001:", "postgres 23505:"];
    matches!(error, StoreError::Unavailable(m) if RETRYABLE.iter().any(|code| m.starts_with(code)))
}

/// A stored value that no longer parses: the database was changed behind Herald's back.
pub(crate) fn corrupt(what: &str, error: impl Display) -> StoreError {
    StoreError::Unavailable(format!("stored {what}: {error}"))
}

pub(crate) fn millis(at: OffsetDateTime) -> i64 {
    // The time crate's range (±9999 years) is about 3e14 ms: it always fits.
    at.unix_timestamp_nanos().div_euclid(1_000_000) as i64
}

pub(crate) fn from_millis(ms: i64) -> Result<OffsetDateTime, StoreError> {
    OffsetDateTime::from_unix_timestamp_nanos(i128::from(ms) * 1_000_000)
        .map_err(|e| corrupt("time", e))
}

/// `at` as it reads back from the store (millisecond precision, UTC).
pub(crate) fn stored_time(at: OffsetDateTime) -> Result<OffsetDateTime, StoreError> {
    from_millis(millis(at))
}

/// Positions and counts never come near `i64::MAX`; saturating keeps comparisons right for any
/// `u64` a caller passes.
pub(crate) fn int(n: u64) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}

pub(crate) fn limit(n: usize) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}

pub(crate) fn get<'a, T: FromSql<'a>>(row: &'a Row, idx: usize) -> Result<T, StoreError> {
    row.try_get(idx).map_err(db)
}

pub(crate) fn time_at(row: &Row, idx: usize) -> Result<OffsetDateTime, StoreError> {
    from_millis(get(row, idx)?)
}

pub(crate) fn opt_time_at(row: &Row, idx: usize) -> Result<Option<OffsetDateTime>, StoreError> {
    get::<Option<i64>>(row, idx)?.map(from_millis).transpose()
}

pub(crate) fn count_at(row: &Row, idx: usize) -> Result<u64, StoreError> {
    u64::try_from(get::<i64>(row, idx)?).map_err(|e| corrupt("count", e))
}

/// A text column parsed into an engine value (an id, an enum).
pub(crate) fn parsed_at<T, E: Display>(
    row: &Row,
    idx: usize,
    parse: impl FnOnce(String) -> Result<T, E>,
) -> Result<T, StoreError> {
    parse(get(row, idx)?).map_err(|e| corrupt("value", e))
}

pub(crate) fn json_at<T: DeserializeOwned>(row: &Row, idx: usize) -> Result<T, StoreError> {
    serde_json::from_str(get(row, idx)?).map_err(|e| corrupt("document", e))
}

pub(crate) fn to_json(value: &impl Serialize) -> Result<String, StoreError> {
    serde_json::to_string(value).map_err(|e| StoreError::Unavailable(format!("json: {e}")))
}

/// For enums whose `parse` answers `Option`.
pub(crate) fn known<T>(value: Option<T>, what: &str) -> Result<T, Invalid> {
    value.ok_or_else(|| Invalid::new("", format!("unknown {what}")))
}

pub(crate) async fn query(
    tx: &Tx<'_>,
    sql: &str,
    params: &Params<'_>,
) -> Result<Vec<Row>, StoreError> {
    let stmt = tx.prepare_cached(sql).await.map_err(db)?;
    tx.query(&stmt, params).await.map_err(db)
}

pub(crate) async fn query_opt(
    tx: &Tx<'_>,
    sql: &str,
    params: &Params<'_>,
) -> Result<Option<Row>, StoreError> {
    let stmt = tx.prepare_cached(sql).await.map_err(db)?;
    tx.query_opt(&stmt, params).await.map_err(db)
}

pub(crate) async fn query_one(
    tx: &Tx<'_>,
    sql: &str,
    params: &Params<'_>,
) -> Result<Row, StoreError> {
    let stmt = tx.prepare_cached(sql).await.map_err(db)?;
    tx.query_one(&stmt, params).await.map_err(db)
}

/// Runs one statement; answers how many rows it changed.
pub(crate) async fn execute(
    tx: &Tx<'_>,
    sql: &str,
    params: &Params<'_>,
) -> Result<u64, StoreError> {
    let stmt = tx.prepare_cached(sql).await.map_err(db)?;
    tx.execute(&stmt, params).await.map_err(db)
}

/// Maps every row, stopping at the first that does not read back.
pub(crate) fn rows<T>(
    rows: Vec<Row>,
    from: impl Fn(&Row) -> Result<T, StoreError>,
) -> Result<Vec<T>, StoreError> {
    rows.iter().map(from).collect()
}

//! The engine lease on PostgreSQL: one row, taken and renewed with one upsert, checked by every
//! fenced engine commit under `FOR SHARE`. A node taking the lease over has to update the row,
//! which waits for every commit holding that share lock: a commit that passed the check
//! finishes before the lease changes hands, and one that starts after fails the check. Times
//! are the database's (`clock_timestamp()`), so the nodes' clocks do not matter.

use std::time::Duration;

use async_trait::async_trait;
use herald_engine::lease::{EngineLease, Fence};
use herald_engine::store::StoreError;

use crate::codec::{Tx, execute, get, query_opt};
use crate::{PostgresStore, write_tx};

/// The database's now, in unix milliseconds.
const NOW_MS: &str = "(extract(epoch from clock_timestamp()) * 1000)::bigint";

#[async_trait]
impl EngineLease for PostgresStore {
    async fn acquire(&self, holder: &str, ttl: Duration) -> Result<Option<Fence>, StoreError> {
        let ttl = i64::try_from(ttl.as_millis()).unwrap_or(i64::MAX);
        // Renewing in time keeps the epoch; taking it (from another node, or back after
        // running out) moves it on, which fences every commit decided under the old one.
        let sql = format!(
            "INSERT INTO engine_lease (id, holder, epoch, expires_at) VALUES (1, $1, 1, {NOW_MS} + $2)
             ON CONFLICT (id) DO UPDATE SET
                 holder = excluded.holder,
                 epoch = CASE WHEN engine_lease.holder = excluded.holder
                                   AND engine_lease.expires_at > {NOW_MS}
                              THEN engine_lease.epoch ELSE engine_lease.epoch + 1 END,
                 expires_at = excluded.expires_at
             WHERE engine_lease.holder = excluded.holder OR engine_lease.expires_at <= {NOW_MS}
             RETURNING epoch"
        );
        write_tx!(self, |tx| async {
            let row = query_opt(&tx, &sql, &[&holder, &ttl]).await?;
            row.map(|row| {
                Ok(Fence {
                    holder: holder.to_string(),
                    epoch: get(&row, 0)?,
                })
            })
            .transpose()
        }
        .await)
    }

    async fn release(&self, fence: &Fence) -> Result<(), StoreError> {
        let sql = format!(
            "UPDATE engine_lease SET expires_at = {NOW_MS} WHERE id = 1 AND holder = $1 AND epoch = $2"
        );
        write_tx!(self, |tx| execute(
            &tx,
            &sql,
            &[&fence.holder, &fence.epoch]
        )
        .await
        .map(drop))
    }
}

/// Inside an engine commit's transaction: fails with `Fenced` unless `fence` still holds an
/// unexpired lease, and keeps it from changing hands until the transaction ends.
pub(crate) async fn check(tx: &Tx<'_>, fence: &Fence) -> Result<(), StoreError> {
    let sql = format!(
        "SELECT 1 FROM engine_lease
         WHERE id = 1 AND holder = $1 AND epoch = $2 AND expires_at > {NOW_MS}
         FOR SHARE"
    );
    match query_opt(tx, &sql, &[&fence.holder, &fence.epoch]).await? {
        Some(_) => Ok(()),
        None => Err(StoreError::Fenced),
    }
}

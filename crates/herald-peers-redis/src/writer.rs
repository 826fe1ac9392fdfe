//! The one queue a node's writes to Redis leave from: in order (a user's views and the bus
//! messages keep the order the node made them in), pipelined in batches.

use std::time::Duration;

use redis::aio::ConnectionManager;
use tokio::sync::mpsc;

use crate::wire::Keys;

/// The most writes sent in one pipeline.
const BATCH: usize = 256;

/// How long a user's hash outlives its last write: views of users who never come back are
/// forgotten eventually (a live node's view is rewritten at every change).
const VIEW_TTL_MS: i64 = 24 * 3600 * 1000;

/// Instances whose liveness ran out this long ago leave the live set for good.
const FORGET_NODES_MS: i64 = 3600 * 1000;

#[derive(Debug)]
pub enum Op {
    Publish(String),
    View { key: String, value: String },
    Heartbeat,
}

pub fn now_ms() -> i64 {
    (time::OffsetDateTime::now_utc().unix_timestamp_nanos() / 1_000_000) as i64
}

pub async fn run(
    mut conn: ConnectionManager,
    keys: Keys,
    instance: String,
    liveness: Duration,
    mut queue: mpsc::UnboundedReceiver<Op>,
) {
    let liveness_ms = i64::try_from(liveness.as_millis()).unwrap_or(i64::MAX);
    let mut ops = Vec::with_capacity(BATCH);
    while queue.recv_many(&mut ops, BATCH).await > 0 {
        let mut pipe = redis::pipe();
        for op in ops.drain(..) {
            match op {
                Op::Publish(payload) => {
                    pipe.cmd("PUBLISH").arg(keys.bus()).arg(payload).ignore();
                }
                Op::View { key, value } => {
                    pipe.cmd("HSET")
                        .arg(&key)
                        .arg(&instance)
                        .arg(value)
                        .ignore();
                    pipe.cmd("PEXPIRE").arg(&key).arg(VIEW_TTL_MS).ignore();
                }
                Op::Heartbeat => {
                    let now = now_ms();
                    pipe.cmd("ZADD")
                        .arg(keys.nodes())
                        .arg(now + liveness_ms)
                        .arg(&instance)
                        .ignore();
                    pipe.cmd("ZREMRANGEBYSCORE")
                        .arg(keys.nodes())
                        .arg("-inf")
                        .arg(now - FORGET_NODES_MS)
                        .ignore();
                    // A cluster whose nodes all stopped leaves nothing behind for good.
                    pipe.cmd("PEXPIRE")
                        .arg(keys.nodes())
                        .arg(FORGET_NODES_MS)
                        .ignore();
                }
            }
        }
        if let Err(e) = pipe.query_async::<()>(&mut conn).await {
            tracing::warn!(error.message = %e, "writing to redis failed; the other nodes miss these updates");
            metrics::counter!("herald_cluster_write_failures_total").increment(1);
        }
    }
}

//! The delivery worker: one claim loop per node and one task per claimed delivery.
//!
//! The loop claims due deliveries (up to `delivery.batch`, while fewer than
//! `delivery.max_in_flight` are in flight here), enters each in its collapse-key lane
//! ([`super::order`]) in claim order, starts a task for each ([`super::decide`] decides it,
//! [`super::settle`] settles it), then sleeps until the queue's next due time, a
//! wake-up (`DeliveryCore::wake`, after new deliveries are committed or a delivery was
//! rescheduled), or `delivery.poll_ms`.
//!
//! A settlement that fails to commit leaves the delivery leased: it is claimed again when the
//! lease runs out (at-least-once). Logs carry ids, outcomes and reasons only (never text,
//! tokens or URLs).

use std::collections::HashSet;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration as StdDuration;

use herald_engine::delivery::DeliveryQueue;
use herald_engine::ids::{AppId, TenantId};
use herald_engine::push::Delivery;
use time::{Duration, OffsetDateTime};
use tokio::sync::watch;
use tokio::task::{JoinError, JoinSet};

use super::{DeliveryCore, EndpointHealth};
use crate::Runtime;

/// How long a stopping worker lets in-flight deliveries finish before abandoning them (they
/// are claimed again when their lease runs out).
const DRAIN: StdDuration = StdDuration::from_secs(2);
/// Shortest sleep when the queue says something is due but the claim found nothing.
const MIN_NAP: StdDuration = StdDuration::from_millis(5);

/// The running worker. Dropping it stops the loop too (without the drain).
pub struct Worker {
    core: Arc<DeliveryCore>,
    stop: watch::Sender<bool>,
    task: tokio::task::JoinHandle<()>,
}

impl Worker {
    /// The shared state: endpoint health, re-enabling, the wake-up.
    pub fn core(&self) -> Arc<DeliveryCore> {
        self.core.clone()
    }

    /// Wakes the loop: `notify_one()` on it after committing new deliveries (the same `Notify`
    /// as `Runtime::delivery_wakeup`).
    pub fn waker(&self) -> Arc<tokio::sync::Notify> {
        self.core.waker()
    }

    /// See [`DeliveryCore::endpoint_health`].
    pub fn endpoint_health(&self, tenant: &TenantId, app: &AppId) -> Vec<EndpointHealth> {
        self.core.endpoint_health(tenant, app)
    }

    /// See [`DeliveryCore::reenable`].
    pub fn reenable(&self, tenant: &TenantId, app: &AppId, endpoint_key: &str) -> bool {
        self.core.reenable(tenant, app, endpoint_key)
    }

    /// Stops claiming, lets in-flight deliveries finish for a moment, then abandons the rest.
    pub async fn shutdown(self) {
        let _ = self.stop.send(true);
        let _ = self.task.await;
    }
}

/// Starts the worker over `queue` (the store's `DeliveryQueue`, `state.queue`). `core` is
/// shared with `Runtime::delivery` (endpoint health, re-enabling).
pub fn spawn(core: Arc<DeliveryCore>, state: Runtime, queue: Arc<dyn DeliveryQueue>) -> Worker {
    let (stop, stopped) = watch::channel(false);
    let ctx = Arc::new(Ctx {
        state,
        queue,
        core: core.clone(),
    });
    let task = tokio::spawn(run(ctx, stopped));
    Worker { core, stop, task }
}

/// What every delivery task of the worker shares.
pub(super) struct Ctx {
    pub state: Runtime,
    pub queue: Arc<dyn DeliveryQueue>,
    pub core: Arc<DeliveryCore>,
}

impl Ctx {
    pub fn now(&self) -> OffsetDateTime {
        self.state.clock.now()
    }
}

type Key = (TenantId, String);

/// The claim loop and its tasks.
struct Loop {
    ctx: Arc<Ctx>,
    tasks: JoinSet<()>,
    running: Running,
}

/// What one claim found.
struct Claimed {
    none: bool,
    /// As many as asked for: claim again at once.
    full: bool,
}

async fn run(ctx: Arc<Ctx>, mut stop: watch::Receiver<bool>) {
    let settings = ctx.core.settings.clone();
    let poll = StdDuration::from_millis(settings.poll_ms);
    let mut lp = Loop {
        ctx,
        tasks: JoinSet::new(),
        running: Running::default(),
    };
    loop {
        if *stop.borrow() {
            break;
        }
        while let Some(done) = lp.tasks.try_join_next() {
            reaped(done);
        }
        let room = settings.max_in_flight.saturating_sub(lp.tasks.len());
        let mut claimed_none = true;
        if room > 0 {
            let claimed = lp.claim(room.min(settings.batch)).await;
            claimed_none = claimed.none;
            if claimed.full {
                tokio::task::yield_now().await;
                continue;
            }
        }
        let nap = lp.nap(room, claimed_none, poll).await;
        tokio::select! {
            changed = stop.changed() => {
                if changed.is_err() {
                    break;
                }
            }
            () = lp.ctx.core.woken() => {}
            () = tokio::time::sleep(nap) => {}
            Some(done) = lp.tasks.join_next(), if room == 0 => reaped(done),
        }
    }
    lp.drain().await;
}

impl Loop {
    /// Claims up to `limit` due deliveries and starts a task for each.
    async fn claim(&mut self, limit: usize) -> Claimed {
        let lease = Duration::milliseconds(
            i64::try_from(self.ctx.core.settings.lease_ms).unwrap_or(i64::MAX),
        );
        let now = self.ctx.now();
        let batch = match self.ctx.queue.claim_deliveries(now, lease, limit).await {
            Ok(batch) => batch,
            Err(e) => {
                tracing::warn!(error = %e, "claiming deliveries failed");
                return Claimed {
                    none: true,
                    full: false,
                };
            }
        };
        let claimed = Claimed {
            none: batch.is_empty(),
            full: batch.len() == limit,
        };
        for delivery in batch {
            self.start(delivery);
        }
        claimed
    }

    fn start(&mut self, delivery: Delivery) {
        let key = (delivery.tenant_id.clone(), delivery.id.clone());
        // Still being handled here after its lease ran out: the claim renewed the lease; the
        // task at work settles it.
        let Some(mine) = self.running.start(key) else {
            return;
        };
        // Joins its collapse-key lane now, in claim order, before any task of the claim runs.
        let place = self.ctx.core.lanes.enter(&delivery);
        let ctx = self.ctx.clone();
        self.tasks
            .spawn(async move { super::settle::handle(&ctx, delivery, mine, place).await });
    }

    /// How long to sleep before looking at the queue again.
    async fn nap(&self, room: usize, claimed_none: bool, poll: StdDuration) -> StdDuration {
        if room == 0 {
            return poll;
        }
        match self.ctx.queue.next_delivery_at().await {
            Ok(Some(at)) => {
                let until = (at - self.ctx.now()).max(Duration::ZERO);
                let until = StdDuration::try_from(until).unwrap_or(poll).min(poll);
                if claimed_none {
                    until.max(MIN_NAP)
                } else {
                    until
                }
            }
            Ok(None) => poll,
            Err(e) => {
                tracing::warn!(error = %e, "reading the delivery queue failed");
                poll
            }
        }
    }

    /// Lets in-flight deliveries finish for [`DRAIN`], then abandons the rest.
    async fn drain(mut self) {
        let tasks = &mut self.tasks;
        let _ = tokio::time::timeout(DRAIN, async {
            while let Some(done) = tasks.join_next().await {
                reaped(done);
            }
        })
        .await;
        if !self.tasks.is_empty() {
            tracing::info!(
                abandoned = self.tasks.len(),
                "delivery worker stopped; unfinished deliveries are retried after their lease"
            );
        }
        self.tasks.abort_all();
    }
}

fn reaped(done: Result<(), JoinError>) {
    if let Err(e) = done
        && e.is_panic()
    {
        tracing::error!("a delivery task panicked; its delivery is retried after its lease");
    }
}

/// The deliveries this node is handling. A task gives its delivery up just before settling it:
/// once settled, a claim that hands it out again (a retry that is due) must start a new task.
#[derive(Default, Clone)]
struct Running(Arc<Mutex<HashSet<Key>>>);

impl Running {
    /// `None` if the delivery is already being handled here.
    fn start(&self, key: Key) -> Option<Handling> {
        let fresh = lock(&self.0).insert(key.clone());
        fresh.then(|| Handling {
            running: self.clone(),
            key,
        })
    }
}

/// One delivery being handled; dropping it (also when the task panics or is aborted) gives
/// the delivery up.
pub(super) struct Handling {
    running: Running,
    key: Key,
}

impl Drop for Handling {
    fn drop(&mut self) {
        lock(&self.running.0).remove(&self.key);
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

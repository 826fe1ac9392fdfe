//! Whether this node decides: always on the embedded store; in cluster mode while it holds the
//! engine lease. A renewal task keeps the lease (or keeps trying to take it); the engine task
//! asks [`Leadership::fence`] before each step and hands the fence to the commit, which the
//! store checks — so a node that stalls past its lease and wakes up mid-step writes nothing.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use herald_engine::lease::{EngineLease, Fence};
use herald_engine::store::StoreError;
use tokio::task::JoinHandle;

use crate::Runtime;

pub struct Leadership {
    leased: Option<Leased>,
}

struct Leased {
    lease: Arc<dyn EngineLease>,
    node: String,
    ttl: Duration,
    /// The fence and when the renewal that confirmed it was sent.
    held: Mutex<Option<(Fence, Instant)>>,
}

impl Leadership {
    /// The embedded store: this process alone decides, unfenced.
    pub fn sole() -> Self {
        Self { leased: None }
    }

    /// Cluster mode: this node decides while it holds `lease` as `node`.
    pub fn leased(lease: Arc<dyn EngineLease>, node: String, ttl: Duration) -> Self {
        Self {
            leased: Some(Leased {
                lease,
                node,
                ttl,
                held: Mutex::new(None),
            }),
        }
    }

    /// The fence a commit decided now carries: `None` on the embedded store; `Fenced` while
    /// another node holds the lease, or once this node's last renewal is a whole lease old
    /// (the lease may have run out unnoticed; the store would refuse the commit anyway).
    pub fn fence(&self) -> Result<Option<Fence>, StoreError> {
        let Some(leased) = &self.leased else {
            return Ok(None);
        };
        match &*leased.held() {
            Some((fence, renewed)) if renewed.elapsed() < leased.ttl => Ok(Some(fence.clone())),
            _ => Err(StoreError::Fenced),
        }
    }

    /// Whether this node decides now.
    pub fn deciding(&self) -> bool {
        self.fence().is_ok()
    }

    /// How often the lease is renewed: a third of it, so two renewals may fail in a row.
    fn every(&self) -> Option<Duration> {
        self.leased.as_ref().map(|l| l.ttl / 3)
    }

    /// Renews or takes the lease; answers whether this node just started deciding.
    async fn renew(&self) -> bool {
        let Some(leased) = &self.leased else {
            return false;
        };
        let was = self.deciding();
        // The lease runs from the moment the request left, not from the answer.
        let sent = Instant::now();
        match leased.lease.acquire(&leased.node, leased.ttl).await {
            Ok(Some(fence)) => {
                let changed = leased.held().as_ref().map(|(f, _)| f) != Some(&fence);
                if changed {
                    tracing::info!(epoch = fence.epoch, "this node now decides (engine lease)");
                }
                *leased.held() = Some((fence, sent));
            }
            Ok(None) => {
                if leased.held().take().is_some() {
                    tracing::warn!("the engine lease went to another node");
                }
            }
            // Keep what was confirmed: it still expires on its own in `fence`.
            Err(e) => tracing::warn!(error.message = %e, "renewing the engine lease failed"),
        }
        !was && self.deciding()
    }

    /// A clean shutdown: another node takes over without waiting for the lease to run out.
    pub async fn release(&self) {
        let Some(leased) = &self.leased else {
            return;
        };
        let held = leased.held().take();
        if let Some((fence, _)) = held
            && let Err(e) = leased.lease.release(&fence).await
        {
            tracing::warn!(error.message = %e, "releasing the engine lease failed");
        }
    }
}

impl Leased {
    fn held(&self) -> std::sync::MutexGuard<'_, Option<(Fence, Instant)>> {
        self.held.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// Keeps the lease renewed (cluster mode); wakes the engine the moment this node starts
/// deciding. Nothing to do on the embedded store.
pub fn spawn_renewals(state: Runtime) -> Option<JoinHandle<()>> {
    let every = state.leadership.every()?;
    Some(tokio::spawn(async move {
        let mut tick = tokio::time::interval(every);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tick.tick().await;
            if state.leadership.renew().await {
                state.engine.here(crate::notify::Signal::Wake);
            }
        }
    }))
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicBool, Ordering};

    use async_trait::async_trait;

    use super::*;

    /// A lease another node may be holding (`taken`).
    #[derive(Default)]
    struct Lease {
        taken: AtomicBool,
    }

    #[async_trait]
    impl EngineLease for Lease {
        async fn acquire(&self, holder: &str, _: Duration) -> Result<Option<Fence>, StoreError> {
            Ok((!self.taken.load(Ordering::SeqCst)).then(|| Fence {
                holder: holder.into(),
                epoch: 7,
            }))
        }

        async fn release(&self, _: &Fence) -> Result<(), StoreError> {
            Ok(())
        }
    }

    #[test]
    fn the_embedded_store_always_decides_unfenced() {
        let sole = Leadership::sole();
        assert!(sole.deciding());
        assert_eq!(sole.fence().unwrap(), None);
    }

    #[tokio::test]
    async fn a_node_decides_once_it_holds_the_lease_and_stops_when_another_takes_it() {
        let lease = Arc::new(Lease::default());
        let node = Leadership::leased(lease.clone(), "a".into(), Duration::from_secs(60));
        assert!(matches!(node.fence(), Err(StoreError::Fenced)), "not yet");
        assert!(node.renew().await, "it just started deciding");
        assert_eq!(node.fence().unwrap().map(|f| f.epoch), Some(7));
        assert!(!node.renew().await, "a renewal is not a new start");
        lease.taken.store(true, Ordering::SeqCst);
        node.renew().await;
        assert!(!node.deciding());
    }

    #[tokio::test]
    async fn a_node_whose_last_renewal_is_a_whole_lease_old_stops_deciding_on_its_own() {
        let lease = Arc::new(Lease::default());
        let node = Leadership::leased(lease, "a".into(), Duration::from_millis(1));
        node.renew().await;
        // Renewals stalled (a pause, an unreachable database): the lease may have run out.
        std::thread::sleep(Duration::from_millis(5));
        assert!(matches!(node.fence(), Err(StoreError::Fenced)));
    }
}

//! Ordering per collapse key. Pushes with one collapse key replace each other at the provider
//! (APNs collapse id, FCM tag, Web Push Topic), so an older push that arrives after a newer one
//! replaces the newer one. For one *lane* — (tenant, app, target, collapse key), the target
//! being a device id or a webhook endpoint id — this node makes attempts one at a time, oldest
//! delivery first, and never sends an older push once a newer one went out.
//!
//! - The claim loop [`Lanes::enter`]s every claimed delivery before it starts its task, so
//!   the deliveries of one claim are known, in claim order, before any of them runs.
//! - A delivery takes its lane's turn ([`Place::turn`]) when no attempt of the lane is under
//!   way and no older delivery of the lane is held here; the turn lasts until its settlement is
//!   committed. It waits for the turn within the worker's patience, else it is postponed.
//! - With the turn, a delivery older than the newest one of its lane that was attempted here
//!   ([`Place::attempted`]: any outcome but a permanent refusal or an unsent request, which
//!   left nothing at the provider) is not sent: it is settled `Cancelled` with [`SUPERSEDED`]
//!   as its reason.
//! - Older means created earlier: the engine makes a delivery id as `dlv_` and a UUIDv7 in
//!   simple (lowercase hex) form from `Uuid::now_v7` (`herald_engine::notify::compose::
//!   deliveries`), which orders ids by creation within a process (by millisecond across
//!   processes), so such ids compare as strings in creation order. A delivery whose id is not
//!   of that form carries no creation order (made outside the engine: tools, tests) and has
//!   no lane.
//! - A lane lives while a delivery of it is held here or is expected back (settled here to be
//!   retried or postponed, or left leased), each of those until its push expires at the
//!   latest; then it is removed (when its last delivery lets go, or by the sweep of expired
//!   expectations that claims run at most once a second).
//!
//! Emails are not ordered (a later email never replaces an earlier one). The guarantee is per
//! node and for the deliveries it has seen: nodes sharing a queue do not share lanes, and a
//! restart forgets them.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use herald_engine::clock::Clock;
use herald_engine::ids::{AppId, TenantId};
use herald_engine::push::{Delivery, Target};
use time::{Duration, OffsetDateTime};
use tokio::sync::Notify;

/// The reason a superseded delivery is cancelled with.
pub(crate) const SUPERSEDED: &str =
    "superseded by a newer push with the same collapse key, already sent to this target";

/// The reason a delivery that did not get its lane's turn in time is postponed with.
pub(crate) const BEHIND: &str =
    "waiting for an older push with the same collapse key to this target";

/// (tenant, app, target, collapse key)
type LaneKey = (TenantId, AppId, String, String);

/// How often expired expectations are swept from every lane.
const SWEEP_EVERY: Duration = Duration::SECOND;

/// Every lane of this node; see the module documentation.
pub(crate) struct Lanes {
    clock: Arc<dyn Clock>,
    inner: Mutex<Inner>,
}

#[derive(Default)]
struct Inner {
    lanes: HashMap<LaneKey, Lane>,
    swept_at: Option<OffsetDateTime>,
}

#[derive(Default)]
struct Lane {
    /// Deliveries claimed here and not yet settled, by id (creation order), with how many
    /// places hold each (a retry that is due may be claimed again before the task that settled
    /// it has let go).
    held: BTreeMap<String, u32>,
    /// The delivery whose turn it is.
    turn: Option<String>,
    /// The newest delivery of the lane attempted here.
    newest: Option<String>,
    /// Deliveries expected back (to be retried, postponed, left leased), until their push
    /// expires.
    expected: HashMap<String, OffsetDateTime>,
    /// Woken whenever a place lets go.
    released: Arc<Notify>,
}

impl Lane {
    fn may_go(&self, id: &str) -> bool {
        self.turn.is_none() && self.held.keys().next().is_some_and(|first| first == id)
    }

    fn forget_expired(&mut self, now: OffsetDateTime) {
        self.expected.retain(|_, until| *until > now);
    }

    fn idle(&self) -> bool {
        self.held.is_empty() && self.expected.is_empty() && self.turn.is_none()
    }
}

/// Whether `id` is `dlv_` and a UUIDv7 in simple lowercase form: an id that compares as a
/// string in creation order.
fn carries_creation_order(id: &str) -> bool {
    let Some(hex) = id.strip_prefix("dlv_") else {
        return false;
    };
    hex.len() == 32
        && hex.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
        && uuid::Uuid::try_parse(hex).is_ok_and(|u| u.get_version_num() == 7)
}

/// The lane of a delivery; `None` for targets that are not ordered (emails) and ids that carry
/// no creation order.
fn lane_of(d: &Delivery) -> Option<LaneKey> {
    if !carries_creation_order(&d.id) {
        return None;
    }
    let target = match &d.target {
        Target::Device { device } => format!("device:{}", device.id),
        Target::Webhook { endpoint_id, .. } => format!("webhook:{endpoint_id}"),
        Target::Email { .. } => return None,
    };
    Some((
        d.tenant_id.clone(),
        d.app_id.clone(),
        target,
        d.push.collapse_key.clone(),
    ))
}

impl Lanes {
    pub fn new(clock: Arc<dyn Clock>) -> Lanes {
        Lanes {
            clock,
            inner: Mutex::new(Inner::default()),
        }
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// A claimed delivery joins its lane; the place holds it there until dropped.
    pub fn enter(self: &Arc<Self>, d: &Delivery) -> Place {
        let lane = lane_of(d);
        if let Some(key) = &lane {
            let now = self.clock.now();
            let mut inner = self.lock();
            inner.sweep(now);
            let lane = inner.lanes.entry(key.clone()).or_default();
            lane.expected.remove(&d.id);
            *lane.held.entry(d.id.clone()).or_default() += 1;
        }
        Place {
            lanes: self.clone(),
            lane,
            id: d.id.clone(),
            expires_at: d.push.expires_at,
            ended: false,
        }
    }

    /// How many lanes are kept (held or expected deliveries).
    #[cfg(test)]
    pub fn len(&self) -> usize {
        self.lock().lanes.len()
    }
}

impl Inner {
    /// Forgets expected deliveries whose push expired (they never go) and removes idle lanes;
    /// at most once per [`SWEEP_EVERY`].
    fn sweep(&mut self, now: OffsetDateTime) {
        if self.swept_at.is_some_and(|at| now - at < SWEEP_EVERY) {
            return;
        }
        self.swept_at = Some(now);
        self.lanes.retain(|_, lane| {
            lane.forget_expired(now);
            !lane.idle()
        });
    }
}

/// One delivery in its lane (see [`Lanes::enter`]). Dropping it lets go of the lane: the turn
/// if it had it, and the delivery is expected back unless [`ended`](Place::ended).
pub(crate) struct Place {
    lanes: Arc<Lanes>,
    lane: Option<LaneKey>,
    id: String,
    expires_at: OffsetDateTime,
    ended: bool,
}

impl Place {
    /// Waits for the lane's turn until `until`; `false` if it did not come by then. A delivery
    /// without a lane has its turn at once.
    pub async fn turn(&mut self, until: tokio::time::Instant) -> bool {
        let Some(key) = &self.lane else {
            return true;
        };
        let Some(released) = self.lanes.lock().lanes.get(key).map(|l| l.released.clone()) else {
            return true;
        };
        loop {
            let notified = released.notified();
            tokio::pin!(notified);
            // Registered before looking, so a release in between is not missed.
            notified.as_mut().enable();
            {
                let mut inner = self.lanes.lock();
                let Some(lane) = inner.lanes.get_mut(key) else {
                    return true;
                };
                if lane.may_go(&self.id) {
                    lane.turn = Some(self.id.clone());
                    return true;
                }
            }
            if tokio::time::timeout_at(until, notified).await.is_err() {
                return false;
            }
        }
    }

    /// Whether a newer delivery of the lane was attempted here: this one must not go.
    pub fn superseded(&self) -> bool {
        let Some(key) = &self.lane else {
            return false;
        };
        self.lanes
            .lock()
            .lanes
            .get(key)
            .and_then(|lane| lane.newest.as_ref())
            .is_some_and(|newest| *newest > self.id)
    }

    /// This delivery's attempt went out: older deliveries of the lane will not.
    pub fn attempted(&self) {
        let Some(key) = &self.lane else {
            return;
        };
        if let Some(lane) = self.lanes.lock().lanes.get_mut(key)
            && lane.newest.as_ref().is_none_or(|newest| *newest < self.id)
        {
            lane.newest = Some(self.id.clone());
        }
    }

    /// Its settlement is committed and final: it will not come back.
    pub fn ended(&mut self) {
        self.ended = true;
    }
}

impl Drop for Place {
    fn drop(&mut self) {
        let Some(key) = self.lane.take() else {
            return;
        };
        let now = self.lanes.clock.now();
        let mut inner = self.lanes.lock();
        let Some(lane) = inner.lanes.get_mut(&key) else {
            return;
        };
        let still_held = match lane.held.get_mut(&self.id) {
            Some(n) if *n > 1 => {
                *n -= 1;
                true
            }
            _ => {
                lane.held.remove(&self.id);
                false
            }
        };
        if lane.turn.as_ref() == Some(&self.id) {
            lane.turn = None;
        }
        if self.ended {
            lane.expected.remove(&self.id);
        } else if !still_held && self.expires_at > now {
            lane.expected.insert(self.id.clone(), self.expires_at);
        }
        lane.forget_expired(now);
        lane.released.notify_waiters();
        if lane.idle() {
            inner.lanes.remove(&key);
        }
    }
}

#[cfg(test)]
#[path = "order_tests.rs"]
mod tests;

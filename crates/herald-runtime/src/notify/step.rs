//! What every engine step shares: loading the inputs a plan reads (every read of a kind at
//! once), the ids the plan mints, and the commit that makes its decisions durable.

use futures_util::future::try_join_all;
use herald_engine::ids::{TenantId, UserId};
use herald_engine::notify::plan::inputs::ContextKey;
use herald_engine::notify::plan::{Inputs, Planned};
use herald_engine::notify::record::NotificationRecord;
use herald_engine::notify::store::UserContext;
use herald_engine::notify::{Looking, NewIds};
use herald_engine::store::StoreError;
use time::OffsetDateTime;

use crate::Runtime;
use crate::cluster::merge;
use crate::live::presence::PresenceState;

/// Unique, time-ordered ids.
pub struct SystemIds;

impl NewIds for SystemIds {
    fn notification(&mut self) -> String {
        format!("ntf_{}", uuid::Uuid::now_v7().simple())
    }

    fn delivery(&mut self) -> String {
        format!("dlv_{}", uuid::Uuid::now_v7().simple())
    }
}

/// Loads the tenants' apps into `inputs` (from the app cache).
pub async fn load_apps(
    state: &Runtime,
    inputs: &mut Inputs,
    mut tenants: Vec<TenantId>,
) -> Result<(), StoreError> {
    tenants.sort();
    tenants.dedup();
    for tenant in tenants {
        let apps = state.apps.tenant(&tenant).await?;
        inputs.apps.insert(tenant, apps.as_ref().clone());
    }
    Ok(())
}

/// Reads the contexts of `keys` that `inputs` lacks, all at once.
pub async fn contexts(
    state: &Runtime,
    inputs: &Inputs,
    keys: impl IntoIterator<Item = ContextKey>,
) -> Result<Vec<(ContextKey, UserContext)>, StoreError> {
    let mut missing: Vec<_> = keys
        .into_iter()
        .filter(|k| !inputs.contexts.contains_key(k))
        .collect();
    missing.sort();
    missing.dedup();
    let notify = &state.notify;
    let read = missing
        .iter()
        .map(|(t, u, c)| notify.user_context(t, u, c.as_ref()));
    let read = try_join_all(read).await?;
    Ok(missing.into_iter().zip(read).collect())
}

/// Reads the records of `keys` (tenant, notification id) that `inputs` lacks, all at once.
pub async fn records(
    state: &Runtime,
    inputs: &Inputs,
    keys: impl IntoIterator<Item = (TenantId, String)>,
) -> Result<Vec<((TenantId, String), NotificationRecord)>, StoreError> {
    let mut missing: Vec<_> = keys
        .into_iter()
        .filter(|k| !inputs.records.contains_key(k))
        .collect();
    missing.sort();
    missing.dedup();
    let notify = &state.notify;
    let read = missing.iter().map(|(t, id)| notify.notification(t, id));
    let read = try_join_all(read).await?;
    let found = missing.into_iter().zip(read);
    Ok(found.filter_map(|(key, r)| Some((key, r?))).collect())
}

/// Whether each user with a context is looking, as the live sessions tell now: this node's,
/// and in a cluster every other node's.
pub async fn load_presence(state: &Runtime, inputs: &mut Inputs) {
    let mut users: Vec<(TenantId, UserId)> = inputs
        .contexts
        .keys()
        .map(|(t, u, _)| (t.clone(), u.clone()))
        .collect();
    users.dedup();
    let remote = match &state.peers {
        Some(peers) => peers.presence(&users).await,
        None => Vec::new(),
    };
    let mut remote = remote.into_iter();
    for (tenant, user) in users {
        let mut presence = state.hub.presence(&tenant, &user);
        if let Some(elsewhere) = remote.next() {
            presence = merge(presence, elsewhere);
        }
        let looking = match presence.state {
            PresenceState::Foreground => Looking::Foreground,
            PresenceState::Away => Looking::Away {
                since: presence.since,
            },
        };
        inputs.looking.insert((tenant, user), looking);
    }
}

/// Commits what a plan decided, counting its decisions and, once it is durable, the lateness
/// of the timers it fired. Wakes the delivery core when it handed deliveries.
pub async fn commit(
    state: &Runtime,
    planned: Planned,
    now: OffsetDateTime,
) -> Result<(), StoreError> {
    for (status, kind) in &planned.decisions {
        metrics::counter!("herald_decisions_total", "status" => status.as_str(), "kind" => kind.as_str()).increment(1);
    }
    let deliveries = !planned.commit.deliveries.is_empty();
    let mut commit = planned.commit;
    commit.fence = state.leadership.fence()?;
    state.notify.commit_notify(commit, now).await?;
    // A timer has fired once what it decided is durable: lateness runs to the commit, so a
    // slow step or a busy writer counts against it.
    if !planned.fired.is_empty() {
        let committed = state.clock.now();
        for (timer, due_at) in planned.fired {
            metrics::histogram!("herald_timer_lateness_seconds", "timer" => timer)
                .record((committed - due_at).as_seconds_f64().max(0.0));
        }
    }
    if deliveries {
        state.delivery_wakeup.notify_one();
    }
    Ok(())
}

//! A user went away (`Signal::Away`): decide again what a gone session seemed to be looking at
//! (`herald_engine::notify::plan::away`, SPEC §5.1), then post the left notices the apps ask
//! for (`notify::left`).

use herald_engine::ids::{TenantId, UserId};
use herald_engine::notify::plan::{self, Inputs, inputs};
use herald_engine::store::StoreError;
use time::OffsetDateTime;

use crate::Runtime;
use crate::notify::left;
use crate::notify::step::{self, SystemIds};

pub async fn went(state: &Runtime, tenant: &TenantId, user: &UserId, since: OffsetDateTime) {
    if let Err(e) = decide_again(state, tenant, user, since).await {
        tracing::error!(error.message = %e, "deciding again what a gone session suppressed failed");
    }
    if let Err(e) = left::tell(state, tenant, user, since).await {
        tracing::error!(error.message = %e, "posting the notices of a user who left failed");
    }
}

/// Loads the user's threads (of every conversation) and the suppressions they remember,
/// plans, commits.
async fn decide_again(
    state: &Runtime,
    tenant: &TenantId,
    user: &UserId,
    since: OffsetDateTime,
) -> Result<(), StoreError> {
    let now = state.clock.now();
    let ctx = state.notify.user_context(tenant, user, None).await?;
    let named = inputs::away_records(&ctx);
    if named.is_empty() {
        return Ok(());
    }
    let mut inputs = Inputs::default();
    let named = named.into_iter().map(|id| (tenant.clone(), id));
    inputs
        .records
        .extend(step::records(state, &inputs, named).await?);
    inputs
        .contexts
        .insert((tenant.clone(), user.clone(), None), ctx);
    step::load_apps(state, &mut inputs, vec![tenant.clone()]).await?;
    // As the hub tells now: a user back in the foreground meanwhile has nothing decided again.
    step::load_presence(state, &mut inputs).await;
    let planned = plan::away(inputs, tenant, user, since, now, &mut SystemIds);
    step::commit(state, planned, now).await
}

//! Posting the notices of a user who left (an app's `rules.left_notice`; which ones is
//! `herald_engine::notify::left`'s to say). They take the path of any event: appended durably,
//! then handed to live sessions and the engine (`Runtime::committed`).

use futures_util::future::try_join_all;
use herald_engine::event::NewEvent;
use herald_engine::ids::{EventId, TenantId, UserId};
use herald_engine::notify::left;
use herald_engine::store::StoreError;
use time::OffsetDateTime;

use crate::Runtime;

pub async fn tell(
    state: &Runtime,
    tenant: &TenantId,
    user: &UserId,
    since: OffsetDateTime,
) -> Result<(), StoreError> {
    let apps = state.apps.tenant(tenant).await?;
    if !left::any(&apps) {
        return Ok(());
    }
    let conversations = state.store.unread(tenant, user).await?;
    let memberships = try_join_all(
        conversations
            .iter()
            .map(|c| state.store.membership(tenant, &c.conversation_id, user)),
    )
    .await?;
    let places: Vec<_> = conversations
        .into_iter()
        .zip(memberships)
        .filter_map(|(c, m)| Some((c.conversation_id, m?.participant)))
        .collect();
    let notices: Vec<NewEvent> = left::notices(&apps, user, &places, since, || {
        EventId::parse(format!("herald-left-{}", uuid::Uuid::now_v7().simple()))
            .expect("generated ids are valid")
    });
    if notices.is_empty() {
        return Ok(());
    }
    let appended = state
        .store
        .append_events(tenant, notices, state.clock.now())
        .await?;
    state.committed(tenant, &appended);
    Ok(())
}

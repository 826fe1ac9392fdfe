//! Timers and presence: load what firing due threads and scheduled notifications reads, or
//! what cancelling a returning user's pushes reads, call the plan, commit.
//!
//! Fired one after another, each timer once waited for several store round trips in turn, and
//! timers that came due together fired late by the sum of them (SPEC §4: within 50 ms of
//! due). So every read of a kind is made at once, in rounds:
//! 1. what is due: threads and scheduled notifications;
//! 2. the threads' contexts and memberships, and the scheduled records;
//! 3. the records due threads name, the messages (and the leading notice) their pushes carry,
//!    the conversations' last positions for due digests, and the proactive notifications' users' contexts;
//! 4. the messages a due digest lists (only when one is due).

use futures_util::future::{try_join, try_join_all, try_join3, try_join4};
use herald_engine::event::StoredEvent;
use herald_engine::ids::{ConversationId, TenantId, UserId};
use herald_engine::notify::content::gms;
use herald_engine::notify::lead;
use herald_engine::notify::plan::{self, Inputs, inputs};
use herald_engine::notify::store::{MAX_TRANSCRIPT_LINES, ThreadKey};
use herald_engine::store::StoreError;
use time::OffsetDateTime;

use crate::Runtime;
use crate::notify::step::{self, SystemIds};

/// Fires up to `limit` due threads and `limit` due scheduled notifications in one committed
/// step; answers how many it fired.
pub async fn fire(state: &Runtime, limit: usize) -> Result<usize, StoreError> {
    let now = state.clock.now();
    let (threads, scheduled) = try_join(
        state.notify.due_threads(now, limit),
        state.notify.due_notifications(now, limit),
    )
    .await?;
    let inputs = gather(state, &threads, &scheduled, now).await?;
    let planned = plan::timers(inputs, &threads, &scheduled, now, &mut SystemIds);
    step::commit(state, planned, now).await?;
    Ok(threads.len() + scheduled.len())
}

async fn gather(
    state: &Runtime,
    threads: &[ThreadKey],
    scheduled: &[(TenantId, String)],
    now: OffsetDateTime,
) -> Result<Inputs, StoreError> {
    let mut inputs = Inputs::default();
    let tenants = threads
        .iter()
        .map(|k| &k.tenant)
        .chain(scheduled.iter().map(|(t, _)| t));
    let tenants = tenants.cloned().collect();
    step::load_apps(state, &mut inputs, tenants).await?;
    let store = &state.store;
    let keys = threads.iter().map(|k| {
        (
            k.tenant.clone(),
            k.user.clone(),
            Some(k.conversation.clone()),
        )
    });
    let (contexts, memberships, records) = try_join3(
        step::contexts(state, &inputs, keys),
        try_join_all(
            threads
                .iter()
                .map(|k| store.membership(&k.tenant, &k.conversation, &k.user)),
        ),
        step::records(state, &inputs, scheduled.iter().cloned()),
    )
    .await?;
    inputs.contexts.extend(contexts);
    inputs.records.extend(records);
    for (k, membership) in threads.iter().zip(memberships) {
        if let Some(m) = membership {
            let key = (k.tenant.clone(), k.conversation.clone(), k.user.clone());
            inputs.memberships.insert(key, m);
        }
    }
    named(state, &mut inputs, threads, now).await?;
    step::load_presence(state, &mut inputs).await;
    Ok(inputs)
}

/// Rounds 3 and 4: what the due threads and scheduled notifications name.
async fn named(
    state: &Runtime,
    inputs: &mut Inputs,
    threads: &[ThreadKey],
    now: OffsetDateTime,
) -> Result<(), StoreError> {
    let (mut records, mut recent, mut digests) = (Vec::new(), Vec::new(), Vec::new());
    let mut spans = Vec::new();
    for key in threads {
        let reads = inputs.thread_reads(key, now);
        records.extend(reads.records.into_iter().map(|id| (key.tenant.clone(), id)));
        if let Some(position) = reads.recent {
            recent.push((key.tenant.clone(), key.conversation.clone(), position));
        }
        if let Some((first, latest)) = reads.span {
            let at = (key.tenant.clone(), key.conversation.clone());
            spans.push((at.0, at.1, first, latest));
        }
        if reads.digest {
            digests.push((key.tenant.clone(), key.conversation.clone()));
        }
    }
    let store = &state.store;
    let spanned = try_join_all(spans.iter().map(|(t, c, f, l)| span(state, t, c, *f, *l)));
    let ((found, messages, conversations, contexts), spanned) = try_join(
        try_join4(
            step::records(state, inputs, records),
            try_join_all(recent.iter().map(|(t, c, p)| carried(state, t, c, *p))),
            try_join_all(digests.iter().map(|(t, c)| store.get_conversation(t, c))),
            step::contexts(state, inputs, inputs.proactive_contexts()),
        ),
        spanned,
    )
    .await?;
    inputs.spans.extend(spans.into_iter().zip(spanned));
    inputs.records.extend(found);
    inputs.recent.extend(recent.into_iter().zip(messages));
    inputs.contexts.extend(contexts);
    let lasts = digests.into_iter().zip(conversations);
    let lasts = lasts.map(|((t, c), found)| (t, c, found.map_or(0, |c| c.last_position)));
    digest_lines(state, inputs, lasts.collect()).await
}

/// What a due push carries: the recent messages up to its position, and the notice at the
/// position when one leads the push.
async fn carried(
    state: &Runtime,
    tenant: &TenantId,
    conversation: &ConversationId,
    position: u64,
) -> Result<Vec<StoredEvent>, StoreError> {
    let (messages, mut at) = try_join(
        state
            .notify
            .recent_messages(tenant, conversation, position, MAX_TRANSCRIPT_LINES),
        state
            .store
            .events_after(tenant, conversation, position.saturating_sub(1), 1),
    )
    .await?;
    let at = at.pop().filter(|e| e.position == position);
    Ok(lead::with_lead(messages, at))
}

/// What a due GMS-shaped push lists: the events from its first to its latest position — the
/// latest [`gms::MAX_ITEMS`] times two at most, which leaves room for the events its
/// `lastTranscript` leaves out (the user's own, typing) in all but odd transcripts.
async fn span(
    state: &Runtime,
    tenant: &TenantId,
    conversation: &ConversationId,
    first: u64,
    latest: u64,
) -> Result<Vec<StoredEvent>, StoreError> {
    let from = first.max(latest.saturating_sub(2 * gms::MAX_ITEMS as u64 - 1));
    let n = (latest + 1).saturating_sub(from) as usize;
    let events = state
        .store
        .events_after(tenant, conversation, from.saturating_sub(1), n)
        .await?;
    Ok(events
        .into_iter()
        .filter(|e| e.position <= latest)
        .collect())
}

/// Round 4: an email digest lists what is unread up to the conversation's last message.
async fn digest_lines(
    state: &Runtime,
    inputs: &mut Inputs,
    lasts: Vec<(TenantId, ConversationId, u64)>,
) -> Result<(), StoreError> {
    let notify = &state.notify;
    let messages = try_join_all(
        lasts
            .iter()
            .map(|(t, c, p)| notify.recent_messages(t, c, *p, MAX_TRANSCRIPT_LINES)),
    )
    .await?;
    for ((tenant, conversation, last), messages) in lasts.into_iter().zip(messages) {
        let at = (tenant.clone(), conversation.clone());
        inputs.last_positions.insert(at, last);
        inputs.recent.insert((tenant, conversation, last), messages);
    }
    Ok(())
}

/// The user came back: load their threads (of every conversation) and what waits on them,
/// cancel it, commit.
pub async fn foreground(
    state: &Runtime,
    tenant: &TenantId,
    user: &UserId,
) -> Result<(), StoreError> {
    let now = state.clock.now();
    let mut inputs = Inputs::default();
    let ctx = state.notify.user_context(tenant, user, None).await?;
    let named = inputs::foreground_records(&ctx)
        .into_iter()
        .map(|id| (tenant.clone(), id));
    inputs
        .records
        .extend(step::records(state, &inputs, named).await?);
    inputs
        .contexts
        .insert((tenant.clone(), user.clone(), None), ctx);
    let planned = plan::foreground(inputs, tenant, user, now, &mut SystemIds);
    step::commit(state, planned, now).await
}

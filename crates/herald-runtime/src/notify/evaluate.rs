//! Evaluating a batch of outbox events: load what the plan reads, call
//! `herald_engine::notify::plan::events`, commit.
//!
//! Reads come in rounds, every read of a round at once: the engine evaluates events one after
//! another, and a read per participant per event made the store's latency its throughput.
//! 1. `NotifyStore::event_inputs`: each event, its conversation, its participants' contexts
//!    (the actor's aside) and the recent transcript (with the event itself when a notice
//!    leads the push).
//! 2. What the events name: the reader's context, callees' contexts, stored calls.
//! 3. What those name: the records a read that empties the conversation cancels, and the
//!    contexts of whoever a stored call rang or missed.
//!
//! Rounds 2 and 3 only run when a batch has such events.

use futures_util::future::{try_join, try_join_all};
use herald_engine::event::EventBody;
use herald_engine::ids::UserId;
use herald_engine::notify::lead;
use herald_engine::notify::plan::inputs::{self, ContextKey};
use herald_engine::notify::plan::{self, Inputs, OutboxEvent};
use herald_engine::notify::store::{EventInputs, OutboxItem};
use herald_engine::participant::Membership;
use herald_engine::store::{Conversation, StoreError};

use crate::Runtime;
use crate::notify::step::{self, SystemIds};

/// Evaluates `items` in one committed step.
pub async fn batch(state: &Runtime, items: &[OutboxItem]) -> Result<(), StoreError> {
    let now = state.clock.now();
    let (inputs, events) = gather(state, items).await?;
    let planned = plan::events(inputs, &events, now, &mut SystemIds);
    step::commit(state, planned, now).await
}

async fn gather(
    state: &Runtime,
    items: &[OutboxItem],
) -> Result<(Inputs, Vec<OutboxEvent>), StoreError> {
    let mut inputs = Inputs::default();
    let read = state.notify.event_inputs(items).await?;
    let mut events = Vec::with_capacity(items.len());
    for (item, read) in items.iter().zip(read) {
        let EventInputs {
            event,
            conversation,
            contexts,
            recent,
        } = read;
        for (user, ctx) in contexts {
            let key = (item.tenant.clone(), user, Some(item.conversation.clone()));
            inputs.contexts.entry(key).or_insert(ctx);
        }
        let at = (
            item.tenant.clone(),
            item.conversation.clone(),
            item.position,
        );
        inputs
            .recent
            .insert(at, lead::with_lead(recent, event.clone()));
        events.push(OutboxEvent {
            seq: item.seq,
            tenant: item.tenant.clone(),
            found: event.zip(conversation),
        });
    }
    let found = events.iter().filter(|e| e.found.is_some());
    let tenants = found.map(|e| e.tenant.clone()).collect();
    step::load_apps(state, &mut inputs, tenants).await?;
    named(state, &mut inputs, &events).await?;
    named_by_stored(state, &mut inputs, &events).await?;
    step::load_presence(state, &mut inputs).await;
    Ok((inputs, events))
}

/// Round 2: the contexts a read or a ringing call needs beyond the participants', and the
/// stored calls that call updates end.
async fn named(
    state: &Runtime,
    inputs: &mut Inputs,
    events: &[OutboxEvent],
) -> Result<(), StoreError> {
    let mut contexts: Vec<ContextKey> = Vec::new();
    let mut calls = Vec::new();
    for OutboxEvent { tenant, found, .. } in events {
        let Some((event, conversation)) = found else {
            continue;
        };
        let at = Some(conversation.id.clone());
        match &event.event.body {
            // A read by someone no longer a participant decides nothing.
            EventBody::MessageRead(r) if member(conversation, &r.reader_id).is_some() => {
                contexts.push((tenant.clone(), r.reader_id.clone(), at));
            }
            EventBody::CallRinging(ringing) => contexts.extend(
                ringing
                    .callees
                    .iter()
                    .filter(|c| **c != ringing.caller.id)
                    .map(|c| (tenant.clone(), c.clone(), at.clone())),
            ),
            EventBody::Call(_, update) => calls.push((tenant.clone(), update.call_id.clone())),
            _ => {}
        }
    }
    calls.sort();
    calls.dedup();
    let notify = &state.notify;
    let (loaded_contexts, loaded) = try_join(
        step::contexts(state, inputs, contexts),
        try_join_all(calls.iter().map(|(t, id)| notify.call(t, id))),
    )
    .await?;
    inputs.contexts.extend(loaded_contexts);
    for (key, call) in calls.into_iter().zip(loaded) {
        if let Some(call) = call {
            inputs.calls.insert(key, call);
        }
    }
    Ok(())
}

/// Round 3: the records a read that empties the conversation cancels (what waits on the
/// reader's threads), and the contexts of everyone a stored call rang or would miss.
async fn named_by_stored(
    state: &Runtime,
    inputs: &mut Inputs,
    events: &[OutboxEvent],
) -> Result<(), StoreError> {
    let mut records = Vec::new();
    let mut contexts: Vec<ContextKey> = Vec::new();
    for OutboxEvent { tenant, found, .. } in events {
        let Some((event, conversation)) = found else {
            continue;
        };
        let at = Some(conversation.id.clone());
        match &event.event.body {
            EventBody::MessageRead(r)
                if member(conversation, &r.reader_id).is_some_and(|m| m.unread == 0) =>
            {
                let key = (tenant.clone(), r.reader_id.clone(), at);
                let named = inputs.contexts.get(&key).map(inputs::read_records);
                records.extend(named.into_iter().flatten().map(|id| (tenant.clone(), id)));
            }
            EventBody::Call(_, update) => {
                let key = (tenant.clone(), update.call_id.clone());
                let parties = inputs.calls.get(&key).map(inputs::call_parties);
                let parties = parties.into_iter().flatten();
                contexts.extend(parties.map(|u| (tenant.clone(), u, at.clone())));
            }
            _ => {}
        }
    }
    let (records, contexts) = try_join(
        step::records(state, inputs, records),
        step::contexts(state, inputs, contexts),
    )
    .await?;
    inputs.records.extend(records);
    inputs.contexts.extend(contexts);
    Ok(())
}

fn member<'a>(conversation: &'a Conversation, user: &UserId) -> Option<&'a Membership> {
    let mut members = conversation.participants.iter();
    members.find(|m| m.participant.user_id == *user)
}

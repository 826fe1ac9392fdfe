//! Hears the other nodes: events they committed go to this node's sessions, signals to its
//! engine. Reconnects on its own; while it is disconnected the sessions here miss live events
//! of other nodes, which their cursors fill from the store at the conversation's next event.

use std::time::Duration;

use futures_util::StreamExt;
use herald_runtime::Runtime;

use crate::wire::{Body, Message};

/// The pause before subscribing again after the connection broke.
const RESUBSCRIBE: Duration = Duration::from_millis(500);

pub async fn run(client: redis::Client, channel: String, instance: String, runtime: Runtime) {
    loop {
        match client.get_async_pubsub().await {
            Ok(mut pubsub) => match pubsub.subscribe(&channel).await {
                Ok(()) => {
                    let mut messages = pubsub.on_message();
                    while let Some(message) = messages.next().await {
                        let Ok(payload) = message.get_payload::<String>() else {
                            continue;
                        };
                        handle(&runtime, &instance, &payload);
                    }
                    tracing::warn!("the redis subscription ended; subscribing again");
                }
                Err(e) => tracing::warn!(error.message = %e, "cannot subscribe to the cluster bus"),
            },
            Err(e) => tracing::warn!(error.message = %e, "cannot reach redis for the cluster bus"),
        }
        tokio::time::sleep(RESUBSCRIBE).await;
    }
}

fn handle(runtime: &Runtime, instance: &str, payload: &str) {
    let message: Message = match serde_json::from_str(payload) {
        Ok(message) => message,
        Err(e) => {
            tracing::warn!(error.message = %e, "ignoring a cluster message this node cannot read");
            return;
        }
    };
    if message.from == instance {
        return;
    }
    match message.body {
        Body::Committed { tenant, routed } => runtime.committed_elsewhere(&tenant, &routed),
        Body::Signal { signal } => runtime.engine.here(signal),
    }
}

//! `herald why`: a user's recent notification decisions — sent or not, and why — with each
//! delivery and its attempts. What support reads when someone asks "why wasn't I notified?".
//! Reads the data folder directly, also while the server runs.

use std::fmt::Write as _;

use anyhow::anyhow;
use herald_engine::delivery::{Attempt, DeliveryView};
use herald_engine::ids::{ConversationId, TenantId, UserId};
use herald_engine::notify::record::NotificationRecord;
use herald_engine::push::DeliveryOutcome;
use time::format_description::well_known::Rfc3339;

use crate::config::Config;
use crate::server::open_backend;

#[derive(clap::Args)]
pub struct WhyArgs {
    /// The user whose decisions to show.
    #[arg(long)]
    user: String,
    /// Only decisions about this conversation.
    #[arg(long)]
    conversation: Option<String>,
    #[arg(long, default_value = "default")]
    tenant: String,
    /// How many recent decisions to read (newest first).
    #[arg(long, default_value_t = 20)]
    limit: usize,
    /// One JSON document per decision (with its deliveries) instead of text.
    #[arg(long)]
    json: bool,
}

pub async fn run(args: WhyArgs, config: &Config) -> anyhow::Result<()> {
    let tenant = TenantId::parse(&args.tenant).map_err(|e| anyhow!("tenant id {e}"))?;
    let user = UserId::parse(&args.user).map_err(|e| anyhow!("user id {e}"))?;
    let conversation = args
        .conversation
        .as_deref()
        .map(ConversationId::parse)
        .transpose()
        .map_err(|e| anyhow!("conversation id {e}"))?;
    let backend = open_backend(config).await?;
    let records = backend
        .notify
        .user_notifications(&tenant, &user, args.limit)
        .await?;
    let records = records
        .into_iter()
        .filter(|r| conversation.is_none() || r.conversation_id == conversation);
    let mut shown = 0;
    for record in records {
        let deliveries = backend.queue.deliveries_of(&tenant, &record.id).await?;
        if args.json {
            let mut doc = serde_json::to_value(&record)?;
            doc["deliveries"] = serde_json::to_value(&deliveries)?;
            println!("{doc}");
        } else {
            print!("{}", describe(&record, &deliveries));
        }
        shown += 1;
    }
    if shown == 0 && !args.json {
        println!("No decisions recorded for user `{user}` in tenant `{tenant}`.");
    }
    Ok(())
}

/// One decision as a few indented lines.
fn describe(record: &NotificationRecord, deliveries: &[DeliveryView]) -> String {
    let mut out = String::new();
    let about = match (&record.conversation_id, record.position) {
        (Some(c), Some(p)) => format!(" in {c} at position {p}"),
        (Some(c), None) => format!(" in {c}"),
        _ => String::new(),
    };
    let app = record
        .app_id
        .as_ref()
        .map(|a| format!(" (app {a})"))
        .unwrap_or_default();
    let _ = writeln!(
        out,
        "{} {} {}{about}{app}: {} — {}",
        timestamp(record.created_at),
        record.id,
        record.kind.as_str(),
        record.status.as_str(),
        record.reason
    );
    for entry in &record.log {
        let _ = writeln!(
            out,
            "    {} {}: {}",
            timestamp(entry.at),
            entry.status.as_str(),
            entry.reason
        );
    }
    for delivery in deliveries {
        let target = delivery
            .device_id
            .as_deref()
            .or(delivery.endpoint_id.as_deref())
            .unwrap_or("-");
        let note = delivery
            .note
            .as_deref()
            .map(|n| format!(" — {n}"))
            .unwrap_or_default();
        let _ = writeln!(
            out,
            "    delivery {} via {} to {target}: {}{note}",
            delivery.id,
            delivery.channel,
            delivery.status.as_str()
        );
        for attempt in &delivery.attempts {
            let _ = writeln!(out, "        {}", attempt_line(attempt));
        }
    }
    out
}

fn attempt_line(attempt: &Attempt) -> String {
    let what = match &attempt.outcome {
        DeliveryOutcome::Delivered { provider_id } => match provider_id {
            Some(id) => format!("delivered (provider id {id})"),
            None => "delivered".into(),
        },
        DeliveryOutcome::Retryable { reason, status, .. } => {
            format!("retryable{}: {reason}", status_text(*status))
        }
        DeliveryOutcome::InvalidTarget { reason } => format!("invalid target: {reason}"),
        DeliveryOutcome::Unsent { reason } => format!("not sent: {reason}"),
        DeliveryOutcome::Permanent { reason, status } => {
            format!("failed{}: {reason}", status_text(*status))
        }
    };
    format!(
        "{} attempt ({} ms): {what}",
        timestamp(attempt.at),
        attempt.duration_ms
    )
}

fn status_text(status: Option<u16>) -> String {
    status.map(|s| format!(" (HTTP {s})")).unwrap_or_default()
}

fn timestamp(at: time::OffsetDateTime) -> String {
    at.format(&Rfc3339).unwrap_or_else(|_| at.to_string())
}

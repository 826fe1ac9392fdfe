//! Turning a decision to push into a `Push` and its deliveries: which devices and webhook
//! endpoints of the app receive it, and what it says.

use std::collections::BTreeSet;

use crate::app::{AppConfig, ContentMode};
use crate::device::{Device, DeviceChannel};
use crate::event::{EventBody, NoticeKind, StoredEvent};
use crate::ids::{AppId, ConversationId, TenantId, UserId};
use crate::notify::NewIds;
use crate::notify::content::{self, Vars};
use crate::notify::lead::{self, Lead};
use crate::notify::store::UserContext;
use crate::push::{Delivery, Line, Push, PushKind, PushSender, Target};
use time::OffsetDateTime;

/// Longest text Herald puts in a push before channels fit it to their own limits (events may
/// carry longer ones: [`crate::event::MAX_EVENT_TEXT_BYTES`]).
const MAX_PUSH_TEXT_BYTES: usize = 2_000;

/// Who and what a push is about.
pub struct Subject<'a> {
    pub tenant: &'a TenantId,
    pub user: &'a UserId,
    pub app_id: &'a AppId,
    pub app: &'a AppConfig,
    pub kind: PushKind,
    pub notification_id: &'a str,
    pub conversation: Option<&'a ConversationId>,
}

/// The webhook event type a push kind maps to.
pub fn webhook_event(kind: PushKind) -> Option<&'static str> {
    match kind {
        // A pushed notice is news in the conversation like a message; webhook receivers tell
        // them apart by the body's `kind`.
        PushKind::NewMessage | PushKind::Notice => Some("push_notification.new_message"),
        PushKind::Read => Some("push_notification.read_message"),
        PushKind::IncomingCall => Some("push_notification.incoming_call"),
        PushKind::RevokedCall => Some("push_notification.revoked_call"),
        PushKind::MissedCall => Some("push_notification.missed_call"),
        PushKind::Invitation | PushKind::Proactive | PushKind::Digest | PushKind::HealthCheck => {
            None
        }
    }
}

/// Whether the app can reach the user at all for this kind: a device, or a webhook for it.
pub fn reachable(app_id: &AppId, app: &AppConfig, devices: &[Device], kind: PushKind) -> bool {
    devices.iter().any(|d| &d.app_id == app_id)
        || webhook_event(kind)
            .is_some_and(|e| app.webhooks.iter().any(|w| w.events.iter().any(|x| x == e)))
}

/// The user's devices of this app that should get `kind`. Calls prefer VoIP: an iOS
/// installation with an `apns_voip` token rings through it, not through its alert token.
pub fn targets(
    subject: &Subject<'_>,
    devices: &[Device],
    channels: &[String],
    email: Option<&str>,
) -> Vec<Target> {
    // Email (SPEC §2.5): digests of unread messages, incoming and missed calls — never reads or
    // revocations — when the app has SMTP settings and the user an address.
    let email = email
        .filter(|_| subject.app.smtp.is_some())
        .map(|address| Target::Email {
            address: address.to_string(),
        });
    if subject.kind == PushKind::Digest {
        return email.into_iter().collect();
    }
    let of_app: Vec<&Device> = devices
        .iter()
        .filter(|d| &d.app_id == subject.app_id)
        .collect();
    let is_call = matches!(subject.kind, PushKind::IncomingCall | PushKind::RevokedCall);
    let voip_installations: BTreeSet<&str> = of_app
        .iter()
        .filter(|d| d.channel == DeviceChannel::ApnsVoip)
        .filter_map(|d| d.installation_id.as_deref())
        .collect();
    let mut targets: Vec<Target> = of_app
        .into_iter()
        .filter(|d| channels.is_empty() || channels.iter().any(|c| c == d.channel.as_str()))
        .filter(|d| match d.channel {
            // VoIP tokens only ever carry calls.
            DeviceChannel::ApnsVoip => is_call,
            DeviceChannel::Apns if is_call => !d
                .installation_id
                .as_deref()
                .is_some_and(|i| voip_installations.contains(i)),
            _ => true,
        })
        .map(|d| Target::Device { device: d.clone() })
        .collect();
    if matches!(subject.kind, PushKind::IncomingCall | PushKind::MissedCall) {
        targets.extend(email);
    }
    if let Some(event) = webhook_event(subject.kind) {
        for endpoint in subject
            .app
            .webhooks
            .iter()
            .filter(|w| w.events.iter().any(|e| e == event))
        {
            let devices = devices
                .iter()
                .filter(|d| &d.app_id == subject.app_id)
                .cloned()
                .collect();
            targets.push(Target::Webhook {
                endpoint_id: endpoint.id.clone(),
                devices,
            });
        }
    }
    targets
}

/// One delivery per target, each with a new id from `ids`.
pub fn deliveries(
    subject: &Subject<'_>,
    push: &Push,
    targets: Vec<Target>,
    ids: &mut dyn NewIds,
) -> Vec<Delivery> {
    targets
        .into_iter()
        .map(|target| Delivery {
            id: ids.delivery(),
            notification_id: subject.notification_id.to_string(),
            tenant_id: subject.tenant.clone(),
            app_id: subject.app_id.clone(),
            channel: match &target {
                Target::Device { device } => device.channel.as_str().to_string(),
                Target::Webhook { .. } => "webhook".to_string(),
                Target::Email { .. } => "email".to_string(),
            },
            target,
            push: push.clone(),
            attempt: 1,
        })
        .collect()
}

/// What a push says; everything but the text fields.
pub struct Facts {
    pub position: Option<u64>,
    /// The earliest position the push stands for (a push that waited folds several events).
    pub first_position: Option<u64>,
    /// The event behind the push, when one is.
    pub event: Option<(crate::ids::EventId, OffsetDateTime)>,
    pub message_count: u32,
    pub unread: u64,
    pub badge: u64,
    pub call_id: Option<String>,
    pub missed_calls: u64,
    pub now: OffsetDateTime,
    pub expires_at: OffsetDateTime,
}

impl Facts {
    /// What every push about `event` to this user shares; counts start at zero and the caller
    /// sets what differs with struct-update syntax.
    pub fn about(
        event: Option<&StoredEvent>,
        ctx: &UserContext,
        app: &AppId,
        now: OffsetDateTime,
        expires_at: OffsetDateTime,
    ) -> Facts {
        Facts {
            position: None,
            first_position: None,
            event: event.map(|e| (e.event.event_id.clone(), e.recorded_at)),
            message_count: 0,
            unread: 0,
            badge: ctx.unread_total,
            call_id: None,
            missed_calls: ctx.states.get(app).map_or(0, |s| s.missed_calls),
            now,
            expires_at,
        }
    }
}

/// A push with no text: reads, revocations, and everything in `metadata_only` apps.
pub fn bare(subject: &Subject<'_>, facts: &Facts) -> Push {
    let collapse_key = match (&facts.call_id, subject.conversation) {
        (Some(call), _) if subject.kind != PushKind::MissedCall => format!("call:{call}"),
        (_, Some(conversation)) => format!("conv:{conversation}"),
        _ => format!("note:{}", subject.notification_id),
    };
    Push {
        kind: subject.kind,
        tenant_id: subject.tenant.clone(),
        app_id: subject.app_id.clone(),
        user_id: subject.user.clone(),
        conversation_id: subject.conversation.cloned(),
        position: facts.position,
        event_id: facts.event.as_ref().map(|(id, _)| id.clone()),
        event_at: facts.event.as_ref().map(|(_, at)| *at),
        title: None,
        body: None,
        lines: vec![],
        sender: None,
        message_count: facts.message_count,
        unread: facts.unread,
        badge: facts.badge,
        call_id: facts.call_id.clone(),
        missed_calls: facts.missed_calls,
        collapse_key,
        high_priority: matches!(
            subject.kind,
            PushKind::IncomingCall
                | PushKind::NewMessage
                | PushKind::Notice
                | PushKind::Invitation
                | PushKind::MissedCall
        ),
        data: Default::default(),
        created_at: facts.now,
        expires_at: facts.expires_at,
        gateway: None,
        gms: None,
    }
}

/// A push about the latest content of a conversation: led by the event at `facts.position`
/// (see [`lead`]) — a new message, or a notice — and carrying, in `full` mode, the app's number
/// of transcript lines from `recent` (oldest first).
pub fn new_message(
    subject: &Subject<'_>,
    facts: &Facts,
    recent: &[StoredEvent],
    locale: Option<&str>,
) -> Push {
    let mut push = bare(subject, facts);
    let Some(lead) = lead::of(recent, facts.position) else {
        return push;
    };
    let event = lead.event();
    push.kind = lead.kind();
    push.event_id = Some(event.event.event_id.clone());
    push.event_at = Some(event.recorded_at);
    let (sender, template) = match lead {
        Lead::Message(_, m) => (Some(&m.sender), message_template(facts)),
        Lead::Notice(_, kind, n) => (n.actor.as_ref(), notice_template(kind)),
    };
    push.sender = sender.map(|s| PushSender {
        id: s.id.clone(),
        role: s.role,
        name: None,
    });
    if subject.app.content.mode == ContentMode::MetadataOnly {
        return push;
    }
    let sender_name = sender.map(|s| s.name.clone().unwrap_or_else(|| s.id.to_string()));
    if let Some(sender) = &mut push.sender {
        sender.name = sender_name.clone();
    }
    let (text, url) = match lead {
        Lead::Message(_, m) => (m.text.as_str(), None),
        // A notice may carry only a URL; its text is then the URL.
        Lead::Notice(_, _, n) => (
            n.text.as_deref().or(n.url.as_deref()).unwrap_or(""),
            n.url.as_deref(),
        ),
    };
    let mut vars = Vars::from([
        ("sender_name", sender_name.unwrap_or_default()),
        ("text", content::shorten(text, MAX_PUSH_TEXT_BYTES)),
        ("count", facts.message_count.to_string()),
        ("unread", facts.unread.to_string()),
        (
            "conversation_id",
            subject
                .conversation
                .map(|c| c.to_string())
                .unwrap_or_default(),
        ),
    ]);
    if let Some(url) = url {
        vars.insert("url", url.to_string());
        push.data.insert("url".into(), url.to_string());
    }
    let (title, body) = content::render(template, locale, &subject.app.templates, &vars);
    push.title = Some(title);
    push.body = Some(body);
    push.lines = lines(recent, usize::from(subject.app.content.transcript_lines));
    push
}

fn message_template(facts: &Facts) -> &'static str {
    if facts.message_count > 1 {
        "new_messages"
    } else {
        "new_message"
    }
}

fn notice_template(kind: NoticeKind) -> &'static str {
    match kind {
        NoticeKind::PushUrl => "notice_push_url",
        _ => "notice",
    }
}

/// The last `keep` messages of `recent` as transcript lines.
fn lines(recent: &[StoredEvent], keep: usize) -> Vec<Line> {
    let messages: Vec<Line> = recent
        .iter()
        .filter_map(|e| match &e.event.body {
            EventBody::MessageCreated(m) => Some(Line {
                sender_name: m.sender.name.clone(),
                text: content::shorten(&m.text, MAX_PUSH_TEXT_BYTES / 4),
            }),
            _ => None,
        })
        .collect();
    let from = messages.len().saturating_sub(keep);
    messages.into_iter().skip(from).collect()
}

/// An email digest: every message still unread (`recent`, oldest first) as lines.
pub fn digest(
    subject: &Subject<'_>,
    facts: &Facts,
    recent: &[StoredEvent],
    locale: Option<&str>,
) -> Push {
    let mut push = new_message(subject, facts, recent, locale);
    push.kind = PushKind::Digest;
    push.high_priority = false;
    if subject.app.content.mode == ContentMode::Full {
        push.lines = lines(recent, usize::MAX);
    }
    push
}

/// An incoming- or missed-call push.
pub fn call(subject: &Subject<'_>, facts: &Facts, caller_name: &str, locale: Option<&str>) -> Push {
    let mut push = bare(subject, facts);
    if subject.app.content.mode == ContentMode::MetadataOnly {
        return push;
    }
    let vars = Vars::from([
        ("caller_name", caller_name.to_string()),
        (
            "conversation_id",
            subject
                .conversation
                .map(|c| c.to_string())
                .unwrap_or_default(),
        ),
    ]);
    let kind = if subject.kind == PushKind::IncomingCall {
        "incoming_call"
    } else {
        "missed_call"
    };
    let (title, body) = content::render(kind, locale, &subject.app.templates, &vars);
    push.title = Some(title);
    push.body = Some(body);
    push
}

/// An invitation push: who added the user to the conversation.
pub fn invitation(
    subject: &Subject<'_>,
    facts: &Facts,
    inviter_name: &str,
    locale: Option<&str>,
) -> Push {
    let mut push = bare(subject, facts);
    if subject.app.content.mode == ContentMode::MetadataOnly {
        return push;
    }
    let vars = Vars::from([
        ("inviter_name", inviter_name.to_string()),
        (
            "conversation_id",
            subject
                .conversation
                .map(|c| c.to_string())
                .unwrap_or_default(),
        ),
    ]);
    let (title, body) = content::render("invitation", locale, &subject.app.templates, &vars);
    push.title = Some(title);
    push.body = Some(body);
    push
}

/// The language a user's texts are written in: their preference, else a device's.
pub fn locale<'a>(
    preference: Option<&'a str>,
    devices: &'a [Device],
    app: &AppId,
) -> Option<&'a str> {
    preference.or_else(|| {
        devices
            .iter()
            .filter(|d| &d.app_id == app)
            .find_map(|d| d.locale.as_deref())
    })
}

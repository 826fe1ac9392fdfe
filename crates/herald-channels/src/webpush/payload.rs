//! What a Web Push message says, and the headers that steer it.
//!
//! The plaintext is one JSON object for the service worker:
//! `{kind, title?, body?, conversation_id?, position?, unread, badge, tag, message_count,
//! call_id?, missed_calls?, event_id?, notification_id, data?}` — `tag` is the push's collapse
//! key, for `showNotification({tag})`, so a read push can close what a message push showed.
//! Silent pushes and `metadata_only` pushes carry no text. It is cut to 3993 bytes (RFC 8291
//! §4) by shortening the body, then the title, then dropping custom data — never by failing.

use herald_engine::notify::content::shorten;
use herald_engine::push::{Delivery, Push, PushKind};
use serde_json::{Map, Value, json};
use sha2::{Digest, Sha256};

use super::ece::MAX_PLAINTEXT;

/// RFC 8030 §5.3 `Urgency`: calls ring at once, visible messages are normal, silent state
/// updates may wait for the device to wake.
pub fn urgency(kind: PushKind) -> &'static str {
    match kind {
        PushKind::IncomingCall => "high",
        kind if kind.is_silent() => "low",
        _ => "normal",
    }
}

/// The `Urgency` of `push`: by its kind, or for a gateway's payload, `normal` unless its client
/// asked for less (Matrix `prio: low` → `low`, as Sygnal sends).
pub fn urgency_of(push: &Push) -> &'static str {
    match &push.gateway {
        Some(_) if !push.high_priority => "low",
        Some(_) => "normal",
        None => urgency(push.kind),
    }
}

/// RFC 8030 §5.4 `Topic`: at most 32 characters of the URL-safe base64 alphabet. The first 24
/// bytes of SHA-256 of the collapse key, base64url (exactly 32 characters), so a newer push of
/// a conversation replaces an older one the device has not fetched yet.
pub fn topic(collapse_key: &str) -> String {
    use base64::Engine;
    let digest = Sha256::digest(collapse_key.as_bytes());
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(&digest[..24])
}

fn fields(delivery: &Delivery) -> Map<String, Value> {
    let push = &delivery.push;
    let mut m = Map::new();
    m.insert("kind".into(), json!(push.kind.as_str()));
    if let Some(c) = &push.conversation_id {
        m.insert("conversation_id".into(), json!(c.to_string()));
    }
    if let Some(p) = push.position {
        m.insert("position".into(), json!(p));
    }
    m.insert("unread".into(), json!(push.unread));
    m.insert("badge".into(), json!(push.badge));
    m.insert("tag".into(), json!(push.collapse_key));
    m.insert("message_count".into(), json!(push.message_count));
    if let Some(c) = &push.call_id {
        m.insert("call_id".into(), json!(c));
    }
    if push.missed_calls > 0 {
        m.insert("missed_calls".into(), json!(push.missed_calls));
    }
    if let Some(e) = &push.event_id {
        m.insert("event_id".into(), json!(e.to_string()));
    }
    m.insert("notification_id".into(), json!(delivery.notification_id));
    if !push.data.is_empty() {
        m.insert("data".into(), json!(push.data));
    }
    m
}

struct Parts {
    fields: Map<String, Value>,
    title: Option<String>,
    body: Option<String>,
}

impl Parts {
    fn render(&self) -> Vec<u8> {
        let mut m = self.fields.clone();
        if let Some(t) = &self.title {
            m.insert("title".into(), json!(t));
        }
        if let Some(b) = &self.body {
            m.insert("body".into(), json!(b));
        }
        serde_json::to_vec(&Value::Object(m)).expect("JSON values always serialise")
    }

    fn text(&mut self, body: bool) -> &mut Option<String> {
        if body {
            &mut self.body
        } else {
            &mut self.title
        }
    }

    /// Shortens the body (or title) to the longest cut that fits; answers whether it fits.
    fn shrink(&mut self, body: bool, limit: usize) -> bool {
        let Some(original) = self.text(body).take().filter(|t| !t.is_empty()) else {
            return false;
        };
        let fits = |parts: &mut Parts, max: usize| {
            *parts.text(body) = Some(shorten(&original, max));
            parts.render().len() <= limit
        };
        let (mut lo, mut hi) = (0usize, original.len());
        if !fits(self, lo) {
            *self.text(body) = None;
            return false;
        }
        while hi - lo > 1 {
            let mid = lo + (hi - lo) / 2;
            if fits(self, mid) { lo = mid } else { hi = mid }
        }
        fits(self, lo)
    }
}

/// The plaintext of `delivery`, at most [`MAX_PLAINTEXT`] bytes.
pub fn render(delivery: &Delivery) -> Vec<u8> {
    render_within(delivery, MAX_PLAINTEXT)
}

fn render_within(delivery: &Delivery, limit: usize) -> Vec<u8> {
    let push = &delivery.push;
    let silent = push.kind.is_silent();
    let mut parts = Parts {
        fields: fields(delivery),
        title: push.title.clone().filter(|_| !silent),
        body: push.body.clone().filter(|_| !silent),
    };
    let plaintext = parts.render();
    if plaintext.len() <= limit || parts.shrink(true, limit) || parts.shrink(false, limit) {
        return parts.render();
    }
    parts.fields.remove("data");
    let plaintext = parts.render();
    if plaintext.len() <= limit {
        return plaintext;
    }
    let essentials = [
        "kind",
        "notification_id",
        "conversation_id",
        "position",
        "call_id",
        "tag",
    ];
    parts.fields.retain(|k, _| essentials.contains(&k.as_str()));
    parts.render()
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use herald_engine::ids::{AppId, ConversationId, TenantId, UserId};
    use herald_engine::push::{Push, Target};

    pub(crate) fn delivery(kind: PushKind, title: &str, body: &str) -> Delivery {
        let now = time::macros::datetime!(2026-11-23 10:00 UTC);
        Delivery {
            id: "dlv_1".into(),
            notification_id: "ntf_1".into(),
            tenant_id: TenantId::parse("default").unwrap(),
            app_id: AppId::parse("chat").unwrap(),
            channel: "webpush".into(),
            target: Target::Email {
                address: "x@example.com".into(),
            },
            push: Push {
                kind,
                tenant_id: TenantId::parse("default").unwrap(),
                app_id: AppId::parse("chat").unwrap(),
                user_id: UserId::parse("visitor-1").unwrap(),
                conversation_id: Some(ConversationId::parse("c1").unwrap()),
                position: Some(7),
                event_id: None,
                event_at: None,
                title: Some(title.into()),
                body: Some(body.into()),
                lines: vec![],
                sender: None,
                message_count: 2,
                unread: 2,
                badge: 5,
                call_id: None,
                missed_calls: 0,
                collapse_key: "conv:c1".into(),
                high_priority: true,
                data: Default::default(),
                created_at: now,
                expires_at: now + time::Duration::hours(1),
                gateway: None,
                gms: None,
            },
            attempt: 1,
        }
    }

    fn parse(bytes: &[u8]) -> Value {
        serde_json::from_slice(bytes).unwrap()
    }

    #[test]
    fn a_message_push_says_what_the_service_worker_needs() {
        let v = parse(&render(&delivery(PushKind::NewMessage, "Ann", "Hello")));
        assert_eq!(
            v,
            json!({"kind": "new_message", "title": "Ann", "body": "Hello", "conversation_id": "c1",
                "position": 7, "unread": 2, "badge": 5, "tag": "conv:c1", "message_count": 2,
                "notification_id": "ntf_1"})
        );
    }

    #[test]
    fn silent_pushes_carry_no_text() {
        let v = parse(&render(&delivery(PushKind::Read, "Ann", "Hello")));
        assert!(v.get("title").is_none() && v.get("body").is_none());
        assert_eq!(v["tag"], "conv:c1");
    }

    #[test]
    fn long_text_is_cut_on_character_boundaries_to_3993_bytes() {
        let body = "ü".repeat(6000);
        let title = "é".repeat(300);
        let mut d = delivery(PushKind::NewMessage, &title, &body);
        d.push.data.insert("k".into(), "v".repeat(100));
        let bytes = render(&d);
        assert!(bytes.len() <= MAX_PLAINTEXT, "{}", bytes.len());
        assert!(bytes.len() > MAX_PLAINTEXT - 8, "as much as fits is kept");
        let v = parse(&bytes);
        assert_eq!(v["title"].as_str().unwrap(), title, "the body goes first");
        assert!(v["body"].as_str().unwrap().ends_with('…'));

        let huge_title = "t".repeat(9000);
        let v = parse(&render(&delivery(PushKind::NewMessage, &huge_title, &body)));
        assert!(v.get("body").is_none(), "no room for any body");
        assert!(v["title"].as_str().unwrap().ends_with('…'));
    }

    #[test]
    fn custom_data_goes_when_text_is_not_enough() {
        let mut d = delivery(PushKind::Proactive, "t", "b");
        d.push.data.insert("blob".into(), "x".repeat(5000));
        let v = parse(&render(&d));
        assert!(v.get("data").is_none());
        assert_eq!(v["kind"], "proactive");
    }

    #[test]
    fn topics_are_32_url_safe_characters_per_collapse_key() {
        let t = topic("conv:c1");
        assert_eq!(t.len(), 32);
        assert!(
            t.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        );
        assert_eq!(t, topic("conv:c1"));
        assert_ne!(t, topic("conv:c2"));
        assert_eq!(urgency(PushKind::IncomingCall), "high");
        assert_eq!(urgency(PushKind::NewMessage), "normal");
        assert_eq!(urgency(PushKind::Read), "low");
        assert_eq!(urgency(PushKind::RevokedCall), "low");
    }
}

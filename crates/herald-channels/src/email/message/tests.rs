use super::*;
use herald_engine::ids::{AppId, TenantId, UserId};
use herald_engine::push::Line;
use lettre::message::Mailbox;
use time::OffsetDateTime;

fn push(kind: PushKind) -> Push {
    Push {
        kind,
        tenant_id: TenantId::parse("t1").unwrap(),
        app_id: AppId::parse("chat").unwrap(),
        user_id: UserId::parse("alice").unwrap(),
        conversation_id: None,
        position: Some(3),
        event_id: None,
        event_at: None,
        title: None,
        body: None,
        lines: vec![],
        sender: None,
        message_count: 0,
        unread: 0,
        badge: 0,
        call_id: None,
        missed_calls: 0,
        collapse_key: "conv:c1".into(),
        high_priority: false,
        data: Default::default(),
        created_at: OffsetDateTime::UNIX_EPOCH,
        expires_at: OffsetDateTime::UNIX_EPOCH,
        gateway: None,
        gms: None,
    }
}

fn line(sender: Option<&str>, text: &str) -> Line {
    Line {
        sender_name: sender.map(str::to_string),
        text: text.to_string(),
    }
}

const NASTY: &str = "<script>alert('x')</script> & \"quotes\"";

#[test]
fn html_escaping_covers_the_five_characters() {
    assert_eq!(
        escape_html(NASTY),
        "&lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt; &amp; &quot;quotes&quot;"
    );
    assert_eq!(escape_html("plain äöü"), "plain äöü");
}

#[test]
fn a_digest_lists_the_lines_and_escapes_every_value_in_html() {
    let mut p = push(PushKind::Digest);
    p.message_count = 2;
    p.lines = vec![
        line(Some(NASTY), "first\nsecond line"),
        line(Some("Bob"), "<b>&\"quotes\"</b>"),
    ];
    p.title = Some(format!("2 new messages from {NASTY}"));
    let r = render(&p, false, None);

    assert_eq!(r.subject, format!("2 new messages from {NASTY}"));
    assert!(
        r.text
            .contains("There are 2 unread messages in your conversation:"),
        "{}",
        r.text
    );
    assert!(r.text.contains(&format!("{NASTY}: first\n    second line")));
    assert!(r.text.contains("Bob: <b>&\"quotes\"</b>"));
    assert!(r.text.contains("Open the app to read and reply."));

    assert!(!r.html.contains("<script>"), "{}", r.html);
    assert!(!r.html.contains("<b>"), "{}", r.html);
    assert!(r.html.contains(
        "<strong>&lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt; &amp; &quot;quotes&quot;</strong>: first<br>\nsecond line"
    ));
    assert!(
        r.html
            .contains("<strong>Bob</strong>: &lt;b&gt;&amp;&quot;quotes&quot;&lt;/b&gt;")
    );
    assert!(r.html.contains("<title>2 new messages from &lt;script&gt;"));
}

#[test]
fn a_digest_counts_what_it_does_not_show_and_uses_the_built_in_subject() {
    let mut p = push(PushKind::Digest);
    p.message_count = 5;
    p.lines = vec![line(None, "latest")];
    let r = render(&p, false, None);
    assert_eq!(r.subject, "You have 5 unread messages");
    assert!(r.text.contains("Someone: latest"), "{}", r.text);
    assert!(r.text.contains("4 earlier messages are not shown."));

    p.message_count = 1;
    assert_eq!(render(&p, false, None).subject, "You have 1 unread message");
    // No count at all: the lines are the count.
    p.message_count = 0;
    p.lines = vec![line(None, "a"), line(None, "b")];
    assert_eq!(
        render(&p, false, None).subject,
        "You have 2 unread messages"
    );
}

#[test]
fn metadata_only_emails_carry_no_content_even_if_the_push_had_some() {
    let mut p = push(PushKind::Digest);
    p.message_count = 3;
    p.title = Some("secret title".into());
    p.body = Some("secret body".into());
    p.lines = vec![line(Some("Ann"), "secret text")];
    let r = render(&p, true, None);
    assert_eq!(r.subject, "You have 3 unread messages");
    for body in [&r.text, &r.html] {
        assert!(body.contains("There are 3 unread messages in your conversation."));
        assert!(!body.contains("secret"), "{body}");
        assert!(!body.contains("Ann"), "{body}");
    }

    let mut call = push(PushKind::IncomingCall);
    call.title = Some("secret".into());
    let r = render(&call, true, None);
    assert_eq!(r.subject, "Incoming call");
    assert!(!r.text.contains("secret"));
}

#[test]
fn calls_use_the_engines_texts_and_fall_back_to_the_built_in_ones() {
    let mut p = push(PushKind::IncomingCall);
    p.title = Some("Incoming call".into());
    p.body = Some("Ann & Co is calling".into());
    let r = render(&p, false, None);
    assert_eq!(r.subject, "Incoming call");
    assert!(
        r.text
            .contains("Ann & Co is calling\n\nOpen the app to answer.")
    );
    assert!(r.html.contains("<p>Ann &amp; Co is calling</p>"));

    let mut p = push(PushKind::MissedCall);
    p.missed_calls = 3;
    let r = render(&p, false, None);
    assert_eq!(r.subject, "Missed call");
    assert!(r.text.contains("You missed a call."));
    assert!(r.text.contains("You have 3 missed calls."));

    let mut p = push(PushKind::Proactive);
    p.title = Some("Your order\r\nBcc: evil@example.com".into());
    let r = render(&p, false, None);
    assert_eq!(r.subject, "Your order Bcc: evil@example.com", "one line");
    assert!(r.text.contains("You have a new notification."));
}

#[test]
fn german_texts_for_de_locales() {
    let mut p = push(PushKind::Digest);
    p.message_count = 2;
    p.lines = vec![line(Some("Ann"), "Hallo")];
    let r = render(&p, false, Some("de-AT"));
    assert_eq!(r.subject, "Sie haben 2 ungelesene Nachrichten");
    assert!(
        r.text
            .contains("In Ihrer Unterhaltung gibt es 2 ungelesene Nachrichten:")
    );
    assert!(
        r.text
            .contains("1 ältere Nachrichten werden nicht angezeigt.")
    );
    assert!(r.html.starts_with("<!DOCTYPE html>\n<html lang=\"de\">"));
    assert_eq!(
        render(&push(PushKind::MissedCall), false, Some("de")).subject,
        "Verpasster Anruf"
    );
    assert_eq!(
        render(&push(PushKind::MissedCall), false, Some("ja")).subject,
        "Missed call"
    );
}

#[test]
fn only_digests_calls_and_proactive_notifications_are_emailed() {
    assert!(emailed(PushKind::Digest));
    assert!(emailed(PushKind::IncomingCall));
    assert!(emailed(PushKind::MissedCall));
    assert!(emailed(PushKind::Proactive));
    assert!(!emailed(PushKind::NewMessage));
    assert!(!emailed(PushKind::Read));
    assert!(!emailed(PushKind::RevokedCall));
}

#[test]
fn the_message_id_is_derived_from_the_delivery_id() {
    let from: Mailbox = "Herald <noreply@example.com>".parse().unwrap();
    assert_eq!(
        message_id("dlv_0190abc", &from),
        "<herald.dlv_0190abc@example.com>"
    );
    assert_eq!(
        message_id("d 1<>@x.y", &from),
        "<herald.d-1---x-y@example.com>"
    );
}

#[test]
fn the_message_has_both_bodies_and_the_headers() {
    let mut p = push(PushKind::Digest);
    p.message_count = 1;
    p.lines = vec![line(Some("Ann"), "Grüße <3")];
    let r = render(&p, false, None);
    let message = build(
        "dlv_1",
        "Herald <noreply@example.com>",
        "bob@example.org",
        &r,
    )
    .expect("built");
    let raw = String::from_utf8(message.formatted()).unwrap();
    assert!(raw.is_ascii(), "7-bit safe: {raw}");
    for header in [
        "From: Herald <noreply@example.com>\r\n",
        "To: bob@example.org\r\n",
        "Subject: You have 1 unread message\r\n",
        "Message-ID: <herald.dlv_1@example.com>\r\n",
        "Auto-Submitted: auto-generated\r\n",
        "Content-Type: multipart/alternative;",
        "Content-Type: text/plain; charset=utf-8",
        "Content-Type: text/html; charset=utf-8",
    ] {
        assert!(raw.contains(header), "{header:?} missing in\n{raw}");
    }
    assert!(raw.contains("\r\nDate: "));
    assert!(!raw.contains("List-Unsubscribe"));

    assert_eq!(
        build("d", "not an address", "bob@example.org", &r).unwrap_err(),
        "the app's smtp.from is not an email address"
    );
    assert_eq!(
        build("d", "noreply@example.com", "bob", &r).unwrap_err(),
        "the target is not a valid email address"
    );
}

//! Payload fitting: a message too large is cut on a character boundary.

use herald_engine::delivery::Channel;
use herald_engine::device::DeviceChannel;
use herald_engine::push::PushKind;
use herald_testkit::fake_apns::FakeApns;
use time::OffsetDateTime;

use super::*;

#[tokio::test]
async fn a_ten_kilobyte_message_is_cut_to_fit_on_a_character_boundary() {
    let fake = FakeApns::start().await;
    let app = app(&fake.url());
    let ch = channel();
    let text = "Grüße 😀 \"quoted\" ".repeat(500);
    assert!(text.len() > 10_000);
    let now = OffsetDateTime::now_utc();
    let alert = delivery(
        "d1",
        device("abcd", DeviceChannel::Apns, now),
        PushKind::NewMessage,
        &text,
        now,
    );
    let mut voip = delivery(
        "d2",
        device("dcba", DeviceChannel::ApnsVoip, now),
        PushKind::IncomingCall,
        &text,
        now,
    );
    voip.push.call_id = Some("call-1".into());
    assert!(delivered(&ch.deliver(&alert, &app).await));
    assert!(delivered(&ch.deliver(&voip, &app).await));
    let requests = fake.requests();
    for (request, limit, body) in [
        (
            &requests[0],
            4096,
            &requests[0].payload["aps"]["alert"]["body"],
        ),
        (&requests[1], 5120, &requests[1].payload["herald"]["body"]),
    ] {
        assert!(
            request.raw.len() <= limit,
            "{} > {limit}",
            request.raw.len()
        );
        assert!(request.raw.len() > limit - 8, "cut no more than needed");
        let body = body.as_str().unwrap();
        assert!(body.ends_with('…'));
        assert!(text.starts_with(body.trim_end_matches('…')));
    }
}

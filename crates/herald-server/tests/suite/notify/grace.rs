//! The grace delay, the coalesce window, and read pushes.

use serde_json::json;

use super::*;

#[tokio::test]
async fn agent_writes_while_the_visitor_is_away_one_push_after_the_grace_delay_carrying_the_latest_message_badge_3()
 {
    let mut s = Story::new(json!({})).await;
    s.say("agent-7", "agent", "Hello").await;
    s.say("agent-7", "agent", "Are you there?").await;
    s.say("agent-7", "agent", "Your order shipped").await;
    let before = s.decisions("visitor-1").await;
    assert_eq!(with_status(&before, "pending").len(), 1, "{before:#?}");
    assert_eq!(with_status(&before, "coalesced").len(), 2);
    assert!(
        with_status(&before, "sent").is_empty(),
        "nothing before the grace delay"
    );

    s.advance(5_000);
    let after = s.decisions("visitor-1").await;
    let sent = with_status(&after, "sent");
    assert_eq!(sent.len(), 1, "{after:#?}");
    let push = &sent[0]["push"];
    assert_eq!(push["kind"], "new_message");
    assert_eq!(push["message_count"], 3);
    assert_eq!(push["body"], "Your order shipped");
    assert_eq!(push["title"], "3 new messages from Ann");
    assert_eq!(push["badge"], 3);
    assert_eq!(push["unread"], 3);
    assert_eq!(push["collapse_key"], "conv:c1");
    let deliveries = s.deliveries(sent[0]).await;
    assert_eq!(deliveries.len(), 1);
    assert_eq!(deliveries[0]["channel"], "apns");
}

#[tokio::test]
async fn a_visitor_who_is_looking_gets_the_message_live_and_no_push() {
    let mut s = Story::new(json!({})).await;
    let mut live = s.hub.live("visitor-1").await;
    live.resume(json!({})).await;
    s.say("agent-7", "agent", "Hi").await;
    assert_eq!(live.next_of("event").await["event"]["text"], "Hi");
    s.advance(60_000);
    let decisions = s.decisions("visitor-1").await;
    assert_eq!(decisions.len(), 1);
    assert_eq!(decisions[0]["status"], "suppressed");
    assert!(
        decisions[0]["reason"].as_str().unwrap().contains("looking"),
        "{}",
        decisions[0]
    );
    assert_eq!(decisions[0]["looking"]["state"], "foreground");
}

#[tokio::test]
async fn a_visitor_back_before_the_grace_delay_gets_nothing() {
    let mut s = Story::new(json!({})).await;
    s.say("agent-7", "agent", "Hi").await;
    s.advance(2_000);
    let mut live = s.hub.live("visitor-1").await;
    live.resume(json!({})).await;
    s.advance(10_000);
    let decisions = s.decisions("visitor-1").await;
    assert_eq!(decisions.len(), 1, "{decisions:#?}");
    assert_eq!(decisions[0]["status"], "cancelled");
    assert!(
        decisions[0]["reason"]
            .as_str()
            .unwrap()
            .contains("came back")
    );
}

#[tokio::test]
async fn a_grace_delay_of_zero_pushes_at_once() {
    let mut s = Story::new(json!({"grace_delay_ms": 0})).await;
    s.say("agent-7", "agent", "Now").await;
    let decisions = s.decisions("visitor-1").await;
    assert_eq!(with_status(&decisions, "sent").len(), 1, "{decisions:#?}");
}

#[tokio::test]
async fn after_the_first_push_later_messages_go_at_once_but_at_most_one_per_coalesce_window() {
    let mut s = Story::new(json!({})).await;
    s.say("agent-7", "agent", "one").await;
    s.advance(5_000);
    assert_eq!(
        with_status(&s.decisions("visitor-1").await, "sent").len(),
        1
    );
    s.advance(1_000);
    s.say("agent-7", "agent", "two").await;
    s.say("agent-7", "agent", "three").await;
    assert_eq!(
        with_status(&s.decisions("visitor-1").await, "sent").len(),
        1,
        "inside the window: waits"
    );
    s.advance(2_000);
    let decisions = s.decisions("visitor-1").await;
    let sent = with_status(&decisions, "sent");
    assert_eq!(sent.len(), 2);
    assert_eq!(sent[1]["push"]["message_count"], 2);
    assert_eq!(sent[1]["push"]["body"], "three");
    s.advance(10_000);
    s.say("agent-7", "agent", "four").await;
    assert_eq!(
        with_status(&s.decisions("visitor-1").await, "sent").len(),
        3,
        "after the window: at once, no grace"
    );
}

#[tokio::test]
async fn reading_on_another_device_sends_a_silent_read_push_with_the_same_collapse_key_and_badge_0()
{
    let mut s = Story::new(json!({})).await;
    let position = s.say("agent-7", "agent", "Hi").await;
    s.advance(5_000);
    s.decisions("visitor-1").await;
    let token = s.hub.token("visitor-1").await;
    let (status, read) = s
        .hub
        .post(
            "/v1/me/conversations/c1/read",
            &token,
            json!({"position": position}),
        )
        .await;
    assert_eq!(status, 200, "{read}");
    let decisions = s.decisions("visitor-1").await;
    let sent = with_status(&decisions, "sent");
    assert_eq!(sent.len(), 2, "{decisions:#?}");
    let read_push = &sent[1]["push"];
    assert_eq!(read_push["kind"], "read");
    assert_eq!(read_push["collapse_key"], sent[0]["push"]["collapse_key"]);
    assert_eq!(read_push["badge"], 0);
    assert!(
        read_push.get("title").is_none() && read_push.get("body").is_none(),
        "silent"
    );
    assert_eq!(read_push["high_priority"], false);
}

#[tokio::test]
async fn a_read_before_the_grace_delay_cancels_the_push() {
    let mut s = Story::new(json!({})).await;
    let position = s.say("agent-7", "agent", "Hi").await;
    let token = s.hub.token("visitor-1").await;
    s.hub
        .post(
            "/v1/me/conversations/c1/read",
            &token,
            json!({"position": position}),
        )
        .await;
    s.advance(10_000);
    let decisions = s.decisions("visitor-1").await;
    assert_eq!(decisions.len(), 1, "{decisions:#?}");
    assert_eq!(decisions[0]["status"], "cancelled");
    assert!(decisions[0]["reason"].as_str().unwrap().contains("read"));
}

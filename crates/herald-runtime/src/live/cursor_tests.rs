//! The cursor against the SQLite store: what it emits, in order, for resumes and live events.

use std::sync::Arc;

use herald_engine::store::Store;
use herald_store_conformance::support::{append, conversation, message, tenant, user};
use herald_store_sqlite::SqliteStore;

use super::*;

/// What a sink received, owned.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Got {
    Event(String, u64),
    Unread(String),
    CaughtUp(String, u64),
}

#[derive(Default)]
struct Recorder {
    got: Vec<Got>,
    /// Fails after this many items.
    gone_after: Option<usize>,
}

impl Sink for Recorder {
    async fn emit(&mut self, item: Item<'_>) -> Result<(), Gone> {
        if self.gone_after == Some(self.got.len()) {
            return Err(Gone);
        }
        self.got.push(match item {
            Item::Event {
                conversation,
                position,
                json,
            } => {
                let event: serde_json::Value = serde_json::from_str(json).expect("JSON");
                if let Some(stored) = event.get("position") {
                    assert_eq!(stored, position, "the frame's position is the event's");
                }
                Got::Event(conversation.to_string(), position)
            }
            Item::Unread(frame) => Got::Unread(frame.to_string()),
            Item::CaughtUp {
                conversation,
                position,
            } => Got::CaughtUp(conversation.to_string(), position),
        });
        Ok(())
    }
}

struct Fixture {
    _dir: tempfile::TempDir,
    store: Arc<dyn Store>,
    tenant: TenantId,
}

impl Fixture {
    /// A store where `a1` has said `messages` things in `c1`.
    async fn new(messages: u64) -> Fixture {
        let dir = tempfile::tempdir().expect("a temp dir");
        let store = SqliteStore::open(&dir.path().join("herald.db")).expect("the store opens");
        let fixture = Fixture {
            _dir: dir,
            store: Arc::new(store),
            tenant: tenant("acme"),
        };
        if messages > 0 {
            fixture.say(1..=messages).await;
        }
        fixture
    }

    async fn say(&self, positions: std::ops::RangeInclusive<u64>) {
        let events = positions
            .map(|n| message(&format!("e{n}"), "c1", "a1", "agent", &format!("m{n}")))
            .collect();
        append(&self.store, &self.tenant, events).await;
    }

    fn reader(&self, page: usize) -> Reader<'_> {
        Reader {
            store: self.store.as_ref(),
            tenant: &self.tenant,
            page,
        }
    }
}

fn live(position: u64) -> Outbound {
    Outbound::Event(Arc::new(LiveEvent {
        conversation_id: conversation("c1"),
        position,
        json: format!(r#"{{"live":{position}}}"#),
    }))
}

fn event(position: u64) -> Got {
    Got::Event("c1".into(), position)
}

fn caught_up(position: u64) -> Got {
    Got::CaughtUp("c1".into(), position)
}

#[tokio::test]
async fn a_live_event_already_sent_by_catch_up_is_not_sent_twice() {
    let f = Fixture::new(3).await;
    let (mut cursor, mut sink) = (Cursor::new(), Recorder::default());
    let a1 = user("a1");
    cursor
        .resume(f.reader(100), &a1, conversation("c1"), 0, &mut sink)
        .await
        .unwrap();
    for held in cursor.release() {
        cursor.live(f.reader(100), &held, &mut sink).await.unwrap();
    }
    // The hub queued 3 while the catch-up read it; 4 is new.
    f.say(4..=4).await;
    for position in [2, 3, 4] {
        cursor
            .live(f.reader(100), &live(position), &mut sink)
            .await
            .unwrap();
    }
    let expected = [event(1), event(2), event(3), caught_up(3), event(4)];
    assert_eq!(sink.got, expected);
    assert_eq!(cursor.position(&conversation("c1")), Some(4));
}

#[tokio::test]
async fn a_gap_is_filled_from_the_store_before_the_live_event() {
    let f = Fixture::new(2).await;
    let (mut cursor, mut sink) = (Cursor::new(), Recorder::default());
    cursor
        .resume(f.reader(100), &user("a1"), conversation("c1"), 1, &mut sink)
        .await
        .unwrap();
    cursor.release();
    // 3 and 4 were committed, but 4 reached the session first.
    f.say(3..=4).await;
    cursor
        .live(f.reader(100), &live(4), &mut sink)
        .await
        .unwrap();
    cursor
        .live(f.reader(100), &live(3), &mut sink)
        .await
        .unwrap();
    assert_eq!(sink.got, [event(2), caught_up(2), event(3), event(4)]);
}

#[tokio::test]
async fn live_events_wait_for_the_first_client_frame() {
    let mut cursor = Cursor::new();
    let unread = Outbound::Unread("{\"type\":\"unread\"}".into());
    assert!(
        cursor.hold(live(1)).is_none(),
        "held before the first frame"
    );
    assert!(cursor.hold(unread).is_none());
    let released: Vec<Outbound> = cursor.release().into_iter().collect();
    assert!(
        matches!(&released[..], [Outbound::Event(e), Outbound::Unread(_)] if e.position == 1),
        "{released:?}"
    );
    assert!(cursor.hold(live(2)).is_some(), "passed on once released");
    assert!(cursor.release().is_empty(), "released once");
}

#[tokio::test]
async fn a_catch_up_longer_than_a_page_is_read_page_by_page_in_order() {
    let f = Fixture::new(5).await;
    let (mut cursor, mut sink) = (Cursor::new(), Recorder::default());
    cursor
        .resume(f.reader(2), &user("a1"), conversation("c1"), 0, &mut sink)
        .await
        .unwrap();
    let expected = [
        event(1),
        event(2),
        event(3),
        event(4),
        event(5),
        caught_up(5),
    ];
    assert_eq!(sink.got, expected);
}

#[tokio::test]
async fn a_resume_of_a_conversation_the_user_is_not_in_is_refused_and_emits_nothing() {
    let f = Fixture::new(2).await;
    let (mut cursor, mut sink) = (Cursor::new(), Recorder::default());
    let refused = cursor
        .resume(f.reader(100), &user("v9"), conversation("c1"), 0, &mut sink)
        .await;
    assert!(
        matches!(refused, Err(Stopped::NotAParticipant)),
        "{refused:?}"
    );
    assert!(sink.got.is_empty());
    assert_eq!(cursor.position(&conversation("c1")), None);
}

#[tokio::test]
async fn a_live_event_of_a_conversation_never_resumed_is_sent_and_unread_changes_pass() {
    let f = Fixture::new(0).await;
    let (mut cursor, mut sink) = (Cursor::new(), Recorder::default());
    cursor.release();
    let unread = Outbound::Unread("u".into());
    cursor
        .live(f.reader(100), &live(7), &mut sink)
        .await
        .unwrap();
    cursor
        .live(f.reader(100), &unread, &mut sink)
        .await
        .unwrap();
    assert_eq!(sink.got, [event(7), Got::Unread("u".into())]);
}

#[tokio::test]
async fn a_sink_that_is_gone_stops_the_catch_up_where_it_failed() {
    let f = Fixture::new(3).await;
    let mut cursor = Cursor::new();
    let mut sink = Recorder {
        gone_after: Some(1),
        ..Recorder::default()
    };
    let stopped = cursor
        .resume(f.reader(100), &user("a1"), conversation("c1"), 0, &mut sink)
        .await;
    assert!(matches!(stopped, Err(Stopped::Gone)), "{stopped:?}");
    assert_eq!(sink.got, [event(1)]);
    assert_eq!(cursor.position(&conversation("c1")), Some(1));
}

#[test]
fn an_idle_cursor_is_a_few_words() {
    // docs/PERFORMANCE.md budgets an idle session; the cursor is part of it.
    assert!(size_of::<Cursor>() <= 96, "{}", size_of::<Cursor>());
}

//! What the engine knows of one user (`user_context`), the calls it remembers (`call`) and
//! users' preferences (`put_preferences`).

use herald_engine::device::DeviceChannel;
use herald_engine::notify::calls::CallState;
use herald_engine::notify::quiet::Preferences;
use herald_engine::notify::store::{NotifyCommit, UserContext};
use herald_engine::notify::timing::UserState;
use herald_engine::participant::{Participant, Role};

use crate::NotifyFixture;
use crate::support::{app_id, append, at, event_id, joined, message, participant, read, tenant};

use super::*;

async fn context_of(
    fx: &dyn NotifyFixture,
    t: &TenantId,
    owner: &str,
    conv: Option<&str>,
) -> UserContext {
    fx.notify()
        .user_context(t, &user(owner), conv.map(conversation).as_ref())
        .await
        .expect("the context reads")
}

fn with_email(user_id: &str, email: &str) -> Participant {
    Participant {
        email: Some(email.into()),
        ..participant(user_id, Role::Visitor)
    }
}

pub async fn a_user_context_holds_devices_state_preferences_email_and_badge(
    fx: &dyn NotifyFixture,
) {
    let (t, store, notify) = (tenant("acme"), fx.store(), fx.notify());
    device_of(fx, &t, "d1", "ann", "chat", DeviceChannel::Apns).await;
    device_of(fx, &t, "d2", "ann", "web", DeviceChannel::Webpush).await;
    device_of(fx, &t, "d3", "bob", "chat", DeviceChannel::Fcm).await;
    append(&store, &t, vec![joined("j1", "c1", "ann", "visitor")]).await;
    append(&store, &t, vec![message("m1", "c1", "bob", "agent", "hi")]).await;
    store
        .put_participant(
            &t,
            &conversation("c1"),
            &with_email("ann", "ann@example.com"),
            None,
            event_id("p1"),
            at(2),
        )
        .await
        .unwrap();
    let state = UserState {
        last_push_at: Some(at(3)),
        missed_calls: 2,
    };
    let step = NotifyCommit {
        user_states: vec![(t.clone(), user("ann"), app_id("chat"), state.clone())],
        threads: vec![(key(&t, "ann", "chat", "c1"), pending("n1", 30))],
        ..NotifyCommit::default()
    };
    commit(&notify, step, 3).await;

    let context = context_of(fx, &t, "ann", Some("c1")).await;
    assert_eq!(
        context.devices,
        store.list_devices(&t, &user("ann")).await.unwrap(),
        "the user's devices, as the store lists them"
    );
    assert_eq!(context.devices.len(), 2);
    assert_eq!(context.states.get(&app_id("chat")), Some(&state));
    assert_eq!(context.unread_total, 1);
    assert_eq!(
        context.email.as_deref(),
        Some("ann@example.com"),
        "the participant's"
    );
    assert_eq!(context.preferences, Preferences::default());
    assert_eq!(context.threads.len(), 1);

    let preferences = Preferences {
        email: Some("ann@home.example".into()),
        ..Preferences::default()
    };
    notify
        .put_preferences(&t, &user("ann"), &preferences)
        .await
        .unwrap();
    let context = context_of(fx, &t, "ann", Some("c1")).await;
    assert_eq!(
        context.email.as_deref(),
        Some("ann@home.example"),
        "preferences first"
    );
    assert_eq!(context.preferences, preferences);
}

pub async fn a_user_context_has_the_threads_of_the_conversation_asked_or_of_all(
    fx: &dyn NotifyFixture,
) {
    let (t, notify) = (tenant("acme"), fx.notify());
    let threads = vec![
        (key(&t, "ann", "chat", "c1"), pending("n1", 30)),
        (key(&t, "ann", "web", "c1"), shown()),
        (key(&t, "ann", "chat", "c2"), pending("n2", 40)),
        (key(&t, "bob", "chat", "c1"), pending("n3", 50)),
        (key(&tenant("beta"), "ann", "chat", "c1"), pending("n4", 60)),
    ];
    let states = vec![
        (t.clone(), user("ann"), app_id("chat"), UserState::default()),
        (t.clone(), user("ann"), app_id("web"), UserState::default()),
    ];
    let step = NotifyCommit {
        threads,
        user_states: states,
        ..NotifyCommit::default()
    };
    commit(&notify, step, 1).await;
    let keys = |c: &UserContext| c.threads.keys().cloned().collect::<Vec<_>>();
    let at_c = |app: &str, conv: &str| (app_id(app), conversation(conv));
    let of_c1 = context_of(fx, &t, "ann", Some("c1")).await;
    assert_eq!(keys(&of_c1), [at_c("chat", "c1"), at_c("web", "c1")]);
    assert_eq!(of_c1.threads[&at_c("chat", "c1")], pending("n1", 30));
    let of_all = context_of(fx, &t, "ann", None).await;
    assert_eq!(
        keys(&of_all),
        [at_c("chat", "c1"), at_c("chat", "c2"), at_c("web", "c1")]
    );
    // States are per app, whatever the conversation asked.
    assert_eq!(of_c1.states.len(), 2);
    assert_eq!(of_all.states, of_c1.states);
    assert!(
        context_of(fx, &t, "ann", Some("c9"))
            .await
            .threads
            .is_empty()
    );
}

/// The badge counts every conversation even in a context about one; the participant record's
/// email only stands in when the context is about their conversation.
pub async fn the_badge_counts_every_conversation_and_a_participant_email_only_its_own(
    fx: &dyn NotifyFixture,
) {
    let (t, store) = (tenant("acme"), fx.store());
    append(
        &store,
        &t,
        vec![
            joined("j1", "c1", "ann", "visitor"),
            joined("j2", "c2", "ann", "visitor"),
            message("m1", "c1", "bob", "agent", "one"),
            message("m2", "c1", "bob", "agent", "two"),
            message("m3", "c2", "bob", "agent", "three"),
            message("m4", "c3", "bob", "agent", "not ann's"),
        ],
    )
    .await;
    store
        .put_participant(
            &t,
            &conversation("c2"),
            &with_email("ann", "ann@example.com"),
            None,
            event_id("p1"),
            at(2),
        )
        .await
        .unwrap();
    for conv in [Some("c1"), Some("c2"), Some("c3"), None] {
        let context = context_of(fx, &t, "ann", conv).await;
        assert_eq!(context.unread_total, 3, "asked about {conv:?}");
        let email = (conv == Some("c2")).then_some("ann@example.com");
        assert_eq!(context.email.as_deref(), email, "asked about {conv:?}");
    }
    append(&store, &t, vec![read("r1", "c1", "ann", 3)]).await;
    assert_eq!(context_of(fx, &t, "ann", None).await.unread_total, 1);
    let beta = context_of(fx, &tenant("beta"), "ann", None).await;
    assert_eq!(
        beta,
        UserContext::default(),
        "another tenant's ann knows nothing"
    );
}

pub async fn an_unknown_user_has_an_empty_context(fx: &dyn NotifyFixture) {
    let t = tenant("acme");
    assert_eq!(
        context_of(fx, &t, "nobody", None).await,
        UserContext::default()
    );
    assert_eq!(
        context_of(fx, &t, "nobody", Some("c1")).await,
        UserContext::default()
    );
}

pub async fn preferences_are_replaced_whole_per_user_and_tenant(fx: &dyn NotifyFixture) {
    let (acme, beta, notify) = (tenant("acme"), tenant("beta"), fx.notify());
    let paused = Preferences {
        pause_until: Some(at(500)),
        email: Some("ann@home.example".into()),
        ..Preferences::default()
    };
    let french = Preferences {
        locale: Some("fr".into()),
        ..Preferences::default()
    };
    notify
        .put_preferences(&acme, &user("ann"), &paused)
        .await
        .unwrap();
    notify
        .put_preferences(&acme, &user("bob"), &paused)
        .await
        .unwrap();
    notify
        .put_preferences(&acme, &user("ann"), &french)
        .await
        .unwrap();
    let ann = context_of(fx, &acme, "ann", None).await;
    assert_eq!(
        ann.preferences, french,
        "nothing of the earlier ones is kept"
    );
    assert_eq!(ann.email, None);
    assert_eq!(context_of(fx, &acme, "bob", None).await.preferences, paused);
    assert_eq!(
        context_of(fx, &beta, "ann", None).await.preferences,
        Preferences::default()
    );
}

pub async fn a_committed_call_reads_back_by_tenant_and_id(fx: &dyn NotifyFixture) {
    let (acme, beta, notify) = (tenant("acme"), tenant("beta"), fx.notify());
    let ringing = CallState {
        conversation_id: conversation("c1"),
        caller: user("bob"),
        callees: vec![user("ann"), user("cy")],
        rang: vec![(user("ann"), app_id("chat")), (user("cy"), app_id("web"))],
        over: false,
        ring_until: at(30),
        caller_name: Some("Bob".into()),
        declined: vec![user("cy")],
    };
    assert_eq!(notify.call(&acme, "call-1").await.unwrap(), None);
    let step = NotifyCommit {
        calls: vec![(acme.clone(), "call-1".into(), ringing.clone())],
        ..NotifyCommit::default()
    };
    commit(&notify, step, 1).await;
    assert_eq!(notify.call(&acme, "call-1").await.unwrap(), Some(ringing));
    assert_eq!(notify.call(&acme, "call-2").await.unwrap(), None);
    assert_eq!(notify.call(&beta, "call-1").await.unwrap(), None);
}

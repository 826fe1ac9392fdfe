//! The conformance suites every Herald store backend must pass: the contracts of the store
//! ports ([`Store`], [`DeliveryQueue`], [`NotifyStore`]) written as executable cases,
//! independent of any backend.
//!
//! Each case is a `pub async fn` taking a fresh, empty store (`Arc<dyn Store>`) and panicking on
//! failure; its name states the rule it checks. [`store_conformance_tests!`] turns them all into
//! `#[tokio::test]`s of the calling crate:
//!
//! ```ignore
//! // tests/suite/conformance.rs of a backend crate (which needs `tokio` as a dev-dependency).
//! herald_store_conformance::store_conformance_tests!(async {
//!     let dir = tempfile::tempdir().unwrap();
//!     let store = MyStore::open(dir.path()).unwrap();
//!     // A guard next to the store lives until the case ends.
//!     (std::sync::Arc::new(store), dir)
//! });
//! ```
//!
//! The expression is evaluated once per case and awaited; it produces a [`Fixture`]: either
//! the store itself (`Arc<dyn Store>` or `Arc<MyStore>`) or a `(store, guard)` pair whose guard
//! (a temp dir, a throwaway schema) is dropped after the case, right after the store.
//!
//! The delivery queue has a suite of its own, [`delivery_conformance_tests!`], for backends that
//! also implement [`DeliveryQueue`]: its expression produces a [`DeliveryFixture`], which adds
//! the queue and the backend's way to enqueue deliveries (not part of the port: the
//! notification engine enqueues inside its own transactions).
//!
//! ```ignore
//! struct Queue(std::sync::Arc<MyStore>, tempfile::TempDir);
//! impl herald_store_conformance::Fixture for Queue { /* store() */ }
//! impl herald_store_conformance::DeliveryFixture for Queue { /* queue(), enqueue_deliveries() */ }
//! herald_store_conformance::delivery_conformance_tests!(async { Queue(/* … */) });
//! ```
//!
//! The notification engine's state has a third suite, [`notify_conformance_tests!`], for
//! backends that implement [`NotifyStore`]: its expression produces a [`NotifyFixture`], which
//! adds the engine's state and the delivery queue over the same data (a commit's deliveries
//! are claimed from the queue, and settling them concludes the commit's records). Its cases
//! cover every method of the port: the outbox and a step's batched read, the commit (all or
//! nothing, keyed replacements), the timers, user contexts, calls and preferences, the decision
//! log, and Web Push health checks.
//!
//! ```ignore
//! struct Engine(std::sync::Arc<MyStore>, tempfile::TempDir);
//! impl herald_store_conformance::Fixture for Engine { /* store() */ }
//! impl herald_store_conformance::NotifyFixture for Engine { /* notify(), queue() */ }
//! herald_store_conformance::notify_conformance_tests!(async { Engine(/* … */) });
//! ```
//!
//! [`support`] holds the builders the cases use (ids, events, registrations); backend-specific
//! tests may use them too.
//!
//! What the suite assumes of a backend beyond the trait's signatures:
//! - times come back truncated to no coarser than the millisecond (cases use whole seconds);
//! - "sorted by user id" and "sorted by conversation id" mean byte order (Rust's `Ord` on the
//!   ids), e.g. `COLLATE "C"` in PostgreSQL;
//! - lists whose order the port does not state (tenants, keys, apps, devices) are compared
//!   after sorting.
//!
//! Choices the port's doc comments leave open, pinned by the cases:
//! - an API key whose id or hash is already stored is `AlreadyExists`;
//! - a device registration without an installation id keeps the one already known;
//! - a sender (`message.created`) or caller (`call.ringing`) who joins, like any new member,
//!   starts with `read_position` = the event's position;
//! - `participant.left` reports the removed user's count as 0 (with their new total) when they
//!   had unread messages there; a `message.read` that moves nothing reports no change;
//! - enqueuing a delivery id already stored for the tenant is `AlreadyExists` and enqueues
//!   nothing of the batch; a settlement applies only to a pending, leased delivery (anything
//!   else is a no-op); `deliveries_of` lists by creation time, then id; a claim cancels (never
//!   hands out) a delivery whose device was removed or moved to another user, and hands out
//!   one whose device re-registered for the same user with the device as it is now;
//! - the outbox hands items out in the order their appends committed, across conversations and
//!   tenants, and reading takes none (only a commit does); the inputs of an item whose event
//!   is gone hold the conversation if it still exists, and no contexts nor recent messages;
//! - a commit naming an outbox item already taken off still applies the rest; a commit with a
//!   delivery id already stored for the tenant is `AlreadyExists` and writes nothing (no
//!   removal from the outbox, no record, state or delivery); its deliveries are due at the
//!   commit's `now`; a thread committed with nothing pending and nothing shown is deleted;
//! - "due" means due at or before `now`; due threads and due notifications come earliest
//!   first, up to the limit, and reading them fires nothing; only a `scheduled` record has a
//!   timer of its own (a pending push's record waits on its thread's timer, whatever its
//!   `due_at`);
//! - `user_notifications` puts records made in the same instant greater id first; an unknown
//!   user's context is the default one; preferences are replaced whole;
//! - `devices_to_check` lists by device id; a device's last check counts from the `now` of the
//!   commit that sent it, and must be answered or expired; a check answered after its deadline
//!   still makes the device healthy; a new check replaces the device's last one (the old id no
//!   longer answers) and leaves an unhealthy device unhealthy until answered;
//!   `unhealthy_devices` lists by device id, only devices still registered to the user.

mod apps;
mod deliveries;
mod devices;
mod isolation;
mod membership;
mod notify;
mod reads;
pub mod support;
mod tenants;
mod transcript;

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use herald_engine::delivery::DeliveryQueue;
use herald_engine::notify::store::NotifyStore;
use herald_engine::push::Delivery;
use herald_engine::store::{Store, StoreError};
use time::OffsetDateTime;

pub use apps::*;
pub use deliveries::*;
pub use devices::*;
pub use isolation::*;
pub use membership::*;
pub use notify::*;
pub use reads::*;
pub use tenants::*;
pub use transcript::*;

/// What a store-making expression produces; see the crate documentation.
pub trait Fixture {
    fn store(&self) -> Arc<dyn Store>;
}

impl Fixture for Arc<dyn Store> {
    fn store(&self) -> Arc<dyn Store> {
        Arc::clone(self)
    }
}

impl<S: Store> Fixture for Arc<S> {
    fn store(&self) -> Arc<dyn Store> {
        Arc::clone(self) as Arc<dyn Store>
    }
}

/// The store, and a guard kept alive until the case has finished with it.
impl<G> Fixture for (Arc<dyn Store>, G) {
    fn store(&self) -> Arc<dyn Store> {
        Arc::clone(&self.0)
    }
}

impl<S: Store, G> Fixture for (Arc<S>, G) {
    fn store(&self) -> Arc<dyn Store> {
        Arc::clone(&self.0) as Arc<dyn Store>
    }
}

/// A store that also holds the delivery queue, for [`delivery_conformance_tests!`].
pub trait DeliveryFixture: Fixture + Send + Sync {
    /// The queue, over the same data as [`Fixture::store`] (an invalid device target removes
    /// the device from the store).
    fn queue(&self) -> Arc<dyn DeliveryQueue>;

    /// Enqueues new pending deliveries, due at `now`, all or nothing; an id already stored for
    /// the tenant is `AlreadyExists`.
    fn enqueue_deliveries(
        &self,
        deliveries: Vec<Delivery>,
        now: OffsetDateTime,
    ) -> Pin<Box<dyn Future<Output = Result<(), StoreError>> + Send + '_>>;
}

/// A store that also holds the notification engine's state, for
/// [`notify_conformance_tests!`].
pub trait NotifyFixture: Fixture + Send + Sync {
    /// The engine's state, over the same data as [`Fixture::store`]: appends queue events for
    /// it, and its user contexts hold the store's devices and unread counts.
    fn notify(&self) -> Arc<dyn NotifyStore>;

    /// The delivery queue over the same data: a commit's deliveries are claimed from it, and
    /// settling them concludes the commit's records.
    fn queue(&self) -> Arc<dyn DeliveryQueue>;
}

/// Expands to one `#[tokio::test]` (multi-threaded, so concurrency cases really run in
/// parallel) per case of the suite. The argument is an async expression producing a
/// [`Fixture`], evaluated afresh for every case. Call it once, at the top level of a test file.
#[macro_export]
macro_rules! store_conformance_tests {
    ($make_store:expr) => {
        $crate::store_conformance_tests!(@cases $make_store;
            // Tenants and keys.
            a_created_tenant_reads_back_with_its_auth,
            creating_an_existing_tenant_fails_with_already_exists,
            tenant_auth_is_replaced_only_for_known_tenants,
            only_live_api_keys_are_found,
            a_key_is_revoked_only_by_its_own_tenant,
            creating_an_existing_api_key_fails_with_already_exists,
            api_keys_are_listed_per_tenant,
            // Apps.
            putting_an_app_creates_then_replaces_it_keeping_created_at,
            apps_are_listed_per_tenant,
            deleting_an_app_deletes_its_devices,
            // Devices.
            registering_a_new_token_creates_a_device,
            a_web_push_subscription_is_kept,
            registering_the_same_token_again_refreshes_it,
            registering_another_users_token_moves_it,
            a_new_token_with_the_same_installation_replaces_the_old_one,
            re_registering_a_known_token_removes_the_stale_device_of_its_installation,
            the_same_token_on_another_app_or_channel_is_another_device,
            deleting_devices_by_token_only_touches_that_users_devices,
            deleting_a_users_devices_counts_them,
            a_device_is_deleted_by_its_id,
            // Transcripts.
            positions_start_at_one_and_are_gap_free_per_conversation,
            positions_are_gap_free_under_concurrent_appends,
            a_repeated_event_id_returns_the_original_position,
            a_reused_event_id_with_a_different_body_conflicts_and_changes_nothing,
            a_repeated_event_id_within_one_batch_is_a_duplicate_or_a_conflict,
            a_failing_event_rolls_back_its_whole_batch,
            a_thousand_event_batch_reads_back_in_pages,
            events_after_an_unknown_conversation_is_empty,
            stored_events_read_back_as_appended,
            // Membership.
            a_message_sender_joins_the_conversation,
            a_notice_actor_does_not_join,
            a_caller_joins_the_conversation,
            participant_joined_updates_a_member_and_keeps_their_read_state,
            new_members_do_not_count_earlier_messages_as_unread,
            participant_left_removes_the_member_and_still_tells_them,
            effects_name_every_participant_and_each_changed_count,
            put_participant_appends_only_when_membership_changes,
            put_participant_keeps_who_added_them,
            remove_participant_appends_only_for_members,
            // Reads and unread counts.
            unread_counts_follow_messages_and_reads,
            reads_never_move_backwards,
            a_read_by_a_non_participant_is_invalid,
            a_read_beyond_the_transcript_is_invalid,
            mark_read_appends_only_when_the_position_moves,
            unread_lists_every_membership_sorted_by_conversation,
            // Isolation.
            tenants_never_see_each_others_data,
        );
    };
    (@cases $make_store:expr; $($case:ident),* $(,)?) => {
        $(
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $case() {
                let fixture = $make_store.await;
                $crate::$case($crate::Fixture::store(&fixture)).await;
                drop(fixture);
            }
        )*
    };
}

/// Like [`store_conformance_tests!`], for the delivery queue: the expression produces a
/// [`DeliveryFixture`], evaluated afresh for every case.
#[macro_export]
macro_rules! delivery_conformance_tests {
    ($make_fixture:expr) => {
        $crate::delivery_conformance_tests!(@delivery_cases $make_fixture;
            an_enqueued_delivery_is_claimed_once_with_its_first_attempt,
            enqueuing_an_existing_delivery_id_fails_with_already_exists,
            claims_take_due_deliveries_earliest_first_up_to_the_limit,
            a_delivery_whose_lease_ran_out_is_claimed_again,
            concurrent_claimers_never_get_the_same_delivery,
            a_delivered_delivery_keeps_its_attempt_and_is_done,
            a_retry_counts_the_attempt_and_waits_until_its_time,
            a_postponed_delivery_waits_without_counting_an_attempt,
            failed_and_given_up_deliveries_fail_with_their_reason,
            an_invalid_device_is_removed_and_its_other_pending_deliveries_fail,
            an_invalid_target_keeps_a_device_that_registered_a_fresh_token,
            an_invalid_webhook_target_only_fails_the_delivery,
            a_delivery_to_a_removed_device_is_cancelled_instead_of_claimed,
            a_delivery_to_a_device_moved_to_another_user_is_cancelled,
            a_delivery_to_a_device_with_a_rotated_token_goes_to_the_new_token,
            an_expired_delivery_is_recorded_with_its_reason,
            a_cancelled_delivery_is_recorded_with_its_reason,
            settling_an_unclaimed_or_settled_delivery_changes_nothing,
            next_delivery_at_is_when_the_earliest_delivery_becomes_claimable,
            deliveries_of_lists_a_notifications_deliveries_in_creation_order,
            deliveries_are_isolated_by_tenant,
        );
    };
    (@delivery_cases $make_fixture:expr; $($case:ident),* $(,)?) => {
        $(
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $case() {
                let fixture = $make_fixture.await;
                $crate::$case(&fixture).await;
                drop(fixture);
            }
        )*
    };
}

/// Like [`store_conformance_tests!`], for the notification engine's state: the expression
/// produces a [`NotifyFixture`], evaluated afresh for every case.
#[macro_export]
macro_rules! notify_conformance_tests {
    ($make_fixture:expr) => {
        $crate::notify_conformance_tests!(@notify_cases $make_fixture;
            // The outbox and what a step reads.
            the_outbox_queues_every_event_but_membership_changes_in_append_order,
            the_outbox_hands_out_the_oldest_items_up_to_the_limit_without_taking_them,
            a_participant_added_by_someone_else_is_queued_with_their_context,
            a_batch_of_inputs_matches_the_single_reads_it_replaces,
            inputs_of_an_item_whose_event_is_gone_hold_only_what_was_found,
            recent_messages_are_the_newest_messages_at_or_before_a_position_oldest_first,
            // Commits.
            a_commit_takes_its_evaluated_items_off_the_outbox,
            a_commit_writes_its_decisions_state_and_deliveries_together,
            committing_the_same_decision_twice_fails_with_already_exists_and_writes_nothing,
            a_commit_replaces_threads_user_states_calls_and_records_by_key,
            a_thread_with_nothing_pending_and_nothing_shown_is_deleted,
            // Timers.
            due_threads_are_those_due_at_or_before_now_earliest_first_up_to_the_limit,
            a_thread_committed_again_moves_or_drops_its_timer,
            due_notifications_are_scheduled_records_due_at_or_before_now_earliest_first,
            only_a_scheduled_record_has_a_timer_of_its_own,
            next_due_is_the_earliest_timer_of_either_kind,
            // User contexts, preferences, calls.
            a_user_context_holds_devices_state_preferences_email_and_badge,
            a_user_context_has_the_threads_of_the_conversation_asked_or_of_all,
            the_badge_counts_every_conversation_and_a_participant_email_only_its_own,
            an_unknown_user_has_an_empty_context,
            preferences_are_replaced_whole_per_user_and_tenant,
            a_committed_call_reads_back_by_tenant_and_id,
            // The decision log.
            a_committed_record_reads_back_whole_by_tenant_and_id,
            user_notifications_are_a_users_newest_first_up_to_the_limit,
            a_sent_record_concludes_from_its_deliveries_once_none_is_pending,
            only_a_sent_record_is_concluded_by_its_deliveries,
            // Web Push health checks.
            health_checks_expire_into_unhealthy_devices_until_acknowledged,
            devices_to_check_are_an_apps_web_push_devices_not_checked_since_the_cutoff,
            an_acknowledged_check_never_expires,
            a_check_is_acknowledged_only_by_its_owner_with_its_id_and_device,
            a_new_check_replaces_the_devices_last_and_unhealthy_lasts_until_an_answer,
            unhealthy_devices_are_only_those_still_registered_to_the_user,
        );
    };
    (@notify_cases $make_fixture:expr; $($case:ident),* $(,)?) => {
        $(
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $case() {
                let fixture = $make_fixture.await;
                $crate::$case(&fixture).await;
                drop(fixture);
            }
        )*
    };
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;

    /// The cases a macro lists after `marker`.
    fn listed(marker: &str) -> BTreeSet<&'static str> {
        let lib = include_str!("lib.rs");
        let start = lib.find(marker).unwrap();
        let end = start + lib[start..].find(");").unwrap();
        lib[start..end]
            .lines()
            .skip(1)
            .map(str::trim)
            .filter(|line| !line.is_empty() && !line.starts_with("//"))
            .map(|line| line.trim_end_matches(','))
            .collect()
    }

    fn cases(sources: &[&'static str]) -> BTreeSet<&'static str> {
        sources
            .iter()
            .flat_map(|source| source.lines())
            .filter_map(|line| line.strip_prefix("pub async fn "))
            .filter_map(|rest| rest.split('(').next())
            .collect()
    }

    /// A case missing from the macro's list would never run anywhere.
    #[test]
    fn the_macro_runs_every_case() {
        let listed = listed("@cases $make_store;");
        let sources = [
            include_str!("apps.rs"),
            include_str!("devices.rs"),
            include_str!("isolation.rs"),
            include_str!("membership.rs"),
            include_str!("reads.rs"),
            include_str!("tenants.rs"),
            include_str!("transcript.rs"),
        ];
        let cases = cases(&sources);
        assert!(!cases.is_empty(), "the scan finds the cases");
        assert_eq!(listed, cases);
    }

    #[test]
    fn the_delivery_macro_runs_every_delivery_case() {
        let listed = listed("@delivery_cases $make_fixture;");
        let cases = cases(&[
            include_str!("deliveries/claims.rs"),
            include_str!("deliveries/history.rs"),
            include_str!("deliveries/settlements.rs"),
            include_str!("deliveries/targets.rs"),
        ]);
        assert!(!cases.is_empty(), "the scan finds the cases");
        assert_eq!(listed, cases);
    }

    #[test]
    fn the_notify_macro_runs_every_notify_case() {
        let listed = listed("@notify_cases $make_fixture;");
        let cases = cases(&[
            include_str!("notify/checks.rs"),
            include_str!("notify/commits.rs"),
            include_str!("notify/contexts.rs"),
            include_str!("notify/outbox.rs"),
            include_str!("notify/records.rs"),
            include_str!("notify/timers.rs"),
        ]);
        assert!(!cases.is_empty(), "the scan finds the cases");
        assert_eq!(listed, cases);
    }
}

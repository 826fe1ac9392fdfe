//! Herald's pure core. No sockets, no database, no runtime: everything here can be tested with
//! plain values and a manual clock.
//!
//! Layout:
//! - [`ids`]: validated id newtypes (`TenantId`, `UserId`, …).
//! - [`validate`]: `Invalid` — a validation failure with the offending field path.
//! - [`clock`]: the `Clock` port, a system clock and a manual clock for tests.
//! - [`participant`]: roles and conversation membership.
//! - [`event`]: the event envelope and every event type of SPEC §3.1, with validation.
//! - [`delivery`]: the delivery queue port (leases, settlements, attempt history).
//! - [`device`]: channels, platforms and device registrations (SPEC §2.3).
//! - [`app`]: per-app configuration (rules, content mode, channel sections) and which of its
//!   fields are secrets.
//! - [`tenant`]: tenants, API keys and client-token settings.
//! - [`unread`]: the rule deciding which events count towards a user's unread count.
//! - [`push`]: the channel-agnostic push, deliveries and delivery outcomes.
//! - [`notify`]: the notification engine's pure decisions (who, when, what; calls; the log),
//!   `compose`, which turns a decision into a push and its deliveries, and `plan`, which
//!   decides whole engine steps (`(inputs, now, ids) → NotifyCommit`).
//! - [`store`]: the `Store` port every persistence backend implements.
//! - [`lease`]: the engine lease port (cluster mode: one deciding node, fenced commits).
//! - [`registry`]: which `Channel` carries which delivery channel name.
//! - [`ports`]: every port in one place (`Store`, `NotifyStore`, `DeliveryQueue`, `Channel`,
//!   `Clock`, `NewIds`), with who implements and who uses each.

pub mod app;
pub mod clock;
pub mod delivery;
pub mod device;
pub mod event;
pub mod ids;
pub mod lease;
pub mod notify;
pub mod participant;
pub mod ports;
pub mod push;
pub mod registry;
pub mod store;
pub mod tenant;
pub mod unread;
pub mod validate;

//! The ports: every trait through which Herald's pure core meets the outside, in one place.
//! Adapters implement them in crates of their own (stores in `herald-store-*`, channels in
//! `herald-channels`); the runtime and the front doors only ever hold them as trait objects.
//!
//! | port | implemented by | used by |
//! |---|---|---|
//! | [`Store`] | `herald-store-sqlite`, `herald-store-postgres` | front doors (API), tenancy, runtime |
//! | [`NotifyStore`] | `herald-store-sqlite`, `herald-store-postgres` | the notification engine task |
//! | [`DeliveryQueue`] | `herald-store-sqlite`, `herald-store-postgres` | the delivery core |
//! | [`EngineLease`] | `herald-store-postgres` | the engine task in cluster mode |
//! | [`Channel`] | `herald-channels`, test doubles | the delivery core, `herald push test` |
//! | [`Clock`] | [`SystemClock`], [`ManualClock`] (tests) | everything that reads the time |
//! | [`NewIds`] | the engine task (uuid v7), counting ids (tests) | the notification plans |
//!
//! Each store port has a backend-agnostic conformance suite (`herald-store-conformance`) that
//! a new backend runs unchanged.

pub use crate::clock::{Clock, ManualClock, SystemClock};
pub use crate::delivery::{Channel, DeliveryQueue};
pub use crate::lease::EngineLease;
pub use crate::notify::NewIds;
pub use crate::notify::store::NotifyStore;
pub use crate::registry::ChannelRegistry;
pub use crate::store::Store;

//! The SQLite store's suite in one test binary: the backend-agnostic conformance cases (store,
//! delivery queue, notification engine state) and the durability checks.

mod conformance;
mod delivery_conformance;
mod durability;
mod notify_conformance;

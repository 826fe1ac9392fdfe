//! The SQLite store's suite in one test binary: the backend-agnostic conformance cases and the
//! durability checks.

mod conformance;
mod delivery_conformance;
mod durability;
mod event_inputs;

//! The PostgreSQL store's suite in one test binary: the backend-agnostic conformance cases
//! (store, delivery queue, notification engine state), several nodes on one database, and the
//! engine lease. Every case runs in a fresh schema of its own (see `fixture`), so cases run in
//! parallel.

mod conformance;
mod delivery_conformance;
mod fixture;
mod lease;
mod nodes;
mod notify_conformance;

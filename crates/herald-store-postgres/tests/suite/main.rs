//! The PostgreSQL store's suite in one test binary: the backend-agnostic conformance cases
//! (store, delivery queue, notification engine state) and several nodes on one database. Every
//! case runs in a fresh schema of its own (see `fixture`), so cases run in parallel.

mod conformance;
mod delivery_conformance;
mod fixture;
mod nodes;
mod notify_conformance;

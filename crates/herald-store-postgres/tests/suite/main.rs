//! The PostgreSQL store's suite in one test binary: the backend-agnostic conformance cases,
//! the delivery queue cases, and the notification engine's state. Every case runs in a fresh
//! schema of its own (see `fixture`), so cases run in parallel.

mod conformance;
mod delivery_conformance;
mod event_inputs;
mod fixture;
mod nodes;
mod notify;

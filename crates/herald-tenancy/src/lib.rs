//! What a Herald tenant owns and how it proves it. Every front door and the runtime come here
//! for keys, tokens and apps; nothing here knows about HTTP or the engine task.
//!
//! Layout:
//! - [`auth`]: tenant server keys (hashed) and client tokens (JWT verification and minting).
//! - [`apps`]: the app service — storing a document (validation, presets, credential checks,
//!   sealed secrets), opening a stored one, and the one [`apps::AppCache`] every reader shares.
//! - [`tenants`]: creating a tenant with its first key; the `default` tenant on first start.
//! - [`seal`]: AES-256-GCM sealing of secrets at rest with the master key.
//! - [`fsutil`]: owner-only, fsynced key files.

pub mod apps;
pub mod auth;
pub mod fsutil;
pub mod seal;
pub mod tenants;

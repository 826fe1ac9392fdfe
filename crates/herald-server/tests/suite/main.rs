//! Herald's end-to-end suite, one test binary (linking one binary instead of one per file keeps
//! the debug build small and fast). Each module is a story told through the real HTTP/WebSocket
//! surface, the real binary or real peers.

mod apns;
mod apps_and_auth;
mod bad_input;
mod binary;
mod collaboration;
mod cometd;
mod connector;
mod delivery_core;
mod devices;
mod email;
mod events;
mod fail_open;
mod fcm;
mod left_notice;
mod live_sessions;
mod matrix;
mod notify;
mod notify_delivery;
mod openapi;
mod ordering;
mod presence_storm;
mod readme;
mod recycling;
mod tenant_isolation;
mod vendor_roles;
mod webhooks;
mod webpush;
mod why;

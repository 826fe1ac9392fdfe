//! Authentication: tenant server keys (`keys`) and client tokens (`tokens`).

pub mod keys;
pub mod tokens;

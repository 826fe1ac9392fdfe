//! Id newtypes. Every id that comes from outside is validated once, at the edge, so the rest
//! of the code can trust it: 1–128 bytes of printable ASCII without spaces or `/`, which keeps
//! ids safe in URLs, log fields and storage keys.

use std::fmt;

use serde::{Deserialize, Deserializer, Serialize};

use crate::validate::Invalid;

pub const MAX_ID_BYTES: usize = 128;

fn check_id(value: &str) -> Result<(), &'static str> {
    if value.is_empty() {
        return Err("must not be empty");
    }
    if value.len() > MAX_ID_BYTES {
        return Err("must be at most 128 bytes");
    }
    if !value
        .bytes()
        .all(|b| b.is_ascii_graphic() && b != b'/' && b != b'?' && b != b'#')
    {
        return Err("must be printable ASCII without spaces, '/', '?' or '#'");
    }
    Ok(())
}

macro_rules! id_type {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        #[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
        #[serde(transparent)]
        pub struct $name(String);

        impl $name {
            pub fn parse(value: impl Into<String>) -> Result<Self, Invalid> {
                let value = value.into();
                check_id(&value).map_err(|m| Invalid::new("", m))?;
                Ok(Self(value))
            }

            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }

        impl fmt::Debug for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, "{}({:?})", stringify!($name), self.0)
            }
        }

        impl<'de> Deserialize<'de> for $name {
            fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                let s = String::deserialize(d)?;
                check_id(&s).map_err(serde::de::Error::custom)?;
                Ok(Self(s))
            }
        }
    };
}

id_type!(
    /// One customer organisation.
    TenantId
);
id_type!(
    /// A tenant's client application configuration (the "configuration id").
    AppId
);
id_type!(
    /// A tenant-scoped opaque user id from the chat platform.
    UserId
);
id_type!(
    /// A conversation, tenant-scoped.
    ConversationId
);
id_type!(
    /// The caller-chosen idempotency key of an event.
    EventId
);
id_type!(
    /// A registered device; assigned by Herald.
    DeviceId
);
id_type!(
    /// A tenant API key's public id (the part that can be shown and revoked).
    KeyId
);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_reject_empty_long_and_unsafe_values() {
        assert!(UserId::parse("").is_err());
        assert!(UserId::parse("a".repeat(129)).is_err());
        assert!(UserId::parse("a b").is_err());
        assert!(UserId::parse("a/b").is_err());
        assert!(UserId::parse("é").is_err());
        assert!(UserId::parse("visitor-42@acme.example").is_ok());
    }

    #[test]
    fn ids_are_validated_when_deserialized() {
        assert!(serde_json::from_str::<UserId>("\"ok\"").is_ok());
        assert!(serde_json::from_str::<UserId>("\"not ok\"").is_err());
    }
}

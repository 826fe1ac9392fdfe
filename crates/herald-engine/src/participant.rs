//! Conversation membership.

use serde::{Deserialize, Serialize};

use crate::ids::UserId;
use crate::validate::{self, Invalid};

pub const MAX_NAME_BYTES: usize = 256;

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    /// The customer.
    Visitor,
    Agent,
    Bot,
    /// Platform-generated; never triggers a push.
    System,
}

impl Role {
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Visitor => "visitor",
            Role::Agent => "agent",
            Role::Bot => "bot",
            Role::System => "system",
        }
    }

    pub fn parse(s: &str) -> Option<Role> {
        match s {
            "visitor" => Some(Role::Visitor),
            "agent" => Some(Role::Agent),
            "bot" => Some(Role::Bot),
            "system" => Some(Role::System),
            _ => None,
        }
    }
}

/// A user's membership in one conversation.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Participant {
    pub user_id: UserId,
    pub role: Role,
    #[serde(default)]
    pub secondary: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// Where notification emails go when the user's preferences name no address.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub email: Option<String>,
}

impl Participant {
    pub fn validate(&self) -> Result<(), Invalid> {
        if let Some(name) = &self.name {
            validate::text("name", name, MAX_NAME_BYTES)?;
        }
        if let Some(email) = &self.email
            && (!email.contains('@') || email.len() > 320 || email.contains(char::is_whitespace))
        {
            return Err(Invalid::new("email", "must be an email address"));
        }
        Ok(())
    }
}

/// A participant as the store reports it, with read state.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Membership {
    #[serde(flatten)]
    pub participant: Participant,
    pub read_position: u64,
    pub unread: u64,
}

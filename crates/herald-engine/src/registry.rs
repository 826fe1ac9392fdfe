//! Which `Channel` carries which delivery channel name (`apns`, `fcm`, `webpush`, `webhook`, …).

use std::collections::HashMap;
use std::sync::Arc;

use crate::delivery::Channel;

#[derive(Clone, Default)]
pub struct ChannelRegistry {
    channels: HashMap<String, Arc<dyn Channel>>,
}

impl ChannelRegistry {
    pub fn with(mut self, name: impl Into<String>, channel: Arc<dyn Channel>) -> Self {
        self.channels.insert(name.into(), channel);
        self
    }

    /// This registry with `overrides` taking precedence (tests swap in doubles this way).
    pub fn overridden_by(mut self, overrides: ChannelRegistry) -> Self {
        self.channels.extend(overrides.channels);
        self
    }

    pub fn get(&self, name: &str) -> Option<&Arc<dyn Channel>> {
        self.channels.get(name)
    }
}

//! `matrix`: what an app serves through the Matrix push gateway (SPEC §2.6). A homeserver's
//! pusher names a Matrix app id (`im.vector.app.ios`); the app that lists it here carries its
//! pushes, through the channel it maps it to and with the app's own credentials for that
//! channel — the counterpart of one `apps:` entry of a `sygnal.yaml`.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::validate::Invalid;

/// The Matrix spec caps a pusher's `app_id` at 64 characters.
pub const MAX_MATRIX_APP_ID: usize = 64;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MatrixSection {
    /// Matrix app id → how its pushers are reached.
    pub app_ids: BTreeMap<String, MatrixApp>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum MatrixChannel {
    Apns,
    Fcm,
    Webpush,
}

impl MatrixChannel {
    pub fn as_str(self) -> &'static str {
        match self {
            MatrixChannel::Apns => "apns",
            MatrixChannel::Fcm => "fcm",
            MatrixChannel::Webpush => "webpush",
        }
    }
}

fn yes() -> bool {
    true
}

fn default_ttl_s() -> u64 {
    DEFAULT_MATRIX_TTL_S
}

/// How long a provider keeps a push it cannot hand over yet: Sygnal's Web Push TTL.
pub const DEFAULT_MATRIX_TTL_S: u64 = 15 * 60;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MatrixApp {
    pub channel: MatrixChannel,
    /// APNs: the pushkey is the base64 of the device token (the Matrix convention), sent as
    /// hex; `false` for clients that upload the token in hex already.
    #[serde(default = "yes")]
    pub convert_device_token_to_hex: bool,
    #[serde(default = "default_ttl_s")]
    pub ttl_s: u64,
}

impl MatrixSection {
    /// Each id is a Matrix app id, and the channel it maps to is configured in `app`.
    pub(super) fn validate(&self, app: &super::AppConfig) -> Result<(), Invalid> {
        for (id, mapping) in &self.app_ids {
            let at = format!("matrix.app_ids.{id}");
            if id.trim().is_empty() || id.chars().count() > MAX_MATRIX_APP_ID {
                return Err(Invalid::new(
                    "matrix.app_ids",
                    format!("app ids are 1 to {MAX_MATRIX_APP_ID} characters"),
                ));
            }
            let configured = match mapping.channel {
                MatrixChannel::Apns => app.apns.is_some(),
                MatrixChannel::Fcm => app.fcm.is_some(),
                MatrixChannel::Webpush => app.webpush.is_some(),
            };
            if !configured {
                return Err(Invalid::new(
                    format!("{at}.channel"),
                    format!(
                        "needs the app's {} section (its credentials carry the pushes)",
                        mapping.channel.as_str()
                    ),
                ));
            }
            if !(1..=2_419_200).contains(&mapping.ttl_s) {
                return Err(Invalid::new(
                    format!("{at}.ttl_s"),
                    "must be between 1 and 2419200 (28 days)",
                ));
            }
        }
        Ok(())
    }
}

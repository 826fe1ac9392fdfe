//! Devices (SPEC §1, §2.3): where a user can be reached, per app and channel.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use crate::ids::{AppId, DeviceId, UserId};
use crate::validate::{self, Invalid};

pub const MAX_TOKEN_BYTES: usize = 4096;
pub const MAX_ENDPOINT_BYTES: usize = 2048;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DeviceChannel {
    Apns,
    ApnsVoip,
    Fcm,
    Webpush,
    /// The customer's own push backend; the token is opaque and passed through.
    Connector,
}

impl DeviceChannel {
    pub fn as_str(self) -> &'static str {
        match self {
            DeviceChannel::Apns => "apns",
            DeviceChannel::ApnsVoip => "apns_voip",
            DeviceChannel::Fcm => "fcm",
            DeviceChannel::Webpush => "webpush",
            DeviceChannel::Connector => "connector",
        }
    }

    pub fn parse(s: &str) -> Option<DeviceChannel> {
        [
            DeviceChannel::Apns,
            DeviceChannel::ApnsVoip,
            DeviceChannel::Fcm,
            DeviceChannel::Webpush,
            DeviceChannel::Connector,
        ]
        .into_iter()
        .find(|c| c.as_str() == s)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Platform {
    Ios,
    Android,
    Web,
    Other,
}

impl Platform {
    pub fn as_str(self) -> &'static str {
        match self {
            Platform::Ios => "ios",
            Platform::Android => "android",
            Platform::Web => "web",
            Platform::Other => "other",
        }
    }

    pub fn parse(s: &str) -> Option<Platform> {
        [
            Platform::Ios,
            Platform::Android,
            Platform::Web,
            Platform::Other,
        ]
        .into_iter()
        .find(|p| p.as_str() == s)
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SubscriptionKeys {
    pub p256dh: String,
    pub auth: String,
}

/// A browser's push subscription (`PushSubscription.toJSON()`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct WebPushSubscription {
    pub endpoint: String,
    pub keys: SubscriptionKeys,
    /// Browsers include it; accepted and ignored.
    #[serde(default, rename = "expirationTime", skip_serializing)]
    pub expiration_time: Option<serde_json::Value>,
}

impl WebPushSubscription {
    fn validate(&self) -> Result<(), Invalid> {
        validate::text("endpoint", &self.endpoint, MAX_ENDPOINT_BYTES)?;
        let url = url::Url::parse(&self.endpoint)
            .map_err(|_| Invalid::new("endpoint", "must be an absolute URL"))?;
        if !matches!(url.scheme(), "https" | "http") || url.host_str().is_none() {
            return Err(Invalid::new(
                "endpoint",
                "must be an http(s) URL with a host",
            ));
        }
        let p256dh = decode_b64url(&self.keys.p256dh)
            .ok_or_else(|| Invalid::new("keys.p256dh", "must be base64url"))?;
        if p256dh.len() != 65 || p256dh[0] != 0x04 {
            return Err(Invalid::new(
                "keys.p256dh",
                "must be an uncompressed P-256 public key (65 bytes)",
            ));
        }
        let auth = decode_b64url(&self.keys.auth)
            .ok_or_else(|| Invalid::new("keys.auth", "must be base64url"))?;
        if auth.len() != 16 {
            return Err(Invalid::new("keys.auth", "must be 16 bytes"));
        }
        Ok(())
    }
}

fn decode_b64url(s: &str) -> Option<Vec<u8>> {
    URL_SAFE_NO_PAD.decode(s.trim_end_matches('=')).ok()
}

/// `POST /v1/me/devices` body.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RegisterDevice {
    pub app_id: AppId,
    pub channel: DeviceChannel,
    #[serde(default)]
    pub token: Option<String>,
    #[serde(default)]
    pub subscription: Option<WebPushSubscription>,
    pub platform: Platform,
    #[serde(default)]
    pub locale: Option<String>,
    #[serde(default)]
    pub installation_id: Option<String>,
}

/// A validated registration: what the store needs to register a device.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeviceRegistration {
    pub app_id: AppId,
    pub user_id: UserId,
    pub channel: DeviceChannel,
    /// The delivery address and uniqueness key: the device token, or a Web Push endpoint.
    pub token: String,
    pub subscription: Option<WebPushSubscription>,
    pub platform: Platform,
    pub locale: Option<String>,
    pub installation_id: Option<String>,
}

impl RegisterDevice {
    pub fn validate(self, user_id: UserId) -> Result<DeviceRegistration, Invalid> {
        let (token, subscription) = match (self.channel, self.token, self.subscription) {
            (DeviceChannel::Webpush, None, Some(sub)) => {
                sub.validate().map_err(|e| e.within("subscription"))?;
                (sub.endpoint.clone(), Some(sub))
            }
            (DeviceChannel::Webpush, _, _) => {
                return Err(Invalid::new(
                    "subscription",
                    "webpush devices register a subscription, not a token",
                ));
            }
            (_, Some(token), None) => {
                validate_token(self.channel, &token).map_err(|e| e.within("token"))?;
                (token, None)
            }
            (_, _, _) => {
                return Err(Invalid::new(
                    "token",
                    "is required (and only webpush takes a subscription)",
                ));
            }
        };
        if let Some(locale) = &self.locale {
            validate_locale(locale).map_err(|e| e.within("locale"))?;
        }
        if let Some(installation) = &self.installation_id
            && (installation.is_empty()
                || installation.len() > 256
                || installation.chars().any(char::is_control))
        {
            return Err(Invalid::new(
                "installation_id",
                "must be 1 to 256 printable characters",
            ));
        }
        Ok(DeviceRegistration {
            app_id: self.app_id,
            user_id,
            channel: self.channel,
            token,
            subscription,
            platform: self.platform,
            locale: self.locale,
            installation_id: self.installation_id,
        })
    }
}

fn validate_token(channel: DeviceChannel, token: &str) -> Result<(), Invalid> {
    if token.is_empty() {
        return Err(Invalid::new("", "must not be empty"));
    }
    match channel {
        // Apple: "don't make assumptions about device token size"; they are hex today.
        DeviceChannel::Apns | DeviceChannel::ApnsVoip => {
            if token.len() > 1024
                || !token.len().is_multiple_of(2)
                || !token.bytes().all(|b| b.is_ascii_hexdigit())
            {
                return Err(Invalid::new(
                    "",
                    "must be an even-length hex string of at most 1024 characters",
                ));
            }
        }
        DeviceChannel::Fcm => {
            if token.len() > MAX_TOKEN_BYTES || !token.bytes().all(|b| b.is_ascii_graphic()) {
                return Err(Invalid::new(
                    "",
                    "must be printable ASCII of at most 4096 bytes",
                ));
            }
        }
        // Opaque to Herald: it may be a JWT or anything the customer's backend understands.
        DeviceChannel::Connector => validate::text("", token, MAX_TOKEN_BYTES)?,
        DeviceChannel::Webpush => unreachable!("webpush registers a subscription"),
    }
    Ok(())
}

/// BCP 47-ish: letters, digits and `-`/`_`, at most 35 characters (the RFC 5646 practical limit).
pub fn validate_locale(locale: &str) -> Result<(), Invalid> {
    if locale.is_empty()
        || locale.len() > 35
        || !locale
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
    {
        return Err(Invalid::new(
            "",
            "must be a language tag such as en or pt-BR",
        ));
    }
    Ok(())
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Device {
    pub id: DeviceId,
    pub app_id: AppId,
    pub user_id: UserId,
    pub channel: DeviceChannel,
    pub token: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub subscription: Option<WebPushSubscription>,
    pub platform: Platform,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub locale: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub installation_id: Option<String>,
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
    #[serde(with = "time::serde::rfc3339")]
    pub updated_at: OffsetDateTime,
}

/// What a registration did, so the API can answer 201 or 200 and log transfers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Registered {
    Created,
    /// The same token for the same user: refreshed.
    Refreshed,
    /// The same installation with a new token: the old token was replaced in place.
    Rotated,
    /// The token was held by another user; it now belongs to this one.
    Transferred,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reg(channel: DeviceChannel, token: Option<&str>) -> RegisterDevice {
        RegisterDevice {
            app_id: AppId::parse("app").unwrap(),
            channel,
            token: token.map(str::to_string),
            subscription: None,
            platform: Platform::Ios,
            locale: Some("en-GB".into()),
            installation_id: None,
        }
    }

    fn user() -> UserId {
        UserId::parse("u").unwrap()
    }

    #[test]
    fn apns_tokens_must_be_hex() {
        assert!(
            reg(DeviceChannel::Apns, Some("abcd01"))
                .validate(user())
                .is_ok()
        );
        assert_eq!(
            reg(DeviceChannel::Apns, Some("xyz"))
                .validate(user())
                .unwrap_err()
                .path,
            "token"
        );
    }

    #[test]
    fn connector_tokens_are_opaque() {
        assert!(
            reg(
                DeviceChannel::Connector,
                Some("eyJhbGciOi.any thing.at-all")
            )
            .validate(user())
            .is_ok()
        );
    }

    #[test]
    fn webpush_needs_a_valid_subscription() {
        let mut r = reg(DeviceChannel::Webpush, None);
        r.subscription = Some(WebPushSubscription {
            endpoint: "https://push.example.net/x".into(),
            keys: SubscriptionKeys {
                p256dh: "BCVxsr7N_eNgVRqvHtD0zTZsEc6-VV-JvLexhqUzORcxaOzi6-AYWXvTBHm4bjyPjs7Vd8pZGH6SRpkNtoIAiw4".into(),
                auth: "BTBZMqHH6r4Tts7J_aSIgg".into(),
            },
            expiration_time: None,
        });
        assert!(r.clone().validate(user()).is_ok());
        r.subscription.as_mut().unwrap().keys.auth = "short".into();
        assert_eq!(
            r.validate(user()).unwrap_err().path,
            "subscription.keys.auth"
        );
    }
}

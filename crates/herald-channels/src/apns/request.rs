//! What one APNs request carries: the device check, the headers and the payload.

use herald_engine::app::ApnsSection;
use herald_engine::device::{Device, DeviceChannel};
use herald_engine::push::{Delivery, DeliveryOutcome};
use reqwest::header::{HeaderMap, HeaderName, HeaderValue};

use super::payload::{self, PushType};
use super::permanent;

/// Refuses a device APNs cannot reach: another channel's, or a token that is not hex.
pub(super) fn check_device(device: &Device) -> Result<(), DeliveryOutcome> {
    if !matches!(
        device.channel,
        DeviceChannel::Apns | DeviceChannel::ApnsVoip
    ) {
        return Err(permanent(format!(
            "a {} device cannot be reached through APNs",
            device.channel.as_str()
        )));
    }
    // Registration only takes hex tokens; anything else would not even make a valid path.
    if device.token.is_empty() || !device.token.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err(DeliveryOutcome::InvalidTarget {
            reason: "the APNs device token is not a hex string".into(),
        });
    }
    Ok(())
}

fn header(value: &str) -> Result<HeaderValue, DeliveryOutcome> {
    HeaderValue::from_str(value)
        .map_err(|_| permanent("a value of the APNs request is not a valid header value"))
}

/// The headers and payload of `delivery` to `device`.
pub(super) fn request(
    delivery: &Delivery,
    device: &Device,
    section: &ApnsSection,
    jwt: &str,
) -> Result<(HeaderMap, Vec<u8>, PushType), DeliveryOutcome> {
    let push = &delivery.push;
    let push_type = PushType::for_push(device.channel, push.kind);
    let mut headers = HeaderMap::new();
    let mut set = |name: &'static str, value: &str| -> Result<(), DeliveryOutcome> {
        headers.insert(HeaderName::from_static(name), header(value)?);
        Ok(())
    };
    set("authorization", &format!("bearer {jwt}"))?;
    set("apns-push-type", push_type.as_str())?;
    set("apns-topic", &push_type.topic(&section.topic))?;
    set("apns-priority", push_type.priority())?;
    set(
        "apns-expiration",
        &push.expires_at.unix_timestamp().max(0).to_string(),
    )?;
    set("apns-id", &payload::apns_id(&delivery.id))?;
    if !push.collapse_key.is_empty() {
        set(
            "apns-collapse-id",
            &payload::collapse_id(&push.collapse_key),
        )?;
    }
    set("content-type", "application/json")?;
    Ok((headers, payload::render(delivery, push_type), push_type))
}

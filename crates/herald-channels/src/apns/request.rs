//! What one APNs request carries: the device check, the headers and the payload (Herald's
//! rendering of the push, or a gateway's payload as it came).

use herald_engine::app::ApnsSection;
use herald_engine::device::{Device, DeviceChannel};
use herald_engine::push::{Delivery, DeliveryOutcome, GatewayPayload};
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
    // A gateway's client may ask for a low priority (Matrix `prio: low`): 5, as Sygnal sends.
    let priority = match &push.gateway {
        Some(_) if !push.high_priority => "5",
        _ => push_type.priority(),
    };
    set("apns-priority", priority)?;
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
    let body = match &push.gateway {
        Some(payload) => gateway_body(payload, push_type)?,
        None => payload::render(delivery, push_type),
    };
    Ok((headers, body, push_type))
}

/// A gateway's own payload, sent as it is: its composer fitted it to Apple's limit.
fn gateway_body(payload: &GatewayPayload, push_type: PushType) -> Result<Vec<u8>, DeliveryOutcome> {
    let body = serde_json::to_vec(payload).expect("JSON values always serialise");
    if body.len() > push_type.max_payload() {
        return Err(permanent(format!(
            "the gateway payload is {} bytes, over APNs' limit of {}",
            body.len(),
            push_type.max_payload()
        )));
    }
    Ok(body)
}

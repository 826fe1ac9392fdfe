//! Defaults Herald writes into an app document before it is stored, so a GET shows them.

use std::collections::BTreeMap;

use serde_json::Value;

/// A `webpush` section that names no keys keeps the pair the stored app has: a new pair would
/// silently invalidate every browser subscription made with the old public key.
pub fn keep_vapid_keys(document: &mut Value, stored: &Value, secrets: &BTreeMap<String, String>) {
    let Some(webpush) = document.get_mut("webpush").and_then(Value::as_object_mut) else {
        return;
    };
    if webpush.contains_key("vapid_private_key") || webpush.contains_key("vapid_public_key") {
        return;
    }
    let (Some(public), Some(private)) = (
        stored
            .pointer("/webpush/vapid_public_key")
            .and_then(Value::as_str),
        secrets.get("/webpush/vapid_private_key"),
    ) else {
        return;
    };
    webpush.insert("vapid_public_key".into(), Value::from(public));
    webpush.insert("vapid_private_key".into(), Value::from(private.as_str()));
}

/// The push-proxy preset brings the failure policy of the system it replaces: one attempt, no
/// retry, and 400/500 answers never open the circuit. Written into the stored document (so a
/// GET shows them) unless the app says otherwise.
pub fn preset_defaults(document: &mut Value) {
    if document
        .pointer("/connector/preset")
        .and_then(Value::as_str)
        != Some("push_proxy")
    {
        return;
    }
    let Some(root) = document.as_object_mut() else {
        return;
    };
    let delivery = root
        .entry("delivery")
        .or_insert_with(|| Value::Object(Default::default()));
    if let Some(delivery) = delivery.as_object_mut() {
        delivery.entry("retry").or_insert(Value::Bool(false));
        delivery
            .entry("breaker_statuses")
            .or_insert_with(|| serde_json::json!([408, 429, 502, 503, 504]));
    }
}

/// A `webpush` section without keys gets a fresh VAPID pair; one with only a private key gets
/// its public key, so clients can always subscribe with `vapid_public_key`.
pub fn vapid_keys(document: &mut Value) {
    let Some(webpush) = document.get_mut("webpush").and_then(Value::as_object_mut) else {
        return;
    };
    match webpush.get("vapid_private_key").and_then(Value::as_str) {
        None => {
            let (public, private) = herald_channels::webpush::generate_vapid_keys();
            webpush.insert("vapid_public_key".into(), Value::from(public));
            webpush.insert("vapid_private_key".into(), Value::from(private));
        }
        Some(private) => {
            if !webpush.contains_key("vapid_public_key")
                && let Ok(public) = herald_channels::webpush::public_key_of(private)
            {
                webpush.insert("vapid_public_key".into(), Value::from(public));
            }
        }
    }
}

//! Secrets in an app document: where they live, masked on read, taken out to be sealed, and
//! put back (a PUT that sends the mask keeps the stored value).

use std::collections::BTreeMap;

use serde_json::Value;

use crate::validate::Invalid;

/// What a secret looks like on read.
pub const SECRET_MASK: &str = "********";

/// Where secrets live in an app document: `*` matches every array element.
pub const SECRET_PATHS: &[&[&str]] = &[
    &["apns", "private_key"],
    &["fcm", "service_account", "private_key"],
    &["webpush", "vapid_private_key"],
    &["smtp", "password"],
    &["webhooks", "*", "secrets", "*"],
    &["connector", "hmac_secret"],
    &["connector", "auth_token"],
];

/// Calls `f` with the JSON pointer and value of every secret present in `doc`.
pub fn visit_secrets(doc: &mut Value, f: &mut dyn FnMut(&str, &mut Value)) {
    fn walk(node: &mut Value, pattern: &[&str], at: String, f: &mut dyn FnMut(&str, &mut Value)) {
        let Some((head, rest)) = pattern.split_first() else {
            if !node.is_null() {
                f(&at, node);
            }
            return;
        };
        match (*head, node) {
            ("*", Value::Array(items)) => {
                for (i, item) in items.iter_mut().enumerate() {
                    walk(item, rest, format!("{at}/{i}"), f);
                }
            }
            (key, Value::Object(map)) => {
                if let Some(child) = map.get_mut(key) {
                    walk(child, rest, format!("{at}/{key}"), f);
                }
            }
            _ => {}
        }
    }
    for pattern in SECRET_PATHS {
        walk(doc, pattern, String::new(), f);
    }
}

/// Replaces every secret with the mask.
pub fn mask_secrets(doc: &mut Value) {
    visit_secrets(doc, &mut |_, v| *v = Value::from(SECRET_MASK));
}

/// Takes the secrets out of `doc` (leaving the mask) and returns them by JSON pointer.
pub fn take_secrets(doc: &mut Value) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    visit_secrets(doc, &mut |at, v| {
        if let Some(s) = v.as_str() {
            out.insert(at.to_string(), s.to_string());
        }
        *v = Value::from(SECRET_MASK);
    });
    out
}

/// Puts secrets back. A masked value in `doc` with no stored secret at its pointer is
/// reported, so a client cannot "keep" a secret that never existed.
pub fn restore_secrets(doc: &mut Value, secrets: &BTreeMap<String, String>) -> Result<(), Invalid> {
    let mut missing = None;
    visit_secrets(doc, &mut |at, v| {
        if v.as_str() == Some(SECRET_MASK) {
            match secrets.get(at) {
                Some(s) => *v = Value::from(s.as_str()),
                None => missing = Some(at.trim_start_matches('/').replace('/', ".")),
            }
        }
    });
    match missing {
        Some(path) => Err(Invalid::new(
            path,
            "is masked but no stored secret exists here; send the real value",
        )),
        None => Ok(()),
    }
}

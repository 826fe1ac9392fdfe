//! The built-in payload shapes, written as templates so they go through the same engine as a
//! customer's own (one code path, one escaping rule).

use std::sync::LazyLock;

use herald_engine::app::ConnectorPreset;
use herald_engine::push::Push;
use serde_json::{Value, json};

/// The SDK-adapter shape (a Notification Hub adapter calling the customer's backend):
/// `{authToken, deviceToken, payload: {aps: {alert: {title, body}, badge, sound}, …}}`.
static SDK_ADAPTER: LazyLock<Value> = LazyLock::new(|| {
    json!({
        "authToken": "{{ auth_token }}",
        "deviceToken": "{{ device_token }}",
        "payload": {
            "aps": {
                "alert": {"title": "{{ title }}", "body": "{{ body }}"},
                "badge": "{{ badge }}",
                "sound": "default",
            },
            "conversationId": "{{ conversation_id }}",
            "position": "{{ position }}",
            "unread": "{{ unread }}",
            "kind": "{{ kind }}",
        },
    })
});

/// The SDK-adapter shape of a silent push (a read, a revoked call): no alert, no sound.
static SDK_ADAPTER_SILENT: LazyLock<Value> = LazyLock::new(|| {
    json!({
        "authToken": "{{ auth_token }}",
        "deviceToken": "{{ device_token }}",
        "payload": {
            "aps": {"content-available": 1, "badge": "{{ badge }}"},
            "conversationId": "{{ conversation_id }}",
            "position": "{{ position }}",
            "unread": "{{ unread }}",
            "kind": "{{ kind }}",
        },
    })
});

/// The push-proxy shape: metadata only, never text, whatever the app's content mode. The
/// client fetches the content with the client API.
static PUSH_PROXY: LazyLock<Value> = LazyLock::new(|| {
    json!({
        "eventId": "{{ event_id }}",
        "conversationId": "{{ conversation_id }}",
        "customerId": "{{ customer_id }}",
        "sessionId": "{{ session_id }}",
        "eventDate": "{{ event_date }}",
    })
});

/// GMS's HTTP push of a chat push (`content.shape = "gms"`): its content as GMS wrote it,
/// tagged `chat.newagentmessage`.
static GMS: LazyLock<Value> = LazyLock::new(|| {
    json!({
        "deviceToken": "{{ device_token }}",
        "authToken": "{{ auth_token }}",
        "message": "{{ gms.message }}",
        "tag": "{{ gms.tag }}",
    })
});

/// The `gms` preset's shape of a push GMS had no content for (a read, a call): what it is
/// about, for the app to act on.
static GMS_OTHER: LazyLock<Value> = LazyLock::new(|| {
    json!({
        "deviceToken": "{{ device_token }}",
        "authToken": "{{ auth_token }}",
        "kind": "{{ kind }}",
        "serviceId": "{{ conversation_id }}",
        "position": "{{ position }}",
    })
});

/// The template of a preset for `push`; `None` for `custom` (the app's own).
pub fn template(preset: ConnectorPreset, push: &Push) -> Option<&'static Value> {
    match preset {
        ConnectorPreset::SdkAdapter if push.kind.is_silent() => Some(&SDK_ADAPTER_SILENT),
        ConnectorPreset::SdkAdapter => Some(&SDK_ADAPTER),
        ConnectorPreset::PushProxy => Some(&PUSH_PROXY),
        ConnectorPreset::Gms if push.gms.is_some() => Some(&GMS),
        ConnectorPreset::Gms => Some(&GMS_OTHER),
        ConnectorPreset::Custom => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::connector::template;

    #[test]
    fn every_preset_is_a_valid_template() {
        for t in [
            &*SDK_ADAPTER,
            &*SDK_ADAPTER_SILENT,
            &*PUSH_PROXY,
            &*GMS,
            &*GMS_OTHER,
        ] {
            assert_eq!(template::validate_template(t), Ok(()));
        }
    }
}

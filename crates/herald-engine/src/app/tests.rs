//! The app document: validation and secrets.

use serde_json::json;

use super::check::webhook_secret_ok;
use super::*;
use crate::participant::Role;

#[test]
fn secrets_are_taken_masked_and_restored() {
    let mut doc = json!({
        "smtp": {"host": "h", "port": 25, "from": "a@b", "password": "pw"},
        "webhooks": [{"id": "w", "url": "https://x", "events": [], "secrets": ["whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw", "whsec_C2FVsBQIhrscChlQIMV+b5sSYspob7oD"]}]
    });
    let original = doc.clone();
    let secrets = take_secrets(&mut doc);
    assert_eq!(secrets.len(), 3);
    assert_eq!(doc["smtp"]["password"], SECRET_MASK);
    assert_eq!(doc["webhooks"][0]["secrets"][1], SECRET_MASK);
    restore_secrets(&mut doc, &secrets).unwrap();
    assert_eq!(doc, original);
}

#[test]
fn a_mask_without_a_stored_secret_is_refused() {
    let mut doc = json!({"smtp": {"password": SECRET_MASK}});
    assert_eq!(
        restore_secrets(&mut doc, &BTreeMap::new())
            .unwrap_err()
            .path,
        "smtp.password"
    );
}

#[test]
fn a_push_quotes_at_most_the_transcript_lines_the_engine_reads() {
    let lines = |n: usize| -> AppConfig {
        serde_json::from_value(json!({"content": {"transcript_lines": n}})).unwrap()
    };
    let most = crate::notify::store::MAX_TRANSCRIPT_LINES;
    assert!(lines(most).validate().is_ok());
    let refused = lines(most + 1).validate().unwrap_err();
    assert_eq!(refused.path, "content.transcript_lines");
}

#[test]
fn defaults_follow_the_spec() {
    let cfg: AppConfig = serde_json::from_value(json!({})).unwrap();
    assert_eq!(cfg.rules.grace_delay_ms, 5_000);
    assert_eq!(cfg.rules.coalesce_window_ms, 3_000);
    assert_eq!(cfg.rules.notify_roles, vec![Role::Visitor, Role::Agent]);
    assert_eq!(
        cfg.rules.filter,
        vec!["notice.typing_started", "notice.typing_stopped"]
    );
}

#[test]
fn webhook_secrets_must_decode_to_24_to_64_bytes() {
    assert!(webhook_secret_ok("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"));
    assert!(webhook_secret_ok(
        "whsec_AQIDBAUGBwgJCgsMDQ4PEBESExQVFhcYGRobHB0eHyA="
    ));
    assert!(!webhook_secret_ok("whsec_abc"), "too short");
    assert!(!webhook_secret_ok("whsec_not base64!"));
    assert!(
        !webhook_secret_ok("MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"),
        "no prefix"
    );
}

#[test]
fn bad_urls_and_ids_name_their_field() {
    let cfg: AppConfig =
        serde_json::from_value(json!({"connector": {"callback_url": "not a url"}})).unwrap();
    assert_eq!(cfg.validate().unwrap_err().path, "connector.callback_url");
    let cfg: AppConfig = serde_json::from_value(
        json!({"apns": {"team_id": "T", "key_id": "K", "private_key": "p", "topic": "t"}}),
    )
    .unwrap();
    assert_eq!(cfg.validate().unwrap_err().path, "apns.team_id");
}

#[test]
fn secondary_rule_is_one_value_or_one_per_role_and_keeps_its_form() {
    for doc in [
        json!({"secondary_rule": "never"}),
        json!({"secondary_rule": {"agent": "never", "visitor": "always"}}),
        json!({"secondary_rule": {"visitor": "never"}}),
    ] {
        let rules: Rules = serde_json::from_value(doc.clone()).unwrap();
        let back = serde_json::to_value(&rules).unwrap();
        assert_eq!(back["secondary_rule"], doc["secondary_rule"]);
    }
    let per_role: Rules =
        serde_json::from_value(json!({"secondary_rule": {"visitor": "never"}})).unwrap();
    assert_eq!(
        per_role.secondary_rule.for_role(Role::Agent),
        SecondaryRule::Always
    );
    assert_eq!(
        per_role.secondary_rule.for_role(Role::Visitor),
        SecondaryRule::Never
    );
    for bad in [
        json!({"secondary_rule": "sometimes"}),
        json!({"secondary_rule": {"robot": "never"}}),
        json!({"secondary_rule": {"agent": "maybe"}}),
        json!({"secondary_rule": 3}),
    ] {
        let refused = crate::validate::from_value::<AppConfig>(json!({"rules": bad})).unwrap_err();
        assert_eq!(refused.path, "rules.secondary_rule", "{bad}");
    }
}

#[test]
fn the_left_notice_is_off_by_default_and_its_text_must_say_something() {
    let cfg: AppConfig = serde_json::from_value(json!({})).unwrap();
    assert!(!cfg.rules.left_notice.enabled);
    assert_eq!(cfg.rules.left_notice.text, "customer is not online");
    assert_eq!(cfg.rules.left_notice.roles, vec![Role::Visitor]);
    let with_text = |text: &str| -> AppConfig {
        serde_json::from_value(json!({"rules": {"left_notice": {"enabled": true, "text": text}}}))
            .unwrap()
    };
    assert!(with_text("the customer left").validate().is_ok());
    assert_eq!(
        with_text(" ").validate().unwrap_err().path,
        "rules.left_notice.text"
    );
    assert_eq!(
        with_text(&"x".repeat(1025)).validate().unwrap_err().path,
        "rules.left_notice.text"
    );
}

#[test]
fn the_gms_shape_has_a_message_and_is_never_metadata_only() {
    let app = |content: serde_json::Value| -> AppConfig {
        serde_json::from_value(json!({"content": content})).unwrap()
    };
    let gms = app(json!({"shape": "gms"}));
    assert_eq!(gms.content.gms.message, "New message from Agent");
    assert!(gms.validate().is_ok());
    let blank = app(json!({"shape": "gms", "gms": {"message": " "}}));
    assert_eq!(blank.validate().unwrap_err().path, "content.gms.message");
    let silent = app(json!({"shape": "gms", "mode": "metadata_only"}));
    assert_eq!(silent.validate().unwrap_err().path, "content.shape");
    let unknown: Result<AppConfig, _> =
        serde_json::from_value(json!({"content": {"shape": "sygnal"}}));
    assert!(unknown.is_err());
}

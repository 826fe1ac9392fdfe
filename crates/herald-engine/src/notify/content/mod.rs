//! What a push says (SPEC §3.4): titles and bodies from templates per kind and locale, with
//! built-in defaults an app can override; `metadata_only` apps send no text at all.
//!
//! Templates use `{name}` placeholders: `{sender_name}`, `{text}`, `{count}`, `{unread}`,
//! `{caller_name}`, `{inviter_name}`, `{conversation_id}`, `{url}`. Values are inserted as plain text (channels
//! escape for their own formats). The built-in texts are in `defaults`; [`gms`] composes the
//! Genesys GMS shape some apps ask for besides.

mod defaults;
pub mod gms;

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::validate::Invalid;

use defaults::DEFAULTS;

/// The kinds of visible text Herald writes.
pub const TEMPLATE_KINDS: &[&str] = &[
    "new_message",
    "new_messages",
    "incoming_call",
    "missed_call",
    "notice",
    "notice_push_url",
    "invitation",
];
pub const PLACEHOLDERS: &[&str] = &[
    "sender_name",
    "text",
    "count",
    "unread",
    "caller_name",
    "inviter_name",
    "conversation_id",
    "url",
];

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Template {
    pub title: String,
    pub body: String,
}

/// An app's overrides: kind → locale → template.
pub type Templates = BTreeMap<String, BTreeMap<String, Template>>;

/// Values for the placeholders.
pub type Vars = BTreeMap<&'static str, String>;

/// Candidates for `pt-BR`: `pt-BR`, `pt`, then English.
fn locale_chain(locale: Option<&str>) -> Vec<String> {
    let mut chain = vec![];
    if let Some(l) = locale {
        let l = l.replace('_', "-");
        chain.push(l.clone());
        if let Some((lang, _)) = l.split_once('-') {
            chain.push(lang.to_string());
        }
    }
    chain.push("en".into());
    chain
}

fn fill(template: &str, vars: &Vars) -> String {
    let mut out = String::with_capacity(template.len());
    let mut rest = template;
    while let Some(open) = rest.find('{') {
        out.push_str(&rest[..open]);
        match rest[open..].find('}') {
            Some(close) => {
                let name = &rest[open + 1..open + close];
                match vars.get(name) {
                    Some(value) => out.push_str(value),
                    None => out.push_str(&rest[open..=open + close]),
                }
                rest = &rest[open + close + 1..];
            }
            None => {
                out.push_str(&rest[open..]);
                rest = "";
            }
        }
    }
    out.push_str(rest);
    out
}

/// Title and body for `kind` in the best locale the app or the defaults have.
pub fn render(
    kind: &str,
    locale: Option<&str>,
    overrides: &Templates,
    vars: &Vars,
) -> (String, String) {
    for candidate in locale_chain(locale) {
        if let Some(t) = overrides
            .get(kind)
            .and_then(|by_locale| by_locale.get(&candidate))
        {
            return (fill(&t.title, vars), fill(&t.body, vars));
        }
        if let Some((_, _, title, body)) = DEFAULTS
            .iter()
            .find(|(k, l, _, _)| *k == kind && *l == candidate)
        {
            return (fill(title, vars), fill(body, vars));
        }
    }
    (String::new(), String::new())
}

/// Checks an app's templates: known kinds, sane locales, known placeholders.
pub fn validate(templates: &Templates) -> Result<(), Invalid> {
    for (kind, by_locale) in templates {
        if !TEMPLATE_KINDS.contains(&kind.as_str()) {
            return Err(Invalid::new(
                format!("templates.{kind}"),
                format!(
                    "is not a template kind; expected one of {}",
                    TEMPLATE_KINDS.join(", ")
                ),
            ));
        }
        for (locale, t) in by_locale {
            let at = format!("templates.{kind}.{locale}");
            crate::device::validate_locale(locale).map_err(|e| e.within(&at))?;
            for (field, text) in [("title", &t.title), ("body", &t.body)] {
                crate::validate::text(&format!("{at}.{field}"), text, 1024)?;
                let mut rest = text.as_str();
                while let Some(open) = rest.find('{') {
                    let close = rest[open..].find('}').ok_or_else(|| {
                        Invalid::new(format!("{at}.{field}"), "has an unclosed `{`")
                    })?;
                    let name = &rest[open + 1..open + close];
                    if !PLACEHOLDERS.contains(&name) {
                        return Err(Invalid::new(
                            format!("{at}.{field}"),
                            format!(
                                "uses unknown placeholder {{{name}}}; known: {}",
                                PLACEHOLDERS.join(", ")
                            ),
                        ));
                    }
                    rest = &rest[open + close + 1..];
                }
            }
        }
    }
    Ok(())
}

/// Shortens `text` to at most `max` bytes on a character boundary, marking the cut with `…`.
pub fn shorten(text: &str, max: usize) -> String {
    if text.len() <= max {
        return text.to_string();
    }
    let ellipsis = "…";
    let mut end = max.saturating_sub(ellipsis.len());
    while end > 0 && !text.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}{ellipsis}", &text[..end])
}

#[cfg(test)]
mod tests {
    use super::*;

    fn vars() -> Vars {
        BTreeMap::from([
            ("sender_name", "Ann".to_string()),
            ("text", "Hello {world}".to_string()),
            ("count", "3".to_string()),
        ])
    }

    #[test]
    fn defaults_speak_the_users_language_and_fall_back_to_english() {
        assert_eq!(
            render("new_message", Some("de"), &Templates::new(), &vars()).0,
            "Neue Nachricht von Ann"
        );
        assert_eq!(
            render("new_message", Some("pt-BR"), &Templates::new(), &vars()).0,
            "Nova mensagem de Ann"
        );
        assert_eq!(
            render("new_message", Some("ja"), &Templates::new(), &vars()).0,
            "New message from Ann"
        );
        assert_eq!(
            render("new_messages", None, &Templates::new(), &vars()).0,
            "3 new messages from Ann"
        );
    }

    #[test]
    fn every_built_in_locale_has_every_kind() {
        for (_, locale, _, _) in DEFAULTS {
            for kind in TEMPLATE_KINDS {
                assert!(
                    DEFAULTS.iter().any(|(k, l, _, _)| k == kind && l == locale),
                    "{locale} has no {kind}"
                );
            }
        }
    }

    #[test]
    fn an_apps_template_overrides_the_default_and_values_are_not_reinterpreted() {
        let overrides = Templates::from([(
            "new_message".to_string(),
            BTreeMap::from([(
                "en".to_string(),
                Template {
                    title: "{sender_name} wrote".into(),
                    body: "» {text}".into(),
                },
            )]),
        )]);
        assert_eq!(
            render("new_message", Some("en-GB"), &overrides, &vars()),
            ("Ann wrote".to_string(), "» Hello {world}".to_string())
        );
    }

    #[test]
    fn templates_with_unknown_kinds_or_placeholders_are_refused() {
        let bad = Templates::from([(
            "new_message".to_string(),
            BTreeMap::from([(
                "en".to_string(),
                Template {
                    title: "{nope}".into(),
                    body: "".into(),
                },
            )]),
        )]);
        assert_eq!(
            validate(&bad).unwrap_err().path,
            "templates.new_message.en.title"
        );
        let kind = Templates::from([("birthday".to_string(), BTreeMap::new())]);
        assert_eq!(validate(&kind).unwrap_err().path, "templates.birthday");
    }

    #[test]
    fn shortening_respects_character_boundaries() {
        assert_eq!(shorten("héllo wörld", 6), "hé…");
        assert_eq!(shorten("short", 10), "short");
        assert!(shorten(&"€".repeat(100), 10).len() <= 10);
    }
}

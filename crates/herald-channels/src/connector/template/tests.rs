use serde_json::json;

use super::*;

fn vars() -> Value {
    json!({
        "title": "New message from Ann",
        "body": "hello",
        "badge": 3,
        "unread": 2,
        "silent": false,
        "position": null,
        "sender_name": "Ann",
        "data": {"order": "A-1"},
        "push": {"kind": "new_message", "badge": 3},
    })
}

#[test]
fn a_lone_expression_keeps_its_json_type_and_anything_else_is_a_string() {
    let template = json!({
        "badge": "{{ badge }}",
        "silent": "{{ silent }}",
        "position": "{{ position }}",
        "data": "{{ data }}",
        "push": "{{push}}",
        "trimmed": "{{- badge -}}",
        "computed": "{{ badge + unread }}",
        "fallback": "{{ position | default('none yet', true) }}",
        "text": "{{ badge }} new",
        "two": "{{ badge }}{{ unread }}",
        "braces_in_a_literal": "{{ '}}{{' }}",
        "literal": "plain",
        "number": 7,
        "list": ["{{ title }}", true, null, {"deep": "{{ data.order }}"}],
        "block": "{% if silent %}quiet{% else %}{{ title }}{% endif %}",
        "none_prints_as_nothing": "[{{ position }}]",
    });
    assert_eq!(
        render(&template, &vars()).unwrap(),
        json!({
            "badge": 3,
            "silent": false,
            "position": null,
            "data": {"order": "A-1"},
            "push": {"kind": "new_message", "badge": 3},
            "trimmed": 3,
            "computed": 5,
            "fallback": "none yet",
            "text": "3 new",
            "two": "32",
            "braces_in_a_literal": "}}{{",
            "literal": "plain",
            "number": 7,
            "list": ["New message from Ann", true, null, {"deep": "A-1"}],
            "block": "New message from Ann",
            "none_prints_as_nothing": "[]",
        })
    );
}

#[test]
fn hostile_values_stay_values_whatever_they_contain() {
    let hostile = [
        r#"He said "hi""#,
        r"C:\path\to\x \u0000 \\",
        "line one\nline two\r\n\ttab",
        r#"", "injected": true, "x": ""#,
        r#""}, "badge": 999, "y": {"#,
        "</script><script>alert(1)</script>",
        "emoji 😀 and \u{2028}\u{2029} and \u{7f} and \u{1}",
        "{{ badge }} {% if true %}not a template{% endif %}",
        "<b>&amp;</b>",
    ];
    for text in hostile {
        let vars = json!({"body": text, "sender_name": text, "badge": 1});
        let template = json!({
            "whole": "{{ body }}",
            "embedded": "From {{ sender_name }}: {{ body }}",
            "nested": {"list": ["{{ body }}"]},
            "badge": "{{ badge }}",
        });
        let rendered = render(&template, &vars).unwrap();
        let wire = serde_json::to_string(&rendered).unwrap();
        let parsed: Value = serde_json::from_str(&wire).unwrap();
        assert_eq!(
            parsed,
            json!({
                "whole": text,
                "embedded": format!("From {text}: {text}"),
                "nested": {"list": [text]},
                "badge": 1,
            }),
            "{text:?} → {wire}"
        );
    }
}

#[test]
fn unknown_undefined_and_broken_templates_fail_with_their_place() {
    let err = render(&json!({"a": {"b": "{{ data.missing }}"}}), &vars()).unwrap_err();
    assert_eq!(err.path, "a.b");
    assert!(err.message.contains("undefined"), "{err}");

    let err = render(&json!({"x": "Hi {{ data.missing }}"}), &vars()).unwrap_err();
    assert_eq!(err.path, "x");

    let err = render(&json!(["ok", "{{ nope }}x"]), &vars()).unwrap_err();
    assert_eq!(err.path, "[1]");

    let err = render(&json!({"x": "{{ body | nosuchfilter }}"}), &vars()).unwrap_err();
    assert!(err.message.contains("filter"), "{err}");

    let err = render(
        &json!({"x": "{% for i in range(100000) %}{{ i }}{% endfor %}"}),
        &vars(),
    )
    .unwrap_err();
    assert!(err.message.contains("fuel"), "{err}");
}

#[test]
fn validation_checks_syntax_and_names_but_not_values() {
    assert_eq!(
        validate_template(&json!({"a": "{{ badge }}", "b": ["x {{ title }}"]})),
        Ok(())
    );
    assert_eq!(
        validate_template(
            &json!({"a": "{% for k, v in data | items %}{{ k }}={{ v }};{% endfor %}"})
        ),
        Ok(())
    );
    assert_eq!(
        validate_template(&json!({"a": "{{ range(3) | list }}"})),
        Ok(()),
        "globals are known"
    );
    assert_eq!(
        validate_template(&json!({"a": "{{ data.anything }}"})),
        Ok(()),
        "keys of data are only known per push"
    );

    let err = validate(&json!({"p": {"q": "{{ badge "}})).unwrap_err();
    assert_eq!(err.path, "p.q");
    assert!(err.message.contains("syntax"), "{err}");

    let err = validate(&json!({"p": ["{{ tittle }}"]})).unwrap_err();
    assert_eq!(err.path, "p[0]");
    assert!(err.message.contains("`tittle`"), "{err}");
    assert!(
        validate_template(&json!({"p": ["{{ tittle }}"]}))
            .unwrap_err()
            .starts_with("at `p[0]`: unknown variable `tittle`")
    );

    assert!(
        validate(&json!("{{ badge }}")).is_err(),
        "a bare string is not a payload"
    );
    let big = "x".repeat(MAX_TEMPLATE_BYTES);
    assert!(validate(&json!({"big": big})).is_err());
}

#[test]
fn errors_do_not_quote_values() {
    let secret = "s3cr3t-value";
    let err = render(&json!({"x": "{{ body + 1 }}"}), &json!({"body": secret})).unwrap_err();
    assert!(!err.to_string().contains(secret), "{err}");
}

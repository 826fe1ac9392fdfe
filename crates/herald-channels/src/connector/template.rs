//! Payload templates: a JSON document whose string leaves are minijinja templates.
//!
//! - A leaf that is exactly one expression (`"{{ badge }}"`, `"{{ data }}"`,
//!   `"{{ title | default('New message') }}"`) takes the JSON type of its value: number, bool,
//!   string, object, array or null.
//! - Any other leaf with template syntax (`"Hi {{ sender_name }}!"`, `{% if %}` blocks) renders
//!   to a string; `none` prints as nothing.
//! - A leaf without template syntax, every object key and every non-string value is kept as is.
//!
//! The result is a `serde_json::Value` tree serialised once, so whatever a value holds (quotes,
//! backslashes, newlines, `</script>`, any unicode) it is escaped correctly: a value can never
//! break out of its place in the document.
//!
//! Undefined variables are errors (strict mode), and so is an expression whose value is
//! undefined (`"{{ data.order_id }}"` for a push without that key). Rendering is bounded by
//! minijinja's fuel. Errors never quote variable values; the caller additionally scrubs secrets.

use std::collections::BTreeSet;
use std::sync::LazyLock;

use minijinja::value::Value as Jinja;
use minijinja::{Environment, UndefinedBehavior};
use serde_json::Value;

/// The variables a template may use (see `ConnectorChannel`'s documentation).
pub const VARIABLES: &[&str] = &[
    "device_token",
    "auth_token",
    "event_id",
    "event_date",
    "conversation_id",
    "customer_id",
    "session_id",
    "title",
    "body",
    "badge",
    "unread",
    "message_count",
    "missed_calls",
    "kind",
    "silent",
    "position",
    "call_id",
    "sender_name",
    "data",
    "push",
    "notification_id",
    "delivery_id",
    "app_id",
    "platform",
    "locale",
    "gms",
];

/// Largest template accepted, serialised.
pub const MAX_TEMPLATE_BYTES: usize = 64 * 1024;
/// Largest rendered payload sent, serialised.
pub const MAX_PAYLOAD_BYTES: usize = 512 * 1024;
/// Instructions one leaf may execute (loops in a customer's template cannot spin forever).
const FUEL: u64 = 50_000;

static ENV: LazyLock<Environment<'static>> = LazyLock::new(|| {
    let mut env = Environment::new();
    env.set_undefined_behavior(UndefinedBehavior::Strict);
    env.set_fuel(Some(FUEL));
    // Payloads are JSON, not HTML: nothing is HTML-escaped (JSON escaping happens on
    // serialisation), and `none` prints as nothing.
    env.set_auto_escape_callback(|_| minijinja::AutoEscape::None);
    env.set_formatter(|out, state, value| {
        if value.is_none() {
            return Ok(());
        }
        minijinja::escape_formatter(out, state, value)
    });
    env
});

/// Why a template could not be used, with the place in the document (`payload.aps.badge`,
/// `items[2]`, or empty for the root).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TemplateError {
    pub path: String,
    pub message: String,
}

impl std::fmt::Display for TemplateError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.path.is_empty() {
            write!(f, "{}", self.message)
        } else {
            write!(f, "at `{}`: {}", self.path, self.message)
        }
    }
}

fn error(path: &str, message: impl Into<String>) -> TemplateError {
    TemplateError {
        path: path.to_string(),
        message: message.into(),
    }
}

/// minijinja's message without its debug dump (which could show variable values).
fn describe(e: &minijinja::Error) -> String {
    let mut message = e.kind().to_string();
    if let Some(detail) = e.detail() {
        message.push_str(": ");
        message.push_str(detail);
    }
    message
}

fn child(path: &str, key: &str) -> String {
    if path.is_empty() {
        key.to_string()
    } else {
        format!("{path}.{key}")
    }
}

fn has_syntax(s: &str) -> bool {
    s.contains("{{") || s.contains("{%") || s.contains("{#")
}

/// The inside of a leaf that is exactly `{{ … }}`, whitespace control markers removed.
fn braced(s: &str) -> Option<&str> {
    let inner = s.strip_prefix("{{")?.strip_suffix("}}")?;
    let inner = inner.strip_prefix(['-', '+']).unwrap_or(inner);
    let inner = inner.strip_suffix(['-', '+']).unwrap_or(inner);
    (!inner.trim().is_empty()).then_some(inner)
}

/// One string leaf, compiled.
enum Leaf<'a> {
    Literal,
    Expression(minijinja::Expression<'a, 'a>),
    Template(minijinja::Template<'a, 'a>),
}

/// A leaf is one expression when its inside parses as one: `"{{ a }} and {{ b }}"` does not
/// (its inside is `a }} and {{ b`), `"{{ '}}' }}"` does.
fn compile<'a>(s: &'a str, path: &str) -> Result<Leaf<'a>, TemplateError> {
    if !has_syntax(s) {
        return Ok(Leaf::Literal);
    }
    let env: &'a Environment<'a> = &ENV;
    if let Some(Ok(expression)) = braced(s).map(|inner| env.compile_expression(inner)) {
        return Ok(Leaf::Expression(expression));
    }
    env.template_from_str(s)
        .map(Leaf::Template)
        .map_err(|e| error(path, describe(&e)))
}

fn unknown_variables(
    names: impl IntoIterator<Item = String>,
    path: &str,
) -> Result<(), TemplateError> {
    let globals: BTreeSet<&str> = ENV.globals().map(|(k, _)| k).collect();
    let mut unknown: Vec<String> = names
        .into_iter()
        .filter(|n| !VARIABLES.contains(&n.as_str()) && !globals.contains(n.as_str()))
        .collect();
    if unknown.is_empty() {
        return Ok(());
    }
    unknown.sort();
    Err(error(
        path,
        format!(
            "unknown variable {}; the variables are {}",
            unknown
                .iter()
                .map(|n| format!("`{n}`"))
                .collect::<Vec<_>>()
                .join(", "),
            VARIABLES.join(", ")
        ),
    ))
}

fn check(template: &Value, path: &str) -> Result<(), TemplateError> {
    match template {
        Value::String(s) => match compile(s, path)? {
            Leaf::Literal => Ok(()),
            Leaf::Expression(e) => unknown_variables(e.undeclared_variables(false), path),
            Leaf::Template(t) => unknown_variables(t.undeclared_variables(false), path),
        },
        Value::Array(items) => items
            .iter()
            .enumerate()
            .try_for_each(|(i, item)| check(item, &format!("{path}[{i}]"))),
        Value::Object(map) => map.iter().try_for_each(|(k, v)| check(v, &child(path, k))),
        _ => Ok(()),
    }
}

/// Checks a payload template before it is stored: a JSON object or array, at most
/// [`MAX_TEMPLATE_BYTES`], every string leaf valid minijinja syntax, and only known variables
/// ([`VARIABLES`]). What depends on a push's values (a missing `data` key, a filter applied to
/// `none`) can only fail when a push is rendered; that delivery then fails permanently with
/// the reason.
///
/// The error names the place in the template: ``at `payload.title`: syntax error: …``.
pub fn validate_template(template: &Value) -> Result<(), String> {
    validate(template).map_err(|e| e.to_string())
}

pub fn validate(template: &Value) -> Result<(), TemplateError> {
    if !matches!(template, Value::Object(_) | Value::Array(_)) {
        return Err(error("", "must be a JSON object or array"));
    }
    let size = serde_json::to_vec(template).map(|v| v.len()).unwrap_or(0);
    if size > MAX_TEMPLATE_BYTES {
        return Err(error(
            "",
            format!("is {size} bytes; at most {MAX_TEMPLATE_BYTES} are allowed"),
        ));
    }
    check(template, "")
}

/// Renders `template` with `vars` (an object of variables).
pub fn render(template: &Value, vars: &Value) -> Result<Value, TemplateError> {
    let context = Jinja::from(minijinja::value::Serde(vars));
    render_at(template, &context, "")
}

fn render_at(template: &Value, context: &Jinja, path: &str) -> Result<Value, TemplateError> {
    match template {
        Value::String(s) => match compile(s, path)? {
            Leaf::Literal => Ok(template.clone()),
            Leaf::Expression(e) => {
                let value = e
                    .eval(context.clone())
                    .map_err(|e| error(path, describe(&e)))?;
                if value.is_undefined() {
                    return Err(error(path, format!("`{s}` is undefined for this push")));
                }
                serde_json::to_value(&value)
                    .map_err(|e| error(path, format!("the value is not JSON: {e}")))
            }
            Leaf::Template(t) => t
                .render(context.clone())
                .map(Value::String)
                .map_err(|e| error(path, describe(&e))),
        },
        Value::Array(items) => items
            .iter()
            .enumerate()
            .map(|(i, item)| render_at(item, context, &format!("{path}[{i}]")))
            .collect::<Result<Vec<_>, _>>()
            .map(Value::Array),
        Value::Object(map) => map
            .iter()
            .map(|(k, v)| Ok((k.clone(), render_at(v, context, &child(path, k))?)))
            .collect::<Result<serde_json::Map<_, _>, _>>()
            .map(Value::Object),
        other => Ok(other.clone()),
    }
}

#[cfg(test)]
mod tests;

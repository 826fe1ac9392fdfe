//! Validation failures carry the path of the offending field (`events[2].sender.role`) so an
//! API client can point at it; they never carry the offending value, which may be a secret.

use std::fmt;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Invalid {
    pub path: String,
    pub message: String,
}

impl Invalid {
    pub fn new(path: impl Into<String>, message: impl Into<String>) -> Self {
        Self {
            path: path.into(),
            message: message.into(),
        }
    }

    /// Prefixes the path, so nested validators can report relative paths.
    pub fn within(mut self, prefix: &str) -> Self {
        self.path = join_path(prefix, &self.path);
        self
    }
}

impl fmt::Display for Invalid {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.path, self.message)
    }
}

impl std::error::Error for Invalid {}

pub fn join_path(prefix: &str, path: &str) -> String {
    match (prefix.is_empty(), path.is_empty()) {
        (true, _) => path.to_string(),
        (_, true) => prefix.to_string(),
        _ if path.starts_with('[') => format!("{prefix}{path}"),
        _ => format!("{prefix}.{path}"),
    }
}

/// Deserializes a JSON value, reporting failures with the path of the offending field.
pub fn from_value<T: serde::de::DeserializeOwned>(value: serde_json::Value) -> Result<T, Invalid> {
    serde_path_to_error::deserialize(value).map_err(|e| {
        let path = e.path().to_string();
        from_serde(&path, &e.into_inner().to_string())
    })
}

/// Builds an `Invalid` from a serde message and the path where it happened. serde reports a
/// missing or unknown field at its parent; the field itself is the useful path.
pub fn from_serde(path: &str, message: &str) -> Invalid {
    let path = if path == "." { "" } else { path };
    // serde_json appends " at line L column C"; the path already says where.
    let message = message
        .rfind(" at line ")
        .map_or(message, |i| &message[..i]);
    let named = ["missing field `", "unknown field `"]
        .iter()
        .find_map(|prefix| {
            let rest = message.strip_prefix(prefix)?;
            rest.split('`').next()
        });
    match named {
        // serde_path_to_error already ends the path with an unknown field's name.
        Some(field) if path != field && !path.ends_with(&format!(".{field}")) => {
            Invalid::new(join_path(path, field), message)
        }
        _ => Invalid::new(path, message),
    }
}

/// Checks a free-text field: a byte limit, and no NUL (which several stores and log pipelines
/// mishandle).
pub fn text(path: &str, value: &str, max_bytes: usize) -> Result<(), Invalid> {
    if value.len() > max_bytes {
        return Err(Invalid::new(
            path,
            format!("must be at most {max_bytes} bytes"),
        ));
    }
    if value.contains('\0') {
        return Err(Invalid::new(path, "must not contain NUL characters"));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use serde::Deserialize;
    use serde_json::json;

    use super::*;

    #[derive(Debug, Deserialize)]
    #[serde(deny_unknown_fields)]
    #[allow(dead_code)]
    struct Inner {
        role: String,
    }

    #[derive(Debug, Deserialize)]
    #[serde(deny_unknown_fields)]
    #[allow(dead_code)]
    struct Outer {
        items: Vec<Inner>,
    }

    #[test]
    fn paths_name_the_field_even_when_it_is_missing_or_unknown() {
        let err = from_value::<Outer>(json!({"items": [{"role": "a"}, {}]})).unwrap_err();
        assert_eq!(err.path, "items[1].role");
        let err = from_value::<Outer>(json!({"items": [{"role": "a", "colour": 1}]})).unwrap_err();
        assert_eq!(err.path, "items[0].colour");
        let err = from_value::<Outer>(json!({"items": [{"role": 5}]})).unwrap_err();
        assert_eq!(err.path, "items[0].role");
    }
}

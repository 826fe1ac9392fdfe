//! Path ids are validated like body ids; a bad one is a 422 naming the parameter.

use herald_engine::validate::Invalid;
use serde::de::DeserializeOwned;

use crate::error::ApiError;

pub fn parse_id<T: DeserializeOwned>(name: &str, value: String) -> Result<T, ApiError> {
    serde_json::from_value(serde_json::Value::String(value)).map_err(|e| {
        let message = e.to_string();
        ApiError::Validation(Invalid::new(name, message))
    })
}

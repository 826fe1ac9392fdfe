//! `POST /token`: the service account's assertion checked like Google does.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::Ordering;

use axum::extract::{Form, State};
use axum::http::{HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use serde_json::{Value, json};

use super::*;

pub(super) fn with_retry_after(mut response: Response, retry_after_s: Option<u64>) -> Response {
    if let Some(s) = retry_after_s {
        response.headers_mut().insert(
            "retry-after",
            HeaderValue::from_str(&s.to_string()).expect("digits"),
        );
    }
    response
}

pub(super) fn json_response(status: u16, body: &Value) -> Response {
    (
        StatusCode::from_u16(status).expect("status"),
        [("content-type", "application/json; charset=UTF-8")],
        body.to_string(),
    )
        .into_response()
}

pub(super) fn invalid_grant(why: &str) -> Response {
    json_response(
        400,
        &json!({"error": "invalid_grant", "error_description": why}),
    )
}

/// `POST /token`
pub(super) async fn token(
    State(shared): State<Arc<Shared>>,
    Form(form): Form<HashMap<String, String>>,
) -> Response {
    shared.fetches.fetch_add(1, Ordering::Relaxed);
    let latency = {
        let mut inner = shared.lock();
        if let Some(a) = form.get("assertion") {
            inner.assertions.push(a.clone());
        }
        inner.token_latency
    };
    if !latency.is_zero() {
        tokio::time::sleep(latency).await;
    }
    if form.get("grant_type").map(String::as_str) != Some(GRANT_TYPE) {
        return json_response(
            400,
            &json!({"error": "unsupported_grant_type", "error_description": "Invalid grant_type"}),
        );
    }
    let Some(assertion) = form.get("assertion") else {
        return invalid_grant("Missing required parameter: assertion");
    };
    if let Err(why) = check_assertion(&shared, assertion) {
        let mut inner = shared.lock();
        inner.rejections.push(Rejection {
            path: "/token".into(),
            status: 400,
            why: why.clone(),
        });
        drop(inner);
        return invalid_grant(&why);
    }
    let c = &shared.config;
    let access_token = format!("ya29.fake-{}", uuid::Uuid::new_v4().simple());
    let expires_at = c.clock.now() + time::Duration::seconds(c.expires_in as i64);
    shared.lock().issued.insert(
        access_token.clone(),
        Issued {
            expires_at,
            revoked: false,
        },
    );
    json_response(
        200,
        &json!({"access_token": access_token, "expires_in": c.expires_in, "token_type": "Bearer"}),
    )
}

pub(super) fn check_assertion(shared: &Shared, assertion: &str) -> Result<(), String> {
    let c = &shared.config;
    let header = jsonwebtoken::decode_header(assertion).map_err(|e| format!("not a JWT: {e}"))?;
    if header.alg != Algorithm::RS256 {
        return Err(format!("alg must be RS256, not {:?}", header.alg));
    }
    if let Some(kid) = &c.key_id
        && header.kid.as_deref() != Some(kid.as_str())
    {
        return Err("kid is not the service account's private_key_id".into());
    }
    let key = DecodingKey::from_rsa_pem(c.public_key_pem.as_bytes())
        .map_err(|e| format!("bad fake key: {e}"))?;
    let mut validation = Validation::new(Algorithm::RS256);
    validation.validate_exp = false;
    validation.leeway = 0;
    validation.set_audience(&[&shared.token_uri]);
    validation.set_issuer(&[&c.client_email]);
    validation.set_required_spec_claims(&["exp", "iat", "aud", "iss"]);
    let claims = jsonwebtoken::decode::<Value>(assertion, &key, &validation)
        .map_err(|e| format!("Invalid JWT: {e}"))?
        .claims;
    let scopes = claims["scope"].as_str().unwrap_or_default();
    if !scopes.split(' ').any(|s| s == SCOPE) {
        return Err(format!("scope must include {SCOPE}"));
    }
    let (Some(iat), Some(exp)) = (claims["iat"].as_i64(), claims["exp"].as_i64()) else {
        return Err("iat and exp must be integers".into());
    };
    let now = c.clock.now().unix_timestamp();
    if exp <= iat || exp - iat > 3600 {
        return Err("Invalid JWT: exp must be after iat and at most an hour later".into());
    }
    if iat > now + 60 {
        return Err("Invalid JWT: Token must be a short-lived token and in a reasonable timeframe (iat in the future)".into());
    }
    if exp <= now {
        return Err("Invalid JWT: Token must be a short-lived token and in a reasonable timeframe (expired)".into());
    }
    Ok(())
}

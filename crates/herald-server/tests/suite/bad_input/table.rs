//! The table machinery: a row is one bad request and the problem it must get; `refuse_all`
//! runs them all and fails once, listing every row that misbehaved.

use herald_testkit::TestHub;
use reqwest::{Method, StatusCode};
use serde_json::Value;

use super::*;

/// Which credential a row sends.
#[derive(Clone)]
pub(super) enum Cred {
    None,
    /// The default tenant's server key.
    Key,
    /// A client token for `alice` of the default tenant.
    Token,
    /// The operator key.
    Operator,
    /// This exact `Authorization` header value.
    Header(String),
}

/// The credentials a table runs with.
pub(super) struct Creds {
    pub(super) key: String,
    pub(super) token: String,
    pub(super) operator: Option<String>,
}

impl Creds {
    pub(super) async fn of(hub: &TestHub) -> Creds {
        Creds {
            key: hub.key.clone(),
            token: hub.token("alice").await,
            operator: None,
        }
    }

    pub(super) fn header(&self, cred: &Cred) -> Option<String> {
        match cred {
            Cred::None => None,
            Cred::Key => Some(format!("Bearer {}", self.key)),
            Cred::Token => Some(format!("Bearer {}", self.token)),
            Cred::Operator => Some(format!(
                "Bearer {}",
                self.operator.as_deref().unwrap_or(OPERATOR_KEY)
            )),
            Cred::Header(h) => Some(h.clone()),
        }
    }
}

/// `Bad::status` for rows that accept any 4xx.
pub(super) const ANY_4XX: u16 = 0;

/// One bad request and the problem it must get.
pub(super) struct Bad {
    pub(super) what: String,
    pub(super) method: Method,
    pub(super) path: String,
    pub(super) cred: Cred,
    pub(super) content_type: Option<String>,
    pub(super) body: Vec<u8>,
    pub(super) status: u16,
    pub(super) code: &'static str,
    /// For 422: `errors[0].path`.
    pub(super) field: Option<String>,
}

pub(super) fn bad(
    what: impl Into<String>,
    method: Method,
    path: impl Into<String>,
    cred: Cred,
) -> Bad {
    Bad {
        what: what.into(),
        method,
        path: path.into(),
        cred,
        content_type: None,
        body: vec![],
        status: 0,
        code: "",
        field: None,
    }
}

impl Bad {
    pub(super) fn json(self, body: Value) -> Self {
        self.raw("application/json", body.to_string())
    }

    pub(super) fn raw(mut self, content_type: &str, body: impl Into<Vec<u8>>) -> Self {
        self.content_type = Some(content_type.to_string());
        self.body = body.into();
        self
    }

    pub(super) fn is(mut self, status: u16, code: &'static str) -> Self {
        self.status = status;
        self.code = code;
        self
    }

    /// 422 `validation_failed` naming `field` (`""` = the body as a whole).
    pub(super) fn invalid(self, field: &str) -> Self {
        let mut row = self.is(422, "validation_failed");
        row.field = Some(field.to_string());
        row
    }

    /// Hostile input where any clear 4xx problem will do (e.g. 400 or 422), as long as it is not
    /// a 5xx, a crash or a success.
    pub(super) fn rejected(self) -> Self {
        self.is(ANY_4XX, "")
    }

    pub(super) fn malformed(self) -> Self {
        self.is(400, "malformed_request")
    }

    pub(super) fn unsupported(self) -> Self {
        self.is(415, "unsupported_media_type")
    }

    pub(super) fn too_large(self) -> Self {
        self.is(413, "payload_too_large")
    }

    pub(super) fn unauthorized(self) -> Self {
        self.is(401, "unauthorized")
    }

    pub(super) fn not_found(self) -> Self {
        self.is(404, "not_found")
    }

    pub(super) fn not_allowed(self) -> Self {
        self.is(405, "method_not_allowed")
    }
}

/// Runs every row; fails once at the end listing every row that was not refused as it should be.
pub(super) async fn refuse_all(hub: &TestHub, creds: &Creds, rows: Vec<Bad>) {
    assert!(!rows.is_empty());
    let mut failures = vec![];
    for row in &rows {
        if let Err(why) = check(hub, creds, row).await {
            failures.push(format!(
                "  - {} ({} {}): {why}",
                row.what,
                row.method,
                shorten(&row.path)
            ));
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {} bad requests were not refused as they should be:\n{}",
        failures.len(),
        rows.len(),
        failures.join("\n")
    );
}

/// Sends the row's request; `Err` says how the row was not refused as it should be.
async fn check(hub: &TestHub, creds: &Creds, row: &Bad) -> Result<(), String> {
    let auth = creds.header(&row.cred);
    let answer = send(hub, row, auth.as_deref()).await?;
    if answer.status.is_server_error() {
        return Err(format!("a server error for bad input; {}", answer.shown()));
    }
    let (expected_status, expected_code) = expected(row, &answer)?;
    check_problem(row, &answer, expected_status, expected_code)?;
    check_no_echo(&answer, auth.as_deref())
}

/// What came back for a row.
struct Answer {
    status: StatusCode,
    content_type: String,
    text: String,
    /// The body as JSON (`null` if it is not JSON).
    problem: Value,
}

impl Answer {
    fn shown(&self) -> String {
        format!(
            "got {} {} {}",
            self.status,
            self.content_type,
            shorten(&self.text)
        )
    }
}

async fn send(hub: &TestHub, row: &Bad, auth: Option<&str>) -> Result<Answer, String> {
    let mut request = hub.http.request(row.method.clone(), hub.url(&row.path));
    if let Some(auth) = auth {
        request = request.header("authorization", auth);
    }
    if let Some(content_type) = &row.content_type {
        request = request.header("content-type", content_type);
    }
    if !row.body.is_empty() {
        request = request.body(row.body.clone());
    }
    let response = request
        .send()
        .await
        .map_err(|e| format!("request failed: {e}"))?;
    let status = response.status();
    let content_type = response
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_string();
    let text = response
        .text()
        .await
        .map_err(|e| format!("body unreadable: {e}"))?;
    let problem: Value = serde_json::from_str(&text).unwrap_or(Value::Null);
    Ok(Answer {
        status,
        content_type,
        text,
        problem,
    })
}

/// The status and code the row expects (for `ANY_4XX`, the 4xx it got).
fn expected<'a>(row: &'a Bad, answer: &'a Answer) -> Result<(u16, &'a str), String> {
    if row.status != ANY_4XX {
        return Ok((row.status, row.code));
    }
    if !answer.status.is_client_error() {
        return Err(format!("expected a 4xx; {}", answer.shown()));
    }
    Ok((
        answer.status.as_u16(),
        answer.problem["code"].as_str().unwrap_or("(none)"),
    ))
}

/// The expected status, and a complete problem document with the expected code (and field).
fn check_problem(row: &Bad, answer: &Answer, status: u16, code: &str) -> Result<(), String> {
    let (problem, shown) = (&answer.problem, || answer.shown());
    if answer.status.as_u16() != status {
        return Err(format!("expected {status} {code}; {}", shown()));
    }
    if !answer.content_type.starts_with("application/problem+json") {
        return Err(format!("not application/problem+json; {}", shown()));
    }
    if problem["code"] != code {
        return Err(format!("expected code {code}; {}", shown()));
    }
    if problem["type"] != format!("urn:herald:problem:{code}")
        || problem["status"] != status
        || !problem["title"].is_string()
        || !problem["detail"].is_string()
    {
        return Err(format!(
            "incomplete problem document (type, title, status, detail); {}",
            shown()
        ));
    }
    if let Some(field) = &row.field
        && problem["errors"][0]["path"] != field.as_str()
    {
        return Err(format!("expected errors[0].path {field:?}; {}", shown()));
    }
    Ok(())
}

/// Neither a submitted secret nor the credential comes back.
fn check_no_echo(answer: &Answer, auth: Option<&str>) -> Result<(), String> {
    if answer.text.contains(MARKER) {
        return Err(format!(
            "the response echoes a submitted secret; {}",
            answer.shown()
        ));
    }
    if let Some(auth) = auth {
        let credential = auth.split_once(' ').map_or(auth, |(_, c)| c);
        if credential.len() >= 16 && answer.text.contains(credential) {
            return Err(format!(
                "the response echoes the credential; {}",
                answer.shown()
            ));
        }
    }
    Ok(())
}

pub(super) fn shorten(s: &str) -> String {
    if s.len() <= 300 {
        s.to_string()
    } else {
        format!("{}… ({} bytes)", &s[..s.floor_char_boundary(300)], s.len())
    }
}

/// A request outside a table, asserting a problem document; answers the problem.
pub(super) async fn problem(
    hub: &TestHub,
    method: Method,
    path: &str,
    auth: Option<&str>,
    body: Option<Value>,
    status: u16,
) -> Value {
    let mut request = hub.http.request(method.clone(), hub.url(path));
    if let Some(auth) = auth {
        request = request.bearer_auth(auth);
    }
    if let Some(body) = body {
        request = request.json(&body);
    }
    let response = request.send().await.expect("request sent");
    let got = response.status();
    let content_type = response
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_string();
    let text = response.text().await.expect("body");
    assert_eq!(got.as_u16(), status, "{method} {path}: {text}");
    assert!(
        content_type.starts_with("application/problem+json"),
        "{method} {path}: content-type {content_type}"
    );
    serde_json::from_str(&text).expect("a problem document is JSON")
}

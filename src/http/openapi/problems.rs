//! What the document says about problem answers: the known `type` values, and per status an
//! example of each kind an operation can answer, so a reader (and a mock server) sees the body
//! that really comes back instead of one validation example under every status.

use serde_json::{Value, json};

const REQUEST_ID: &str = "01938f6e5c2a7b3e8f4d2a1b0c9d8e7f";

/// Every `type` the API answers, with its status and title.
pub const KNOWN: &[(&str, u16, &str)] = &[
    ("/problems/malformed-json", 400, "Request body is not valid JSON"),
    ("/problems/invalid-parameter", 400, "Query parameters are invalid"),
    ("/problems/invalid-header", 400, "A request header is invalid"),
    ("/problems/bad-request", 400, "The request cannot be served"),
    ("/problems/unauthorized", 401, "Authentication required"),
    ("/problems/invalid-token", 401, "Invalid token"),
    ("/problems/invalid-credentials", 401, "Invalid email or password"),
    ("/problems/forbidden", 403, "Not allowed"),
    ("/problems/not-found", 404, "Resource not found"),
    ("/problems/method-not-allowed", 405, "Method not allowed"),
    ("/problems/timeout", 408, "The request took too long"),
    ("/problems/job-finished", 409, "The job has finished"),
    ("/problems/job-not-finished", 409, "The job has not finished"),
    ("/problems/gone", 410, "No longer available"),
    ("/problems/import-rejected", 422, "The import file was refused"),
    (
        "/problems/duplicate-sku",
        409,
        "Another product already has this sku",
    ),
    (
        "/problems/duplicate-email",
        409,
        "An account with this email exists",
    ),
    (
        "/problems/last-admin",
        409,
        "The last admin cannot be demoted or disabled",
    ),
    ("/problems/insufficient-stock", 409, "Not enough stock"),
    ("/problems/stock-limit", 409, "Stock limit reached"),
    (
        "/problems/idempotency-key-in-use",
        409,
        "A request with this Idempotency-Key is still running",
    ),
    (
        "/problems/precondition-failed",
        412,
        "The resource has changed since you read it",
    ),
    ("/problems/payload-too-large", 413, "Request body is too large"),
    (
        "/problems/unsupported-media-type",
        415,
        "Unsupported content type",
    ),
    ("/problems/validation", 422, "Request body is invalid"),
    (
        "/problems/idempotency-key-reused",
        422,
        "This Idempotency-Key was used for a different request",
    ),
    ("/problems/too-many-requests", 429, "Too many requests"),
    (
        "/problems/idempotency-key-limit",
        429,
        "Too many live Idempotency-Keys",
    ),
    ("/problems/internal", 500, "Internal server error"),
    (
        "/problems/unavailable",
        503,
        "A dependency is unavailable; try again shortly",
    ),
    (
        "/problems/overloaded",
        503,
        "The server is busy; try again shortly",
    ),
];

/// The description of `Problem.type`: every known value, grouped by status.
pub fn type_description() -> String {
    let mut text = String::from(
        "A stable relative URI per kind of problem; branch on it, not on `title` or `detail`. \
         Known values (new ones may be added, so keep a default branch):",
    );
    for (kind, status, title) in KNOWN {
        text.push_str(&format!("\n- `{kind}` ({status}): {title}"));
    }
    text
}

/// The known values, for `examples` on `Problem.type`.
pub fn type_values() -> Value {
    Value::from(KNOWN.iter().map(|(kind, _, _)| *kind).collect::<Vec<_>>())
}

/// A problem body of `kind` as the server writes it.
fn body(kind: &str, detail: Option<&str>, errors: Value) -> Value {
    let (status, title) = KNOWN
        .iter()
        .find(|(known, _, _)| *known == kind)
        .map_or((500, "Internal server error"), |(_, status, title)| {
            (*status, *title)
        });
    let mut body = json!({"type": kind, "title": title, "status": status});
    if let Some(detail) = detail {
        body["detail"] = json!(detail);
    }
    if errors.as_array().is_some_and(|e| !e.is_empty()) {
        body["errors"] = errors;
    }
    body["request_id"] = json!(REQUEST_ID);
    body
}

/// What an operation is, as far as its problem examples go.
pub struct Operation<'a> {
    pub path: &'a str,
    pub method: &'a str,
    pub has_body: bool,
    pub keyed: bool,
}

/// The examples of `status` for `op`, each named after the last segment of its `type`.
pub fn examples(status: u16, op: &Operation) -> Vec<Value> {
    let product = op.path.starts_with("/api/v1/products");
    let adjustment = op.path.ends_with("/stock-adjustments");
    let listing = op.method == "get";
    let mut out = Vec::new();
    let mut add = |kind: &str, detail: Option<&str>, errors: Value| out.push(body(kind, detail, errors));
    match status {
        400 => {
            if op.has_body {
                add(
                    "/problems/malformed-json",
                    Some("expected `,` or `}` at line 1 column 18"),
                    json!([]),
                );
            }
            if listing {
                add(
                    "/problems/invalid-parameter",
                    Some("1 field is invalid"),
                    json!([{"field": "per_page", "code": "out_of_range", "message": "must be an integer from 1 to 100"}]),
                );
            }
            if op.keyed {
                add(
                    "/problems/invalid-header",
                    Some("1 field is invalid"),
                    json!([{"field": "Idempotency-Key", "code": "invalid_idempotency_key", "message": "must be 1 to 255 printable ASCII characters"}]),
                );
            }
        }
        401 => {
            if op.path == "/api/v1/auth/login" {
                add("/problems/invalid-credentials", None, json!([]));
            } else if op.path == "/api/v1/auth/refresh" {
                add(
                    "/problems/invalid-token",
                    Some("the token is malformed, expired or revoked"),
                    json!([]),
                );
            } else {
                add(
                    "/problems/unauthorized",
                    Some("send Authorization: Bearer <access token>"),
                    json!([]),
                );
                add(
                    "/problems/invalid-token",
                    Some("the token is malformed, expired or revoked"),
                    json!([]),
                );
            }
        }
        403 => add(
            "/problems/forbidden",
            Some("your role does not allow this operation"),
            json!([]),
        ),
        404 => add("/problems/not-found", None, json!([])),
        409 => {
            if adjustment {
                add(
                    "/problems/insufficient-stock",
                    Some("the adjustment would take the stock below zero; nothing changed"),
                    json!([]),
                );
                add(
                    "/problems/stock-limit",
                    Some("the adjustment would take the stock above 2147483647; nothing changed"),
                    json!([]),
                );
            } else if product {
                add(
                    "/problems/duplicate-sku",
                    Some("sku is already used by another product (compared case-insensitively)"),
                    json!([{"field": "sku", "code": "taken", "message": "already used by another product"}]),
                );
            } else if op.path == "/api/v1/auth/register" {
                add(
                    "/problems/duplicate-email",
                    None,
                    json!([{"field": "email", "code": "taken", "message": "already registered"}]),
                );
            } else if op.path.ends_with("/cancel") {
                add(
                    "/problems/job-finished",
                    Some("a finished job cannot be cancelled"),
                    json!([]),
                );
            } else if op.path.ends_with("/file") {
                add(
                    "/problems/job-not-finished",
                    Some("the file is served once the export has succeeded"),
                    json!([]),
                );
            } else if op.path.starts_with("/api/v1/users") {
                add(
                    "/problems/last-admin",
                    Some("make another user admin first"),
                    json!([]),
                );
            }
            if op.keyed {
                add(
                    "/problems/idempotency-key-in-use",
                    Some("retry once the first request has finished"),
                    json!([]),
                );
            }
        }
        410 => add("/problems/gone", Some("the export's file has expired"), json!([])),
        412 => add(
            "/problems/precondition-failed",
            Some("If-Match does not match the current ETag; fetch the resource again"),
            json!([]),
        ),
        413 => add("/problems/payload-too-large", None, json!([])),
        415 => add(
            "/problems/unsupported-media-type",
            Some("send the body as application/json"),
            json!([]),
        ),
        422 => {
            let error = if adjustment {
                json!({"field": "delta", "code": "zero", "message": "must not be zero"})
            } else if product {
                json!({"field": "price", "code": "too_many_decimals", "message": "at most 2 decimal places"})
            } else if op.path.starts_with("/api/v1/users") {
                json!({"field": "role", "code": "invalid_role", "message": "must be admin, staff or customer"})
            } else if op.path == "/api/v1/auth/register" {
                json!({"field": "password", "code": "too_short", "message": "must be at least 8 characters"})
            } else {
                json!({"field": "password", "code": "required", "message": "is required"})
            };
            if op.path == "/api/v1/imports" {
                add(
                    "/problems/import-rejected",
                    Some("1 field is invalid"),
                    json!([{"field": "colour", "code": "unknown_column", "message": "unknown column `colour`"}]),
                );
            } else {
                add("/problems/validation", Some("1 field is invalid"), json!([error]));
            }
            if op.keyed {
                add(
                    "/problems/idempotency-key-reused",
                    Some("a key may only be reused with the same method, path and body"),
                    json!([]),
                );
            }
        }
        429 => {
            if op.path.starts_with("/api/v1/auth/") {
                add(
                    "/problems/too-many-requests",
                    Some("too many attempts; retry in 840 s"),
                    json!([]),
                );
            }
            if op.keyed {
                add(
                    "/problems/idempotency-key-limit",
                    Some(
                        "a caller holds at most 10000 keys for 24 h; the oldest expires in 3600 s (requests without a key are served meanwhile)",
                    ),
                    json!([]),
                );
            }
        }
        500 => add("/problems/internal", None, json!([])),
        503 => {
            add("/problems/unavailable", None, json!([]));
            let hashing = matches!(op.path, "/api/v1/auth/login" | "/api/v1/auth/register");
            if hashing || (product && listing && !adjustment && !op.path.contains('{')) {
                add(
                    "/problems/overloaded",
                    Some("too many requests of this kind are running at once"),
                    json!([]),
                );
            }
        }
        _ => {}
    }
    out
}

/// `examples` for a media type: each body under the last segment of its `type`.
pub fn media_examples(bodies: &[Value]) -> Value {
    let mut map = serde_json::Map::new();
    for body in bodies {
        let kind = body["type"].as_str().unwrap_or("problem");
        let name = kind.rsplit('/').next().unwrap_or(kind);
        map.insert(name.to_owned(), json!({"summary": body["title"], "value": body}));
    }
    Value::Object(map)
}

//! Abuse tests (issue 11): each reproduces an attack that worked against the server before and
//! shows that it fails now. Bounds on time and memory are generous, far from the broken
//! behaviour, so a loaded CI machine does not flake.

mod connections;
mod logins;
mod resources;
mod sessions;

use reqwest::Method;
use serde_json::Value;

use crate::helpers::*;

/// POSTs JSON without credentials.
async fn post(app: &TestApp, path: &str, body: &Value) -> reqwest::Response {
    app.anonymous(Method::POST, path).json(body).send().await.unwrap()
}

/// The `Retry-After` of a response, in seconds; panics when it is missing.
fn retry_after(response: &reqwest::Response) -> u64 {
    response.headers()["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap()
}

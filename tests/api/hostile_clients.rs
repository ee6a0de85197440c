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

/// Runs a test body on SQLite and on PostgreSQL, each app spawned with `settings`.
macro_rules! on_both_backends {
    ($(
        $(#[$meta:meta])*
        async fn $name:ident($app:ident) with $settings:expr => $body:block
    )*) => {$(
        $(#[$meta])*
        mod $name {
            #[allow(unused_imports)]
            use super::*;

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn sqlite() {
                let $app = $crate::helpers::TestApp::spawn_with($crate::helpers::Backend::Sqlite, $settings)
                    .await
                    .unwrap();
                $body
            }

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn postgres() {
                let Some($app) =
                    $crate::helpers::TestApp::spawn_with($crate::helpers::Backend::Postgres, $settings).await
                else {
                    return;
                };
                $body
            }
        }
    )*};
}
use on_both_backends;

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

//! The OpenAPI document: served, complete, and identical to the reviewed copy in docs/.

use reqwest::{Method, StatusCode};
use serde_json::Value;

use crate::helpers::*;

const COMMITTED: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/docs/openapi.json");

#[tokio::test]
async fn the_served_spec_matches_the_committed_copy() {
    let app = TestApp::spawn(Backend::Sqlite).await.unwrap();
    let response = app.anonymous(Method::GET, "/openapi.json").send().await.unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let served: Value = response.json().await.unwrap();
    let pretty = serde_json::to_string_pretty(&served).unwrap() + "\n";
    if std::env::var("UPDATE_OPENAPI").is_ok() {
        std::fs::write(COMMITTED, &pretty).unwrap();
    }
    let committed = std::fs::read_to_string(COMMITTED).unwrap_or_default();
    assert!(
        committed == pretty,
        "the generated OpenAPI differs from docs/openapi.json: review the change, then run \
         `UPDATE_OPENAPI=1 cargo test --test api openapi` and commit the file"
    );
}

#[tokio::test]
async fn the_spec_is_openapi_3_1_and_every_operation_in_it_is_served() {
    let app = TestApp::spawn(Backend::Sqlite).await.unwrap();
    let spec: Value = app.anonymous_json("/openapi.json").await;
    assert_eq!(spec["openapi"], "3.1.0");
    // The spec is built from the route table, so it is the list of routes: each documented
    // operation must be served (answered by its handler, not by the 404 fallback or a 405).
    let product = app
        .create_product(serde_json::json!({"name": "Routed", "price": "1.00", "stock": 1}))
        .await;
    let id = product["id"].as_i64().unwrap().to_string();
    let mut documented = 0;
    for (path, item) in spec["paths"].as_object().unwrap() {
        for method in item.as_object().unwrap().keys() {
            let method = Method::from_bytes(method.to_uppercase().as_bytes()).unwrap();
            let response = app
                .anonymous(method.clone(), &path.replace("{id}", &id))
                .send()
                .await
                .unwrap();
            let status = response.status();
            assert!(
                status != StatusCode::NOT_FOUND && status != StatusCode::METHOD_NOT_ALLOWED,
                "{method} {path} is documented but answers {status}"
            );
            documented += 1;
        }
    }
    assert!(documented > 0, "the spec documents no operation");
    // Every write needs the bearer scheme; every operation documents its problems.
    assert_eq!(
        spec["components"]["securitySchemes"]["bearer"]["scheme"],
        "bearer"
    );
    let post = &spec["paths"]["/api/v1/products"]["post"];
    assert_eq!(post["security"], serde_json::json!([{"bearer": []}]));
    for status in ["400", "401", "403", "409", "413", "415", "422", "500"] {
        let response = &post["responses"][status];
        assert!(
            response["content"]["application/problem+json"].is_object(),
            "{status}"
        );
    }
    let list = &spec["paths"]["/api/v1/products"]["get"]["parameters"];
    let per_page = list
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["name"] == "per_page")
        .unwrap();
    assert_eq!(
        (
            per_page["schema"]["minimum"].as_i64(),
            per_page["schema"]["maximum"].as_i64()
        ),
        (Some(1), Some(100))
    );
}

#[tokio::test]
async fn swagger_ui_is_served_from_the_binary() {
    let app = TestApp::spawn(Backend::Sqlite).await.unwrap();
    let response = app.anonymous(Method::GET, "/docs/").send().await.unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let html = response.text().await.unwrap();
    assert!(html.contains("swagger-ui"), "{html}");
    // Its assets come from us, not from a CDN.
    assert!(!html.contains("https://"), "{html}");
    let config = app
        .anonymous(Method::GET, "/docs/swagger-initializer.js")
        .send()
        .await
        .unwrap();
    assert_eq!(config.status(), StatusCode::OK);
    assert!(config.text().await.unwrap().contains("/openapi.json"));
}

/// Swagger UI rendered by a real headless Chromium that may reach nothing but our server: every
/// operation's path is in the DOM, nothing breaks the page's Content-Security-Policy, and a
/// screenshot is kept under the build output.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn swagger_ui_renders_every_operation_in_headless_chromium() {
    let chromium = std::path::Path::new("/usr/bin/chromium");
    if !chromium.exists() {
        use std::io::Write;
        let _ = writeln!(
            std::io::stderr(),
            "\n*** WARNING: /usr/bin/chromium is missing: the browser check of /docs is SKIPPED (apt-get install chromium) ***\n"
        );
        return;
    }
    let app = TestApp::spawn(Backend::Sqlite).await.unwrap();
    let spec: Value = app.anonymous_json("/openapi.json").await;
    let url = app.url("/docs/");
    let profile = tempfile::tempdir().unwrap();
    let screenshot = std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join("docs-screenshot.png");
    let run = |extra: Vec<String>| {
        let mut args: Vec<String> = [
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--no-first-run",
            "--disable-quic",
            "--virtual-time-budget=15000",
            "--window-size=1280,1800",
            // The page's console goes to stderr: a CSP violation shows up there.
            "--enable-logging=stderr",
            "--v=0",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        args.push(format!("--user-data-dir={}", profile.path().display()));
        args.extend(extra);
        args.push(url.clone());
        tokio::task::spawn_blocking(move || std::process::Command::new(chromium).args(args).output())
    };
    let dom = run(vec!["--dump-dom".into()]).await.unwrap().unwrap();
    let console = String::from_utf8_lossy(&dom.stderr).into_owned();
    let dom = String::from_utf8_lossy(&dom.stdout).into_owned();
    // /docs sends a strict Content-Security-Policy; Swagger UI must render under it untouched.
    assert!(
        !console.contains("Content Security Policy") && !console.contains("Content-Security-Policy"),
        "a CSP violation on /docs: {console}"
    );
    for path in spec["paths"].as_object().unwrap().keys() {
        assert!(
            dom.contains(&format!("data-path=\"{path}\"")),
            "{path} is not listed by Swagger UI"
        );
    }
    assert!(dom.contains("Authorize"), "the Authorize button is missing");
    let shot = run(vec![format!("--screenshot={}", screenshot.display())])
        .await
        .unwrap()
        .unwrap();
    assert!(shot.status.success());
    assert!(
        std::fs::metadata(&screenshot).unwrap().len() > 10_000,
        "empty screenshot"
    );
}

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
    // A token pasted or fetched by the viewer's password login; public reads need none.
    assert_eq!(
        post["security"],
        serde_json::json!([{"bearer": []}, {"login": []}])
    );
    let read = &spec["paths"]["/api/v1/products/{id}"]["get"];
    assert_eq!(read["security"], serde_json::json!([]));
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

/// Chromium, or `None` after a loud warning that `what` is skipped (a CI run fails instead:
/// `environment::the_browser_checks_run_in_ci`).
fn chromium_for(what: &str) -> Option<&'static std::path::Path> {
    let chromium = std::path::Path::new("/usr/bin/chromium");
    if chromium.exists() {
        return Some(chromium);
    }
    use std::io::Write;
    let _ = writeln!(
        std::io::stderr(),
        "\n*** WARNING: /usr/bin/chromium is missing: {what} is SKIPPED (apt-get install chromium) ***\n"
    );
    None
}

/// Swagger UI rendered by a real headless Chromium that may reach nothing but our server: every
/// operation's path is in the DOM, nothing breaks the page's Content-Security-Policy, and a
/// screenshot is kept under the build output.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn swagger_ui_renders_every_operation_in_headless_chromium() {
    let Some(chromium) = chromium_for("the browser check of /docs") else {
        return;
    };
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

/// Logging in from Swagger UI's Authorize dialog, in a real headless Chromium driven over the
/// DevTools protocol: the dialog offers the password flow, takes the admin's email and password,
/// posts them to the login endpoint, and the token it keeps opens a protected operation.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_authorize_dialog_logs_in_with_email_and_password_in_headless_chromium() {
    let Some(chromium) = chromium_for("the Authorize check of /docs") else {
        return;
    };
    let app = TestApp::spawn(Backend::Sqlite).await.unwrap();
    let docs = app.url("/docs/");
    let script = LOGIN_SCRIPT
        .replace("EMAIL", &serde_json::to_string(ADMIN_EMAIL).unwrap())
        .replace("PASSWORD", &serde_json::to_string(ADMIN_PASSWORD).unwrap());
    // The browser and the protocol are driven with blocking I/O on their own thread; the server
    // keeps running on the runtime's other worker.
    let outcome = tokio::task::spawn_blocking(move || {
        let profile = tempfile::tempdir().unwrap();
        let mut browser = cdp::Browser::launch(chromium, profile.path());
        let target = browser.open(&docs);
        let mut page = cdp::Session::connect(&target);
        // The tab starts on about:blank: wait until /docs has loaded, or the script would run in
        // a page that is going away.
        let loaded = "document.readyState === 'complete' && location.pathname === '/docs/'";
        for _ in 0..150 {
            let state = page.call("Runtime.evaluate", serde_json::json!({"expression": loaded}));
            if state["result"]["result"]["value"] == true {
                break;
            }
            std::thread::sleep(std::time::Duration::from_millis(100));
        }
        let answer = page.call(
            "Runtime.evaluate",
            serde_json::json!({"expression": script, "awaitPromise": true, "returnByValue": true}),
        );
        browser.close();
        answer
    })
    .await
    .unwrap();
    let result = &outcome["result"]["result"]["value"];
    assert!(result.is_object(), "the script failed: {outcome}");
    assert_eq!(result["token_url"], "/api/v1/auth/login", "{result}");
    assert_eq!(result["dialog_says_authorized"], true, "{result}");
    assert_eq!(result["token_type"], "Bearer", "{result}");
    assert_eq!(result["me"], ADMIN_EMAIL, "{result}");
}

/// Clicks through Swagger UI as a person would: Authorize, the password flow's username and
/// password, Authorize again; then reads what Swagger UI kept and uses it on `/auth/me`.
const LOGIN_SCRIPT: &str = r#"(async () => {
  const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
  const until = async (find, what) => {
    for (let i = 0; i < 150; i++) { const found = find(); if (found) return found; await sleep(100); }
    throw new Error('timed out waiting for ' + what);
  };
  const type = (input, value) => {
    Object.getOwnPropertyDescriptor(HTMLInputElement.prototype, 'value').set.call(input, value);
    input.dispatchEvent(new Event('input', { bubbles: true }));
    input.dispatchEvent(new Event('change', { bubbles: true }));
  };
  (await until(() => document.querySelector('.auth-wrapper .btn.authorize'), 'the Authorize button')).click();
  const username = await until(() => document.querySelector('#oauth_username'), 'the username field');
  const dialog = username.closest('.auth-container');
  const tokenUrl = dialog.querySelector('code') ? dialog.querySelector('code').innerText.trim() : null;
  type(username, EMAIL);
  type(dialog.querySelector('#oauth_password'), PASSWORD);
  dialog.querySelector('.btn.modal-btn.auth.authorize').click();
  await until(() => /Authorized/.test(dialog.innerText) || dialog.querySelector('.errors'), 'the answer');
  const kept = window.ui.authSelectors.authorized().toJS();
  const token = kept.login && kept.login.token ? kept.login.token : {};
  const me = await fetch('/api/v1/auth/me', { headers: { Authorization: 'Bearer ' + token.access_token } })
    .then((r) => r.ok ? r.json() : { email: 'HTTP ' + r.status });
  return {
    token_url: tokenUrl,
    dialog_says_authorized: /Authorized/.test(dialog.innerText),
    errors: dialog.querySelector('.errors') ? dialog.querySelector('.errors').innerText : null,
    token_type: token.token_type,
    me: me.email,
  };
})()"#;

/// Just enough of the DevTools protocol over a WebSocket (RFC 6455: text frames, client frames
/// masked, no extensions) to evaluate a script in a page.
mod cdp {
    use std::io::{BufRead, BufReader, Read, Write};
    use std::net::TcpStream;
    use std::process::{Child, Command, Stdio};

    use serde_json::{Value, json};

    pub struct Browser {
        child: Child,
        devtools: String,
    }

    impl Browser {
        pub fn launch(chromium: &std::path::Path, profile: &std::path::Path) -> Browser {
            let mut child = Command::new(chromium)
                .args([
                    "--headless",
                    "--no-sandbox",
                    "--disable-gpu",
                    "--disable-background-networking",
                    "--disable-component-update",
                    "--disable-sync",
                    "--no-first-run",
                    "--remote-debugging-address=127.0.0.1",
                    "--remote-debugging-port=0",
                    &format!("--user-data-dir={}", profile.display()),
                    "about:blank",
                ])
                .stdout(Stdio::null())
                .stderr(Stdio::piped())
                .spawn()
                .unwrap();
            // Chromium names its DevTools address on stderr; the rest of stderr is drained so
            // the browser never blocks on a full pipe.
            let mut lines = BufReader::new(child.stderr.take().unwrap()).lines();
            let devtools = loop {
                let line = lines
                    .next()
                    .expect("chromium exited without a DevTools address")
                    .unwrap();
                if let Some(at) = line.find("ws://") {
                    break line[at + 5..].split('/').next().unwrap().to_owned();
                }
            };
            std::thread::spawn(move || lines.for_each(drop));
            Browser { child, devtools }
        }

        /// Opens `url` in a new tab: its DevTools WebSocket URL.
        pub fn open(&self, url: &str) -> String {
            let mut stream = TcpStream::connect(&self.devtools).unwrap();
            stream
                .set_read_timeout(Some(std::time::Duration::from_secs(30)))
                .unwrap();
            let request = format!(
                "PUT /json/new?{url} HTTP/1.1\r\nHost: {}\r\nContent-Length: 0\r\n\r\n",
                self.devtools
            );
            stream.write_all(request.as_bytes()).unwrap();
            // The DevTools server keeps the connection open: read the head, then Content-Length.
            let mut reader = BufReader::new(stream);
            let mut length = 0;
            loop {
                let mut line = String::new();
                reader.read_line(&mut line).unwrap();
                let line = line.trim_end();
                if line.is_empty() {
                    break;
                }
                if let Some((name, value)) = line.split_once(':')
                    && name.eq_ignore_ascii_case("content-length")
                {
                    length = value.trim().parse().unwrap();
                }
            }
            let mut body = vec![0u8; length];
            reader.read_exact(&mut body).unwrap();
            let target: Value = serde_json::from_slice(&body).unwrap();
            target["webSocketDebuggerUrl"].as_str().unwrap().to_owned()
        }

        pub fn close(&mut self) {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }

    pub struct Session {
        stream: TcpStream,
        next_id: u64,
    }

    impl Session {
        pub fn connect(url: &str) -> Session {
            let rest = url.strip_prefix("ws://").unwrap();
            let (host, path) = rest.split_at(rest.find('/').unwrap());
            let mut stream = TcpStream::connect(host).unwrap();
            stream
                .set_read_timeout(Some(std::time::Duration::from_secs(60)))
                .unwrap();
            let request = format!(
                "GET {path} HTTP/1.1\r\nHost: {host}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
                 Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n"
            );
            stream.write_all(request.as_bytes()).unwrap();
            let mut head = Vec::new();
            let mut byte = [0u8; 1];
            while !head.ends_with(b"\r\n\r\n") {
                stream.read_exact(&mut byte).unwrap();
                head.push(byte[0]);
            }
            let head = String::from_utf8_lossy(&head);
            assert!(head.starts_with("HTTP/1.1 101"), "{head}");
            Session { stream, next_id: 1 }
        }

        /// Sends a command and waits for its answer (events in between are skipped).
        pub fn call(&mut self, method: &str, params: Value) -> Value {
            let id = self.next_id;
            self.next_id += 1;
            let message = json!({"id": id, "method": method, "params": params}).to_string();
            self.send(message.as_bytes());
            loop {
                let answer: Value = serde_json::from_slice(&self.receive()).unwrap();
                if answer["id"] == id {
                    return answer;
                }
            }
        }

        fn send(&mut self, payload: &[u8]) {
            // A zero mask: masking is required of clients, and XOR with zeros keeps the bytes.
            let mut frame = vec![0x81u8];
            let len = payload.len();
            if len < 126 {
                frame.push(0x80 | len as u8);
            } else if len <= 0xffff {
                frame.push(0x80 | 126);
                frame.extend_from_slice(&(len as u16).to_be_bytes());
            } else {
                frame.push(0x80 | 127);
                frame.extend_from_slice(&(len as u64).to_be_bytes());
            }
            frame.extend_from_slice(&[0, 0, 0, 0]);
            frame.extend_from_slice(payload);
            self.stream.write_all(&frame).unwrap();
        }

        /// One whole message, its fragments joined.
        fn receive(&mut self) -> Vec<u8> {
            let mut message = Vec::new();
            loop {
                let mut head = [0u8; 2];
                self.stream.read_exact(&mut head).unwrap();
                let len = match head[1] & 0x7f {
                    126 => {
                        let mut n = [0u8; 2];
                        self.stream.read_exact(&mut n).unwrap();
                        u64::from(u16::from_be_bytes(n))
                    }
                    127 => {
                        let mut n = [0u8; 8];
                        self.stream.read_exact(&mut n).unwrap();
                        u64::from_be_bytes(n)
                    }
                    n => u64::from(n),
                };
                let mut payload = vec![0u8; len as usize];
                self.stream.read_exact(&mut payload).unwrap();
                message.extend_from_slice(&payload);
                if head[0] & 0x80 != 0 {
                    return message;
                }
            }
        }
    }
}

//! The staff console (`/admin`) over HTTP: sign-in and sign-out, who is refused, CSRF, the
//! Content-Security-Policy, and edit conflicts. The browser suite (`e2e/`) drives the same pages
//! in Chromium.

use reqwest::header::{HeaderMap, LOCATION, SET_COOKIE};
use reqwest::{Method, StatusCode};
use serde_json::json;

use crate::helpers::{ADMIN_EMAIL, ADMIN_PASSWORD, TestApp, product_body};

/// A browser's view of the console: its cookies, the last page's CSRF token, no redirects
/// followed (so each answer can be checked).
struct Console<'a> {
    app: &'a TestApp,
    client: reqwest::Client,
    cookies: Vec<(String, String)>,
    csrf: String,
}

struct Page {
    status: StatusCode,
    headers: HeaderMap,
    body: String,
}

/// The value of `attribute="…"` after `marker` in `html`.
fn attribute_after(html: &str, marker: &str, attribute: &str) -> Option<String> {
    let rest = &html[html.find(marker)? + marker.len()..];
    let start = rest.find(&format!("{attribute}=\""))? + attribute.len() + 2;
    let end = rest[start..].find('"')?;
    Some(rest[start..start + end].to_owned())
}

impl<'a> Console<'a> {
    fn new(app: &'a TestApp) -> Self {
        Console {
            app,
            client: reqwest::Client::builder()
                .no_proxy()
                .redirect(reqwest::redirect::Policy::none())
                .build()
                .unwrap(),
            cookies: Vec::new(),
            csrf: String::new(),
        }
    }

    fn cookie_header(&self) -> String {
        self.cookies
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect::<Vec<_>>()
            .join("; ")
    }

    async fn send(&mut self, request: reqwest::RequestBuilder) -> Page {
        let response = request
            .header("cookie", self.cookie_header())
            .send()
            .await
            .unwrap();
        let status = response.status();
        let headers = response.headers().clone();
        for value in headers.get_all(SET_COOKIE) {
            let text = value.to_str().unwrap();
            let (pair, _) = text.split_once(';').unwrap_or((text, ""));
            let (name, value) = pair.split_once('=').unwrap();
            self.cookies.retain(|(k, _)| k != name);
            if !value.is_empty() {
                self.cookies.push((name.to_owned(), value.to_owned()));
            }
        }
        let body = response.text().await.unwrap();
        // An error page has no session token: keep the one the last real page had.
        if let Some(token) = attribute_after(&body, "<meta name=\"csrf-token\"", "content")
            && !token.is_empty()
        {
            self.csrf = token;
        }
        Page {
            status,
            headers,
            body,
        }
    }

    async fn get(&mut self, path: &str) -> Page {
        let request = self.client.get(self.app.url(path));
        self.send(request).await
    }

    /// Posts `fields` as a form, with the CSRF token of the last page unless `csrf` is false.
    async fn post(&mut self, path: &str, fields: &[(&str, &str)], csrf: bool) -> Page {
        let mut form: Vec<(String, String)> = fields
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        if csrf {
            form.push(("_csrf".into(), self.csrf.clone()));
        }
        let request = self
            .client
            .post(self.app.url(path))
            .header("content-type", "application/x-www-form-urlencoded")
            .body(serde_urlencoded::to_string(&form).unwrap());
        self.send(request).await
    }

    /// Posts `body` raw (an import's file, as the console's script sends it), with `token` as
    /// the `X-CSRF-Token` header when given.
    async fn upload(&mut self, path: &str, body: &str, token: Option<&str>) -> Page {
        let mut request = self
            .client
            .post(self.app.url(path))
            .header("content-type", "text/csv")
            .body(body.to_owned());
        if let Some(token) = token {
            request = request.header("x-csrf-token", token);
        }
        self.send(request).await
    }

    async fn sign_in(&mut self, email: &str, password: &str) -> Page {
        let form = self.get("/admin/sign-in").await;
        assert_eq!(form.status, StatusCode::OK);
        self.post(
            "/admin/sign-in",
            &[("email", email), ("password", password)],
            true,
        )
        .await
    }
}

fn location(page: &Page) -> &str {
    page.headers.get(LOCATION).map_or("", |v| v.to_str().unwrap())
}

both_backends! {
    async fn staff_sign_in_sets_a_strict_http_only_cookie_and_sign_out_revokes_the_session(app) {
        let mut console = Console::new(&app);
        let signed_in = console.sign_in(ADMIN_EMAIL, ADMIN_PASSWORD).await;
        assert_eq!(signed_in.status, StatusCode::SEE_OTHER);
        assert_eq!(location(&signed_in), "/admin/products");
        let cookie = signed_in
            .headers
            .get_all(SET_COOKIE)
            .iter()
            .map(|v| v.to_str().unwrap().to_owned())
            .find(|v| v.starts_with("tienda_admin="))
            .expect("a session cookie");
        for attribute in ["HttpOnly", "SameSite=Strict", "Path=/admin"] {
            assert!(cookie.contains(attribute), "{cookie} lacks {attribute}");
        }
        assert!(!cookie.contains("Secure"), "plain HTTP in development: {cookie}");
        let stolen = console.cookies.clone();

        let list = console.get("/admin/products").await;
        assert_eq!(list.status, StatusCode::OK);
        assert!(list.body.contains(ADMIN_EMAIL), "the page names who is signed in");

        let out = console.post("/admin/sign-out", &[], true).await;
        assert_eq!(out.status, StatusCode::SEE_OTHER);
        assert_eq!(location(&out), "/admin/sign-in");
        // The old cookie replayed after sign-out opens nothing: the session row is revoked.
        console.cookies = stolen;
        let after = console.get("/admin/products").await;
        assert_eq!(after.status, StatusCode::SEE_OTHER);
        assert_eq!(location(&after), "/admin/sign-in");
    }

    async fn production_session_cookies_are_secure(app) with &[("TIENDA_ENV", "production"), ("TIENDA_JWT_SECRET", "a-production-secret-of-at-least-32-bytes!")] => {
        let mut console = Console::new(&app);
        let signed_in = console.sign_in(ADMIN_EMAIL, ADMIN_PASSWORD).await;
        assert_eq!(signed_in.status, StatusCode::SEE_OTHER);
        let cookie = signed_in.headers.get_all(SET_COOKIE).iter()
            .map(|v| v.to_str().unwrap().to_owned())
            .find(|v| v.starts_with("tienda_admin=")).unwrap();
        assert!(cookie.contains("; Secure"), "{cookie}");
    }

    async fn a_customer_is_refused_a_console_session(app) {
        app.user_token("shopper@tienda.test", "customer").await;
        let mut console = Console::new(&app);
        let refused = console.sign_in("shopper@tienda.test", "user-password-1").await;
        assert_eq!(refused.status, StatusCode::FORBIDDEN);
        assert!(refused.body.contains("staff and admin accounts only"));
        assert!(!console.cookies.iter().any(|(k, _)| k == "tienda_admin"), "no session cookie");
        let list = console.get("/admin/products").await;
        assert_eq!(list.status, StatusCode::SEE_OTHER);
        assert_eq!(location(&list), "/admin/sign-in");
    }

    async fn a_wrong_password_is_refused_without_a_session(app) {
        let mut console = Console::new(&app);
        let refused = console.sign_in(ADMIN_EMAIL, "not-the-password").await;
        assert_eq!(refused.status, StatusCode::UNAUTHORIZED);
        assert!(refused.body.contains("Wrong email or password"));
        assert!(!console.cookies.iter().any(|(k, _)| k == "tienda_admin"));
    }

    async fn console_sign_in_counts_against_the_same_login_throttle_as_the_api(app) {
        let mut console = Console::new(&app);
        for _ in 0..5 {
            let refused = console.sign_in(ADMIN_EMAIL, "not-the-password").await;
            assert_eq!(refused.status, StatusCode::UNAUTHORIZED);
        }
        let throttled = console.sign_in(ADMIN_EMAIL, ADMIN_PASSWORD).await;
        assert_eq!(throttled.status, StatusCode::TOO_MANY_REQUESTS);
        assert!(throttled.body.contains("Too many failed attempts"));
        assert!(!console.cookies.iter().any(|(k, _)| k == "tienda_admin"));
        // The API's login sees the console's failures: one throttle for both doors.
        let api = app
            .anonymous(Method::POST, "/api/v1/auth/login")
            .json(&json!({"email": ADMIN_EMAIL, "password": ADMIN_PASSWORD}))
            .send()
            .await
            .unwrap();
        assert_eq!(api.status(), StatusCode::TOO_MANY_REQUESTS);
    }

    async fn a_disabled_user_loses_the_console_at_once(app) {
        app.user_token("clerk@tienda.test", "staff").await;
        let mut console = Console::new(&app);
        assert_eq!(console.sign_in("clerk@tienda.test", "user-password-1").await.status, StatusCode::SEE_OTHER);
        assert_eq!(console.get("/admin/products").await.status, StatusCode::OK);
        let id = app.scalar("SELECT id FROM users WHERE email = 'clerk@tienda.test'").await;
        let response = app
            .send_json(Method::PATCH, &format!("/api/v1/users/{id}"), &json!({"disabled": true}))
            .await;
        assert_eq!(response.status(), StatusCode::OK);
        let after = console.get("/admin/products").await;
        assert_eq!(after.status, StatusCode::SEE_OTHER, "the session went with the account");
    }

    async fn a_post_without_the_sessions_csrf_token_is_refused_and_changes_nothing(app) {
        let mut console = Console::new(&app);
        console.sign_in(ADMIN_EMAIL, ADMIN_PASSWORD).await;
        console.get("/admin/products/new").await;
        let fields = [("name", "Mug"), ("price", "9.50"), ("stock", "3"), ("sku", ""), ("description", "")];
        let without = console.post("/admin/products", &fields, false).await;
        assert_eq!(without.status, StatusCode::FORBIDDEN);
        assert!(without.headers["content-type"].to_str().unwrap().starts_with("text/html"));
        let mut forged = fields.to_vec();
        forged.push(("_csrf", "forged-token"));
        let wrong = console.post("/admin/products", &forged, false).await;
        assert_eq!(wrong.status, StatusCode::FORBIDDEN);
        assert_eq!(app.product_count().await, 0, "nothing was created");

        let with = console.post("/admin/products", &fields, true).await;
        assert_eq!(with.status, StatusCode::SEE_OTHER);
        assert_eq!(app.product_count().await, 1);
    }

    async fn a_bad_price_is_shown_on_its_field_with_the_apis_message(app) {
        let mut console = Console::new(&app);
        console.sign_in(ADMIN_EMAIL, ADMIN_PASSWORD).await;
        console.get("/admin/products/new").await;
        let page = console
            .post("/admin/products", &[("name", "Mug"), ("price", "9.999"), ("stock", "3")], true)
            .await;
        assert_eq!(page.status, StatusCode::UNPROCESSABLE_ENTITY);
        let error = page.body.split("id=\"price-error\">").nth(1).unwrap_or("");
        assert!(error.starts_with("at most 2 decimal places"), "{error:.80}");
        assert!(page.body.contains("value=\"9.999\""), "what was typed is kept");
        assert_eq!(app.product_count().await, 0);
    }

    async fn console_pages_carry_a_strict_content_security_policy_and_no_inline_code(app) {
        let mut console = Console::new(&app);
        let mut pages = vec![console.get("/admin/sign-in").await];
        console.sign_in(ADMIN_EMAIL, ADMIN_PASSWORD).await;
        app.create_product(product_body(1)).await;
        for path in ["/admin/products", "/admin/products/new", "/admin/products/1", "/admin/users"] {
            let page = console.get(path).await;
            assert_eq!(page.status, StatusCode::OK, "{path}");
            pages.push(page);
        }
        for page in &pages {
            let csp = page.headers["content-security-policy"].to_str().unwrap();
            for directive in ["default-src 'self'", "script-src 'self'", "style-src 'self'", "frame-ancestors 'none'"] {
                assert!(csp.contains(directive), "{csp} lacks {directive}");
            }
            assert!(!csp.contains("unsafe"), "{csp}");
            assert_eq!(page.headers["cache-control"], "no-store");
            assert!(!page.body.contains("<script>"), "no inline script");
            assert!(!page.body.contains(" style="), "no inline style");
            assert!(!page.body.contains("<style"), "no style element");
        }
        let htmx = console.get("/admin/static/htmx.min.js").await;
        assert_eq!(htmx.status, StatusCode::OK);
        assert!(htmx.headers["cache-control"].to_str().unwrap().contains("immutable"));
        assert!(htmx.body.contains("htmx"));
    }

    async fn saving_with_a_stale_version_is_a_412_conflict_page_and_re_applying_saves(app) {
        let product = app.create_product(product_body(1)).await;
        let id = product["id"].as_i64().unwrap();
        let mut console = Console::new(&app);
        console.sign_in(ADMIN_EMAIL, ADMIN_PASSWORD).await;
        let form = console.get(&format!("/admin/products/{id}")).await;
        let version = attribute_after(&form.body, "id=\"version-field\"", "value").unwrap();
        let base = |name: &str| attribute_after(&form.body, &format!("name=\"base_{name}\""), "value").unwrap();
        let (base_name, base_sku, base_price) = (base("name"), base("sku"), base("price"));

        // Meanwhile someone renames it through the API.
        let renamed = app
            .send_json(Method::PATCH, &format!("/api/v1/products/{id}"), &json!({"name": "Renamed meanwhile"}))
            .await;
        assert_eq!(renamed.status(), StatusCode::OK);

        let mine = [
            ("version", version.as_str()),
            ("base_name", base_name.as_str()),
            ("base_sku", base_sku.as_str()),
            ("base_price", base_price.as_str()),
            ("base_description", ""),
            ("name", base_name.as_str()),
            ("sku", base_sku.as_str()),
            ("price", "77.70"),
            ("description", ""),
        ];
        let conflict = console.post(&format!("/admin/products/{id}"), &mine, true).await;
        assert_eq!(conflict.status, StatusCode::PRECONDITION_FAILED);
        assert!(conflict.body.contains("changed meanwhile"));
        assert!(conflict.body.contains("Renamed meanwhile"), "shows the current value");
        assert!(conflict.body.contains("77.70"), "keeps mine");
        assert_eq!(
            attribute_after(&conflict.body, "id=\"name\"", "value").unwrap(),
            "Renamed meanwhile",
            "the form holds their change where I changed nothing"
        );
        let stored = app.get_product(id).await;
        assert_eq!(stored["name"], "Renamed meanwhile");
        assert_ne!(stored["price"], "77.70", "nothing of mine was saved");

        // Re-apply: the conflict page's form is based on the current version.
        let current_version = attribute_after(&conflict.body, "id=\"version-field\"", "value").unwrap();
        assert_ne!(current_version, version);
        let mut again = mine.to_vec();
        again[0] = ("version", current_version.as_str());
        again[5] = ("name", "Renamed meanwhile");
        let saved = console.post(&format!("/admin/products/{id}"), &again, true).await;
        assert_eq!(saved.status, StatusCode::SEE_OTHER);
        let stored = app.get_product(id).await;
        assert_eq!(stored["price"], "77.70");
        assert_eq!(stored["name"], "Renamed meanwhile");
    }

    async fn a_stock_adjustment_writes_the_ledger_with_who_and_why(app) {
        let product = app.create_product(product_body(1)).await;
        let id = product["id"].as_i64().unwrap();
        let before = product["stock"].as_i64().unwrap();
        let mut console = Console::new(&app);
        console.sign_in(ADMIN_EMAIL, ADMIN_PASSWORD).await;
        console.get(&format!("/admin/products/{id}")).await;
        let missing_reason = console
            .post(&format!("/admin/products/{id}/stock"), &[("delta", "-1"), ("reason", " ")], true)
            .await;
        assert_eq!(missing_reason.status, StatusCode::UNPROCESSABLE_ENTITY);
        let adjusted = console
            .post(&format!("/admin/products/{id}/stock"), &[("delta", "-1"), ("reason", "broken in the shop")], true)
            .await;
        assert_eq!(adjusted.status, StatusCode::SEE_OTHER);
        let page = console.get(&format!("/admin/products/{id}")).await;
        assert!(page.body.contains("broken in the shop"));
        assert!(page.body.contains(ADMIN_EMAIL), "the ledger names who");
        assert_eq!(app.get_product(id).await["stock"].as_i64().unwrap(), before - 1);
        app.assert_stock_matches_ledger(id).await;
    }

    async fn the_consoles_import_export_and_cancel_refuse_a_post_without_the_csrf_token(app) {
        let mut console = Console::new(&app);
        console.sign_in(ADMIN_EMAIL, ADMIN_PASSWORD).await;
        console.get("/admin/imports").await;
        let csv = "sku,name,description,price,stock\nCSRF-1,Lamp,,9.50,1\n";
        let path = "/admin/imports?dry_run=true";
        assert_eq!(console.upload(path, csv, None).await.status, StatusCode::FORBIDDEN);
        assert_eq!(console.upload(path, csv, Some("forged-token")).await.status, StatusCode::FORBIDDEN);
        assert_eq!(app.scalar("SELECT COUNT(*) FROM jobs").await, 0, "no job was queued");
        assert_eq!(console.post("/admin/exports", &[("format", "csv")], false).await.status, StatusCode::FORBIDDEN);
        assert_eq!(app.scalar("SELECT COUNT(*) FROM jobs").await, 0, "no export was queued");

        let token = console.csrf.clone();
        let queued = console.upload(path, csv, Some(&token)).await;
        assert_eq!(queued.status, StatusCode::SEE_OTHER);
        let id = app.scalar("SELECT MAX(id) FROM jobs").await;
        assert_eq!(location(&queued), format!("/admin/jobs/{id}"));
        let cancel = format!("/admin/jobs/{id}/cancel");
        assert_eq!(console.post(&cancel, &[], false).await.status, StatusCode::FORBIDDEN);
        let cancelled = app
            .scalar(&format!("SELECT COUNT(*) FROM jobs WHERE id = {id} AND status = 'cancelled'"))
            .await;
        assert_eq!(cancelled, 0, "the job was not cancelled");
    }

    async fn a_console_upload_is_judged_by_the_apis_import_path(app) {
        let mut console = Console::new(&app);
        console.sign_in(ADMIN_EMAIL, ADMIN_PASSWORD).await;
        console.get("/admin/imports").await;
        let token = console.csrf.clone();
        let header = console.upload("/admin/imports", "sku,name,colour\nX,Y,red\n", Some(&token)).await;
        assert_eq!(header.status, StatusCode::UNPROCESSABLE_ENTITY, "{}", header.body);
        assert!(header.body.contains("id=\"upload-error\""), "{}", header.body);
        assert!(header.body.contains("colour"), "the column is named: {}", header.body);
        let query = console.upload("/admin/imports?on_error=maybe", "sku,name\n", Some(&token)).await;
        assert_eq!(query.status, StatusCode::BAD_REQUEST, "{}", query.body);
        assert!(query.body.contains("on_error: must be abort or skip"), "{}", query.body);
        assert_eq!(app.scalar("SELECT COUNT(*) FROM jobs").await, 0);
    }

    async fn a_customer_is_refused_the_jobs_pages_and_staff_see_them(app) {
        app.user_token("clerk@tienda.test", "staff").await;
        let mut clerk = Console::new(&app);
        assert_eq!(clerk.sign_in("clerk@tienda.test", "user-password-1").await.status, StatusCode::SEE_OTHER);
        for path in ["/admin/jobs", "/admin/imports"] {
            assert_eq!(clerk.get(path).await.status, StatusCode::OK, "{path}");
        }
        // The clerk becomes a customer: the session stays, the pages go.
        let id = app.scalar("SELECT id FROM users WHERE email = 'clerk@tienda.test'").await;
        let response = app
            .send_json(Method::PATCH, &format!("/api/v1/users/{id}"), &json!({"role": "customer"}))
            .await;
        assert_eq!(response.status(), StatusCode::OK);
        for path in ["/admin/jobs", "/admin/imports", "/admin/jobs/1"] {
            let page = clerk.get(path).await;
            assert!(
                matches!(page.status, StatusCode::FORBIDDEN | StatusCode::SEE_OTHER),
                "{path}: {}",
                page.status
            );
        }
    }

    async fn the_webhook_pages_refuse_staff_and_their_posts_need_the_csrf_token(app) {
        app.user_token("clerk@tienda.test", "staff").await;
        let mut clerk = Console::new(&app);
        assert_eq!(clerk.sign_in("clerk@tienda.test", "user-password-1").await.status, StatusCode::SEE_OTHER);
        assert_eq!(clerk.get("/admin/webhooks").await.status, StatusCode::FORBIDDEN);
        clerk.get("/admin/products").await;
        // A public address literal: no name to resolve, nothing private.
        let fields = [("url", "https://93.184.215.14/hook"), ("events", "product.created")];
        assert_eq!(clerk.post("/admin/webhooks", &fields, true).await.status, StatusCode::FORBIDDEN);
        assert_eq!(app.scalar("SELECT COUNT(*) FROM webhook_endpoints").await, 0);

        let mut console = Console::new(&app);
        console.sign_in(ADMIN_EMAIL, ADMIN_PASSWORD).await;
        assert_eq!(console.get("/admin/webhooks").await.status, StatusCode::OK);
        assert_eq!(console.post("/admin/webhooks", &fields, false).await.status, StatusCode::FORBIDDEN);
        assert_eq!(app.scalar("SELECT COUNT(*) FROM webhook_endpoints").await, 0, "nothing created");
        let created = console.post("/admin/webhooks", &fields, true).await;
        assert_eq!(created.status, StatusCode::OK, "{}", created.body);
        assert!(created.body.contains("id=\"secret\""), "the secret is shown once");
        let id = app.scalar("SELECT MAX(id) FROM webhook_endpoints").await;
        for path in [format!("/admin/webhooks/{id}/rotate"), format!("/admin/webhooks/{id}")] {
            assert_eq!(console.post(&path, &[("status", "disabled")], false).await.status, StatusCode::FORBIDDEN, "{path}");
        }
        let shown = console.get(&format!("/admin/webhooks/{id}")).await;
        assert!(!shown.body.contains("id=\"secret\""), "not shown again");
        assert!(shown.body.contains("value=\"active\" selected"), "not disabled without the token");
        assert_eq!(clerk.get(&format!("/admin/webhooks/{id}")).await.status, StatusCode::FORBIDDEN);
    }
}

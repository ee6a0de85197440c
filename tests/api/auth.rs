//! Users, tokens and roles: every defence of the Auth section, seen from outside.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::helpers::*;

const SECRET: &str = "test-secret-test-secret-test-secret!";

async fn app_with_secret(backend: Backend, extra: &[(&str, &str)]) -> Option<TestApp> {
    let mut settings = vec![("TIENDA_JWT_SECRET", SECRET)];
    settings.extend_from_slice(extra);
    TestApp::spawn_with(backend, &settings).await
}

fn forge(header: Value, claims: Value, key: &[u8]) -> String {
    use hmac::{Hmac, Mac};
    let head = URL_SAFE_NO_PAD.encode(header.to_string());
    let body = URL_SAFE_NO_PAD.encode(claims.to_string());
    let mut mac = Hmac::<sha2::Sha256>::new_from_slice(key).unwrap();
    mac.update(format!("{head}.{body}").as_bytes());
    let signature = URL_SAFE_NO_PAD.encode(mac.finalize().into_bytes());
    format!("{head}.{body}.{signature}")
}

fn claims(sub: i64, role: &str, exp_offset: i64) -> Value {
    let now = chrono::Utc::now().timestamp();
    json!({"sub": sub.to_string(), "role": role, "iat": now, "exp": now + exp_offset, "jti": "t"})
}

async fn me_with(app: &TestApp, authorization: &str) -> reqwest::Response {
    app.anonymous(Method::GET, "/api/v1/auth/me")
        .header("authorization", authorization)
        .send()
        .await
        .unwrap()
}

async fn post_anon(app: &TestApp, path: &str, body: Value) -> reqwest::Response {
    app.anonymous(Method::POST, path)
        .json(&body)
        .send()
        .await
        .unwrap()
}

async fn assert_invalid_token(response: reqwest::Response) {
    let challenge = response.headers()["www-authenticate"]
        .to_str()
        .unwrap()
        .to_owned();
    assert_eq!(challenge, r#"Bearer error="invalid_token""#);
    assert_problem(response, StatusCode::UNAUTHORIZED, "/problems/invalid-token").await;
}

both_backends! {
    async fn register_login_and_me(app) {
        let response = post_anon(&app, "/api/v1/auth/register", json!({"email": "Ana@Example.com", "password": "s3cret-pass"})).await;
        assert_eq!(response.status(), StatusCode::CREATED);
        let user: Value = response.json().await.unwrap();
        assert_eq!(user["email"], "Ana@Example.com");
        assert_eq!(user["role"], "customer");
        assert_eq!(user["disabled"], false);
        assert!(user["id"].as_i64().is_some() && user["created_at"].as_str().is_some());
        assert!(user.get("password_hash").is_none() && user.get("password").is_none());

        // Email is case-insensitive for login and for uniqueness.
        let response = post_anon(&app, "/api/v1/auth/login", json!({"email": "ana@EXAMPLE.com", "password": "s3cret-pass"})).await;
        assert_eq!(response.status(), StatusCode::OK);
        assert_eq!(response.headers()["cache-control"], "no-store");
        let tokens: Value = response.json().await.unwrap();
        assert_eq!(tokens["token_type"], "Bearer");
        assert_eq!(tokens["expires_in"], 900);
        assert!(tokens["refresh_token"].as_str().unwrap().len() >= 43);
        let access = tokens["access_token"].as_str().unwrap();
        let response = me_with(&app, &format!("Bearer {access}")).await;
        assert_eq!(response.status(), StatusCode::OK);
        assert_eq!(response.json::<Value>().await.unwrap(), user);

        let response = post_anon(&app, "/api/v1/auth/register", json!({"email": "ANA@example.com", "password": "another-pass"})).await;
        assert_problem(response, StatusCode::CONFLICT, "/problems/duplicate-email").await;
    }

    async fn registration_rejects_bad_emails_weak_or_long_passwords_and_roles(app) {
        for (body, field, code) in [
            (json!({"email": "nope", "password": "long-enough"}), "email", "invalid_email"),
            (json!({"email": "a@example.com", "password": "short"}), "password", "too_short"),
            (json!({"email": "a@example.com", "password": "x".repeat(129)}), "password", "too_long"),
            (json!({"email": "a@example.com", "password": "long-enough", "role": "admin"}), "role", "read_only"),
            (json!({"email": "a@example.com", "password": "long-enough", "is_admin": true}), "is_admin", "unknown_field"),
            (json!({"email": "a@example.com"}), "password", "required"),
            (json!({"email": 5, "password": "long-enough"}), "email", "invalid_type"),
        ] {
            let response = post_anon(&app, "/api/v1/auth/register", body.clone()).await;
            let problem = assert_problem(response, StatusCode::UNPROCESSABLE_ENTITY, "/problems/validation").await;
            assert_eq!(error_code(&problem, field), code, "{body}");
        }
        // 8 and 128 characters are fine.
        for password in ["x".repeat(8), "é".repeat(128)] {
            let email = format!("ok{}@example.com", password.len());
            let response = post_anon(&app, "/api/v1/auth/register", json!({"email": email, "password": password})).await;
            assert_eq!(response.status(), StatusCode::CREATED);
        }
    }

    async fn wrong_password_unknown_email_and_disabled_account_get_the_same_401(app) {
        let token = app.user_token("bob@example.com", "customer").await;
        let me: Value = me_with(&app, &format!("Bearer {token}")).await.json().await.unwrap();
        app.send_json(Method::PATCH, &format!("/api/v1/users/{}", me["id"]), &json!({"disabled": true})).await;
        let mut bodies = Vec::new();
        for (email, password) in [("admin@tienda.test", "wrong-password"), ("nobody@example.com", "whatever-1"), ("bob@example.com", "user-password-1")] {
            let response = post_anon(&app, "/api/v1/auth/login", json!({"email": email, "password": password})).await;
            assert_eq!(response.headers()["www-authenticate"], "Bearer");
            let mut body = assert_problem(response, StatusCode::UNAUTHORIZED, "/problems/invalid-credentials").await;
            body.as_object_mut().unwrap().remove("request_id");
            bodies.push(body);
        }
        assert!(bodies.windows(2).all(|w| w[0] == w[1]), "{bodies:?}");
    }

    async fn a_missing_token_is_401_with_a_bearer_challenge(app) {
        let response = app.anonymous(Method::GET, "/api/v1/auth/me").send().await.unwrap();
        assert_eq!(response.headers()["www-authenticate"], "Bearer");
        assert_problem(response, StatusCode::UNAUTHORIZED, "/problems/unauthorized").await;
        let response = app.anonymous(Method::POST, "/api/v1/products").json(&product_body(1)).send().await.unwrap();
        assert_problem(response, StatusCode::UNAUTHORIZED, "/problems/unauthorized").await;
        assert_eq!(app.product_count().await, 0);
    }

    async fn malformed_headers_and_forged_tokens_are_401_invalid_token(app) {
        drop(app);
        let Some(app) = app_with_secret(Backend::Sqlite, &[]).await else { return };
        let admin_id = me_with(&app, &format!("Bearer {}", app.admin_token)).await.json::<Value>().await.unwrap()["id"].as_i64().unwrap();
        let valid = forge(json!({"alg": "HS256", "typ": "JWT"}), claims(admin_id, "admin", 600), SECRET.as_bytes());
        assert_eq!(me_with(&app, &format!("Bearer {valid}")).await.status(), StatusCode::OK, "the forge helper is right");

        let (head, rest) = valid.split_once('.').unwrap();
        let (body, signature) = rest.split_once('.').unwrap();
        let mut tampered_signature = signature.to_owned();
        tampered_signature.replace_range(0..1, if signature.starts_with('A') { "B" } else { "A" });
        let escalated = URL_SAFE_NO_PAD.encode(claims(admin_id + 1, "admin", 600).to_string());
        let none_token = format!("{}.{body}.", URL_SAFE_NO_PAD.encode(json!({"alg": "none", "typ": "JWT"}).to_string()));
        let rs256 = format!("{}.{body}.{signature}", URL_SAFE_NO_PAD.encode(json!({"alg": "RS256", "typ": "JWT"}).to_string()));
        let other_secret = forge(json!({"alg": "HS256", "typ": "JWT"}), claims(admin_id, "admin", 600), b"another-secret-another-secret-!!");
        let expired = forge(json!({"alg": "HS256", "typ": "JWT"}), claims(admin_id, "admin", -60), SECRET.as_bytes());
        let unknown_user = forge(json!({"alg": "HS256", "typ": "JWT"}), claims(999_999, "admin", 600), SECRET.as_bytes());
        for authorization in [
            format!("Bearer {head}.{body}.{tampered_signature}"),
            format!("Bearer {head}.{escalated}.{signature}"),
            format!("Bearer {none_token}"),
            format!("Bearer {rs256}"),
            format!("Bearer {other_secret}"),
            format!("Bearer {expired}"),
            format!("Bearer {unknown_user}"),
            "Bearer".to_owned(), "Bearer ".to_owned(), "Basic YWRtaW46YWRtaW4=".to_owned(), valid.clone(),
            "Bearer not.a.jwt".to_owned(), "Bearer a b".to_owned(),
        ] {
            assert_invalid_token(me_with(&app, &authorization).await).await;
        }
    }

    async fn customers_cannot_write_products_and_staff_can(app) {
        let customer = app.user_token("cus@example.com", "customer").await;
        let staff = app.user_token("staff@example.com", "staff").await;
        let response = app.anonymous(Method::POST, "/api/v1/products").bearer_auth(&customer).json(&product_body(1)).send().await.unwrap();
        assert_problem(response, StatusCode::FORBIDDEN, "/problems/forbidden").await;
        assert_eq!(app.product_count().await, 0);
        let response = app.anonymous(Method::POST, "/api/v1/products").bearer_auth(&staff).json(&product_body(1)).send().await.unwrap();
        assert_eq!(response.status(), StatusCode::CREATED);
        let product: Value = response.json().await.unwrap();
        let path = format!("/api/v1/products/{}", product["id"]);
        for method in [Method::PUT, Method::PATCH, Method::DELETE] {
            let response = app.anonymous(method, &path).bearer_auth(&customer).json(&product_body(1)).send().await.unwrap();
            assert_problem(response, StatusCode::FORBIDDEN, "/problems/forbidden").await;
        }
        assert_eq!(app.get_product(product["id"].as_i64().unwrap()).await, product);
        // Reads are public by default.
        assert_eq!(app.anonymous(Method::GET, &path).send().await.unwrap().status(), StatusCode::OK);
        assert_eq!(app.anonymous(Method::GET, "/api/v1/products").send().await.unwrap().status(), StatusCode::OK);
        // Staff cannot manage users.
        let response = app.anonymous(Method::GET, "/api/v1/users").bearer_auth(&staff).send().await.unwrap();
        assert_problem(response, StatusCode::FORBIDDEN, "/problems/forbidden").await;
    }

    async fn a_customer_cannot_change_roles(app) {
        let customer = app.user_token("eve@example.com", "customer").await;
        let me: Value = me_with(&app, &format!("Bearer {customer}")).await.json().await.unwrap();
        let response = app.anonymous(Method::PATCH, &format!("/api/v1/users/{}", me["id"])).bearer_auth(&customer)
            .json(&json!({"role": "admin"})).send().await.unwrap();
        assert_problem(response, StatusCode::FORBIDDEN, "/problems/forbidden").await;
        let me_again: Value = me_with(&app, &format!("Bearer {customer}")).await.json().await.unwrap();
        assert_eq!(me_again["role"], "customer");
    }

    async fn admins_list_and_change_users_but_never_remove_the_last_admin(app) {
        app.user_token("u1@example.com", "customer").await;
        app.user_token("u2@example.com", "staff").await;
        let response = app.get("/api/v1/users?per_page=2").await;
        assert_eq!(response.status(), StatusCode::OK);
        assert!(response.headers()["link"].to_str().unwrap().contains(r#"rel="next""#));
        let page: Value = response.json().await.unwrap();
        assert_eq!((page["total"].as_u64(), page["total_pages"].as_u64()), (Some(3), Some(2)));
        let admin = &page["items"][0];
        assert_eq!(admin["role"], "admin");
        let admin_path = format!("/api/v1/users/{}", admin["id"]);
        // Bad input is named; unknown users are 404.
        let response = app.send_json(Method::PATCH, &admin_path, &json!({"role": "owner", "email": "x@y.z", "disabled": "no"})).await;
        let problem = assert_problem(response, StatusCode::UNPROCESSABLE_ENTITY, "/problems/validation").await;
        assert_eq!(error_code(&problem, "role"), "invalid_role");
        assert_eq!(error_code(&problem, "email"), "read_only");
        assert_eq!(error_code(&problem, "disabled"), "invalid_type");
        let response = app.send_json(Method::PATCH, "/api/v1/users/424242", &json!({"disabled": true})).await;
        assert_problem(response, StatusCode::NOT_FOUND, "/problems/not-found").await;
        for change in [json!({"role": "staff"}), json!({"disabled": true})] {
            let response = app.send_json(Method::PATCH, &admin_path, &change).await;
            assert_problem(response, StatusCode::CONFLICT, "/problems/last-admin").await;
        }
        // With a second admin, the first may step down.
        let second = page["items"][1]["id"].clone();
        let response = app.send_json(Method::PATCH, &format!("/api/v1/users/{second}"), &json!({"role": "admin"})).await;
        assert_eq!(response.json::<Value>().await.unwrap()["role"], "admin");
        let response = app.send_json(Method::PATCH, &admin_path, &json!({"role": "staff"})).await;
        assert_eq!(response.status(), StatusCode::OK);
        // The first admin is staff now: the old token still authenticates, but is no longer admin.
        let response = app.request(Method::GET, "/api/v1/users").send().await.unwrap();
        assert_problem(response, StatusCode::FORBIDDEN, "/problems/forbidden").await;
    }

    async fn a_disabled_users_token_stops_working_at_the_next_request(app) {
        let token = app.user_token("gone@example.com", "staff").await;
        let me: Value = me_with(&app, &format!("Bearer {token}")).await.json().await.unwrap();
        app.send_json(Method::PATCH, &format!("/api/v1/users/{}", me["id"]), &json!({"disabled": true})).await;
        assert_invalid_token(me_with(&app, &format!("Bearer {token}")).await).await;
        let response = app.anonymous(Method::POST, "/api/v1/products").bearer_auth(&token).json(&product_body(1)).send().await.unwrap();
        assert_invalid_token(response).await;
    }

    async fn refresh_rotates_and_a_replayed_token_revokes_its_family(app) {
        let first = app.login(ADMIN_EMAIL, ADMIN_PASSWORD).await;
        let old = first["refresh_token"].as_str().unwrap().to_owned();
        let response = post_anon(&app, "/api/v1/auth/refresh", json!({"refresh_token": old})).await;
        assert_eq!(response.status(), StatusCode::OK);
        assert_eq!(response.headers()["cache-control"], "no-store");
        let second: Value = response.json().await.unwrap();
        let newer = second["refresh_token"].as_str().unwrap().to_owned();
        assert_ne!(newer, old);
        assert_eq!(me_with(&app, &format!("Bearer {}", second["access_token"].as_str().unwrap())).await.status(), StatusCode::OK);

        // The spent token is replayed: refused, and the newer one dies with it.
        assert_invalid_token(post_anon(&app, "/api/v1/auth/refresh", json!({"refresh_token": old})).await).await;
        assert_invalid_token(post_anon(&app, "/api/v1/auth/refresh", json!({"refresh_token": newer})).await).await;
        // Another login's family is untouched.
        let other = app.login(ADMIN_EMAIL, ADMIN_PASSWORD).await;
        let response = post_anon(&app, "/api/v1/auth/refresh", json!({"refresh_token": other["refresh_token"]})).await;
        assert_eq!(response.status(), StatusCode::OK);
        // Garbage is refused the same way.
        assert_invalid_token(post_anon(&app, "/api/v1/auth/refresh", json!({"refresh_token": "garbage"})).await).await;
        let response = post_anon(&app, "/api/v1/auth/refresh", json!({})).await;
        assert_problem(response, StatusCode::UNPROCESSABLE_ENTITY, "/problems/validation").await;
    }

    async fn refresh_after_logout_is_refused(app) {
        let tokens = app.login(ADMIN_EMAIL, ADMIN_PASSWORD).await;
        let refresh = tokens["refresh_token"].clone();
        let response = post_anon(&app, "/api/v1/auth/logout", json!({"refresh_token": refresh})).await;
        assert_eq!(response.status(), StatusCode::NO_CONTENT);
        assert_invalid_token(post_anon(&app, "/api/v1/auth/refresh", json!({"refresh_token": refresh})).await).await;
        // Logging out twice, or with an unknown token, is still 204.
        let response = post_anon(&app, "/api/v1/auth/logout", json!({"refresh_token": refresh})).await;
        assert_eq!(response.status(), StatusCode::NO_CONTENT);
    }

    async fn a_disabled_users_refresh_tokens_are_revoked(app) {
        let token = app.user_token("rf@example.com", "customer").await;
        let me: Value = me_with(&app, &format!("Bearer {token}")).await.json().await.unwrap();
        let tokens = app.login("rf@example.com", "user-password-1").await;
        app.send_json(Method::PATCH, &format!("/api/v1/users/{}", me["id"]), &json!({"disabled": true})).await;
        app.send_json(Method::PATCH, &format!("/api/v1/users/{}", me["id"]), &json!({"disabled": false})).await;
        assert_invalid_token(post_anon(&app, "/api/v1/auth/refresh", json!({"refresh_token": tokens["refresh_token"]})).await).await;
    }

    async fn failed_logins_are_throttled_per_email_then_the_window_lifts(app) {
        drop(app);
        let window = std::time::Duration::from_secs(6);
        let Some(app) = TestApp::spawn_with(Backend::Sqlite, &[("TIENDA_LOGIN_WINDOW_SECS", "6")]).await else { return };
        let started = std::time::Instant::now();
        for _ in 0..5 {
            let response = post_anon(&app, "/api/v1/auth/login", json!({"email": ADMIN_EMAIL, "password": "wrong-password"})).await;
            assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
        }
        // Even the right password is refused while throttled.
        let response = post_anon(&app, "/api/v1/auth/login", json!({"email": ADMIN_EMAIL, "password": ADMIN_PASSWORD})).await;
        assert!(started.elapsed() < window, "the machine was too slow for this window: {:?}", started.elapsed());
        let retry_after: u64 = response.headers()["retry-after"].to_str().unwrap().parse().unwrap();
        assert!((1..=6).contains(&retry_after), "{retry_after}");
        assert_problem(response, StatusCode::TOO_MANY_REQUESTS, "/problems/too-many-requests").await;
        // Another email from the same client is not blocked yet.
        let response = post_anon(&app, "/api/v1/auth/login", json!({"email": "x@example.com", "password": "whatever-1"})).await;
        assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
        tokio::time::sleep((started + window + std::time::Duration::from_millis(1500)).saturating_duration_since(std::time::Instant::now())).await;
        let response = post_anon(&app, "/api/v1/auth/login", json!({"email": ADMIN_EMAIL, "password": ADMIN_PASSWORD})).await;
        assert_eq!(response.status(), StatusCode::OK);
    }

    async fn failed_logins_are_throttled_per_client_address(app) {
        drop(app);
        let settings = [("TIENDA_LOGIN_WINDOW_SECS", "30"), ("TIENDA_LOGIN_MAX_FAILURES_PER_CLIENT", "20")];
        let Some(app) = TestApp::spawn_with(Backend::Sqlite, &settings).await else { return };
        for n in 0..20 {
            let response = post_anon(&app, "/api/v1/auth/login", json!({"email": format!("x{n}@example.com"), "password": "wrong-pass"})).await;
            assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
        }
        let response = post_anon(&app, "/api/v1/auth/login", json!({"email": ADMIN_EMAIL, "password": ADMIN_PASSWORD})).await;
        assert_problem(response, StatusCode::TOO_MANY_REQUESTS, "/problems/too-many-requests").await;
    }

    async fn forwarded_addresses_count_only_behind_a_trusted_proxy(app) {
        drop(app);
        let settings = [("TIENDA_LOGIN_MAX_FAILURES_PER_CLIENT", "3"), ("TIENDA_LOGIN_MAX_FAILURES_PER_EMAIL", "100")];
        // Untrusted: X-Forwarded-For is ignored, so rotating it does not dodge the limit.
        let Some(app) = TestApp::spawn_with(Backend::Sqlite, &settings).await else { return };
        for n in 0..3 {
            let response = app.anonymous(Method::POST, "/api/v1/auth/login").header("x-forwarded-for", format!("10.0.0.{n}"))
                .json(&json!({"email": "a@example.com", "password": "wrong-pass"})).send().await.unwrap();
            assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
        }
        let response = app.anonymous(Method::POST, "/api/v1/auth/login").header("x-forwarded-for", "10.0.0.9")
            .json(&json!({"email": "a@example.com", "password": "wrong-pass"})).send().await.unwrap();
        assert_eq!(response.status(), StatusCode::TOO_MANY_REQUESTS);
        // Trusted loopback proxy: each forwarded client has its own count.
        let mut trusted = settings.to_vec();
        trusted.push(("TIENDA_TRUSTED_PROXIES", "127.0.0.1"));
        let app = TestApp::spawn_with(Backend::Sqlite, &trusted).await.unwrap();
        for n in 0..6 {
            let response = app.anonymous(Method::POST, "/api/v1/auth/login").header("x-forwarded-for", format!("10.0.0.{n}"))
                .json(&json!({"email": "a@example.com", "password": "wrong-pass"})).send().await.unwrap();
            assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
        }
    }

    async fn protect_reads_makes_product_reads_need_a_token(app) {
        drop(app);
        let Some(app) = TestApp::spawn_with(Backend::Sqlite, &[("TIENDA_PROTECT_READS", "true")]).await else { return };
        let product = app.create_product(product_body(1)).await;
        let path = format!("/api/v1/products/{}", product["id"]);
        for path in [path.as_str(), "/api/v1/products"] {
            let response = app.anonymous(Method::GET, path).send().await.unwrap();
            assert_problem(response, StatusCode::UNAUTHORIZED, "/problems/unauthorized").await;
        }
        let customer = app.user_token("reader@example.com", "customer").await;
        let response = app.anonymous(Method::GET, &path).bearer_auth(&customer).send().await.unwrap();
        assert_eq!(response.status(), StatusCode::OK);
    }
}

#[tokio::test]
async fn two_instances_share_the_login_throttle_through_redis() {
    let Some(redis_url) = test_redis_url() else {
        return;
    };
    let settings = [
        ("REDIS_URL", redis_url.as_str()),
        ("TIENDA_LOGIN_WINDOW_SECS", "60"),
        ("TIENDA_LOGIN_MAX_FAILURES_PER_CLIENT", "100000"),
    ];
    let one = TestApp::spawn_with(Backend::Sqlite, &settings).await.unwrap();
    let two = TestApp::spawn_with(Backend::Sqlite, &settings).await.unwrap();
    let email = format!("{}@example.com", uuid::Uuid::new_v4().simple());
    // Three failures on one instance, two on the other: five in all.
    for (app, times) in [(&one, 3), (&two, 2)] {
        for _ in 0..times {
            let response = post_anon(
                app,
                "/api/v1/auth/login",
                json!({"email": email, "password": "wrong-pass"}),
            )
            .await;
            assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
        }
    }
    for app in [&one, &two] {
        let response = post_anon(
            app,
            "/api/v1/auth/login",
            json!({"email": email, "password": "wrong-pass"}),
        )
        .await;
        assert_problem(
            response,
            StatusCode::TOO_MANY_REQUESTS,
            "/problems/too-many-requests",
        )
        .await;
    }
}

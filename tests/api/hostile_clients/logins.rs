//! Guessing passwords in parallel, and emails that look like someone else's.

use std::time::Duration;

use reqwest::{Method, StatusCode};
use serde_json::json;

use super::{post, retry_after};
use crate::helpers::*;

const LOGIN: &str = "/api/v1/auth/login";

/// Sends 40 logins for `email` spread over `apps`: 39 wrong passwords and the right one at
/// position 30. The first 30 go at once; as soon as one of them is refused the email is at its
/// limit, and the last ten (the right password among them) follow while the evaluated guesses
/// may still be hashing. Returns the statuses, each 429 checked for `Retry-After`.
async fn forty_guesses(apps: &[&TestApp], email: &str, password: &str) -> Vec<StatusCode> {
    let (sent, mut answers) = tokio::sync::mpsc::unbounded_channel();
    let send = |n: usize| {
        let app = apps[n % apps.len()];
        let guess = if n == 30 {
            password.to_owned()
        } else {
            format!("wrong-guess-{n}")
        };
        let request = app
            .anonymous(Method::POST, LOGIN)
            .json(&json!({"email": email, "password": guess}));
        let sent = sent.clone();
        tokio::spawn(async move {
            let response = request.send().await.unwrap();
            let status = response.status();
            if status == StatusCode::TOO_MANY_REQUESTS {
                assert!(retry_after(&response) >= 1);
            }
            let _ = sent.send(status);
        });
    };
    (0..30).for_each(send);
    let mut statuses = Vec::new();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    while !statuses.contains(&StatusCode::TOO_MANY_REQUESTS) && statuses.len() < 30 {
        let status = tokio::time::timeout_at(deadline, answers.recv())
            .await
            .expect("the first 30 logins answered in time")
            .unwrap();
        statuses.push(status);
    }
    (30..40).for_each(send);
    drop(sent);
    while let Some(status) = tokio::time::timeout_at(deadline, answers.recv())
        .await
        .expect("every login answered in time")
    {
        statuses.push(status);
    }
    statuses
}

fn assert_at_most_five_evaluated(statuses: &[StatusCode]) {
    let count = |s: StatusCode| statuses.iter().filter(|x| **x == s).count();
    assert_eq!(statuses.len(), 40);
    assert_eq!(
        count(StatusCode::OK),
        0,
        "the right password got through: {statuses:?}"
    );
    let evaluated = count(StatusCode::UNAUTHORIZED);
    assert!(
        (1..=5).contains(&evaluated),
        "{evaluated} guesses were checked: {statuses:?}"
    );
    assert_eq!(
        count(StatusCode::TOO_MANY_REQUESTS),
        40 - evaluated,
        "{statuses:?}"
    );
}

both_backends! {
    async fn forty_concurrent_guesses_at_one_email_check_at_most_five(app) {
        let response = post(&app, "/api/v1/auth/register", &json!({"email": "victim@example.com", "password": "the-right-one"})).await;
        assert_eq!(response.status(), StatusCode::CREATED);
        let statuses = forty_guesses(&[&app], "victim@example.com", "the-right-one").await;
        assert_at_most_five_evaluated(&statuses);
    }

    async fn lookalike_nul_and_huge_login_emails_are_401_without_touching_the_email_count(app)
        with &[("TIENDA_LOGIN_MAX_FAILURES_PER_CLIENT", "13")] => {
        let right = json!({"email": "vick@example.com", "password": "the-right-one"});
        assert_eq!(post(&app, "/api/v1/auth/register", &right).await.status(), StatusCode::CREATED);
        // PostgreSQL's lower() folds İ to i and the Kelvin sign to k: these used to log in as
        // vick with a fresh per-email budget each. NUL was a 500 there. All with the right
        // password, seven of them: more than the per-email limit, had they counted for it.
        let lookalikes = [
            "v\u{130}ck@example.com".to_owned(),
            "vic\u{212a}@example.com".to_owned(),
            "vick\u{0}@example.com".to_owned(),
            "vick@example.com\u{0}".to_owned(),
            format!("{}@example.com", "a".repeat(900_000)),
            "vick@@example.com".to_owned(),
            "vi ck@example.com".to_owned(),
        ];
        // And one of them five times more: a malformed email has no count of its own either.
        let repeated = std::iter::repeat_n(&lookalikes[2], 5);
        for email in lookalikes.iter().chain(repeated) {
            let response = post(&app, "/api/v1/auth/login", &json!({"email": email, "password": "the-right-one"})).await;
            assert_eq!(response.headers()["www-authenticate"], "Bearer");
            assert_problem(response, StatusCode::UNAUTHORIZED, "/problems/invalid-credentials").await;
        }
        // The email's own budget is untouched...
        let response = post(&app, "/api/v1/auth/login", &right).await;
        assert_eq!(response.status(), StatusCode::OK);
        // ...but the client's is not: 12 failures so far, the 13th reaches its limit.
        let response = post(&app, "/api/v1/auth/login", &json!({"email": "vi\u{0}ck", "password": "x"})).await;
        assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
        let response = post(&app, "/api/v1/auth/login", &right).await;
        assert!(retry_after(&response) >= 1);
        assert_problem(response, StatusCode::TOO_MANY_REQUESTS, "/problems/too-many-requests").await;
        // At registration the same emails are 422, naming the field.
        for email in &lookalikes {
            let response = post(&app, "/api/v1/auth/register", &json!({"email": email, "password": "long-enough-1"})).await;
            let problem = assert_problem(response, StatusCode::UNPROCESSABLE_ENTITY, "/problems/validation").await;
            assert_eq!(error_fields(&problem), ["email"]);
        }
    }
}

/// Two instances behind a load balancer share the count through Redis: 40 guesses spread over
/// both still check at most five.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[cfg_attr(
    not(tienda_test_redis),
    ignore = "set TIENDA_TEST_REDIS_URL to run the tests of the Redis-shared throttle"
)]
async fn forty_concurrent_guesses_through_two_instances_sharing_redis_check_at_most_five() {
    let redis_url = required_env(REDIS_ENV);
    // Both instances see the test as 127.0.0.1, whose per-client count in the shared Redis
    // outlives this run: only the per-email limit is under test here.
    let settings = [
        ("REDIS_URL", redis_url.as_str()),
        ("TIENDA_LOGIN_MAX_FAILURES_PER_CLIENT", "100000"),
    ];
    let one = TestApp::spawn_with(Backend::Sqlite, &settings).await.unwrap();
    let two = TestApp::spawn_with(Backend::Sqlite, &settings).await.unwrap();
    let email = format!("{}@example.com", uuid::Uuid::new_v4().simple());
    let account = json!({"email": email, "password": "the-right-one"});
    assert_eq!(
        post(&one, "/api/v1/auth/register", &account).await.status(),
        StatusCode::CREATED
    );
    // The second instance has its own database: give it the same account.
    assert_eq!(
        post(&two, "/api/v1/auth/register", &account).await.status(),
        StatusCode::CREATED
    );
    let statuses = forty_guesses(&[&one, &two], &email, "the-right-one").await;
    assert_at_most_five_evaluated(&statuses);
}

#[tokio::test]
async fn registrations_are_limited_per_client_address() {
    let app = TestApp::spawn_with(Backend::Sqlite, &[("TIENDA_REGISTER_LIMIT_PER_HOUR", "3")])
        .await
        .unwrap();
    for n in 0..3 {
        let body = json!({"email": format!("r{n}@example.com"), "password": "long-enough-1"});
        assert_eq!(
            post(&app, "/api/v1/auth/register", &body).await.status(),
            StatusCode::CREATED
        );
    }
    let body = json!({"email": "r9@example.com", "password": "long-enough-1"});
    let response = post(&app, "/api/v1/auth/register", &body).await;
    let wait = retry_after(&response);
    assert!((3500..=3600).contains(&wait), "{wait}");
    assert_problem(
        response,
        StatusCode::TOO_MANY_REQUESTS,
        "/problems/too-many-requests",
    )
    .await;
}

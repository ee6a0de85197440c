//! Stolen refresh tokens and sessions kept alive forever.

use reqwest::StatusCode;
use serde_json::{Value, json};

use super::post;
use crate::helpers::*;

async fn refresh(app: &TestApp, token: &Value) -> reqwest::Response {
    post(app, "/api/v1/auth/refresh", &json!({"refresh_token": token})).await
}

/// Moves the start of every stored session back by `days` days and `hours` hours.
async fn age_sessions(app: &TestApp, days: i64, hours: i64) {
    if app.is_postgres() {
        app.execute(&format!(
            "UPDATE refresh_tokens SET family_started_at = family_started_at - interval '{days} days {hours} hours'"
        ))
        .await;
    } else {
        let micros = (days * 24 + hours) * 3_600_000_000;
        app.execute(&format!(
            "UPDATE refresh_tokens SET family_started_at = family_started_at - {micros}"
        ))
        .await;
    }
}

both_backends! {
    async fn logout_with_a_spent_token_ends_the_thiefs_session(app) {
        let victim = app.login(ADMIN_EMAIL, ADMIN_PASSWORD).await;
        let rt1 = victim["refresh_token"].clone();
        // The thief replays a copy of rt1 first.
        let response = refresh(&app, &rt1).await;
        assert_eq!(response.status(), StatusCode::OK);
        let rt2 = response.json::<Value>().await.unwrap()["refresh_token"].clone();
        // The victim logs out with what they hold: spent, so it is reuse.
        let response = post(&app, "/api/v1/auth/logout", &json!({"refresh_token": rt1})).await;
        assert_eq!(response.status(), StatusCode::NO_CONTENT);
        let response = refresh(&app, &rt2).await;
        assert_problem(response, StatusCode::UNAUTHORIZED, "/problems/invalid-token").await;
        // Another login of the same user is another family, untouched.
        let other = app.login(ADMIN_EMAIL, ADMIN_PASSWORD).await;
        assert_eq!(refresh(&app, &other["refresh_token"]).await.status(), StatusCode::OK);
    }

    async fn logout_revokes_every_token_of_the_login(app) {
        let first = app.login(ADMIN_EMAIL, ADMIN_PASSWORD).await;
        let response = refresh(&app, &first["refresh_token"]).await;
        let second: Value = response.json().await.unwrap();
        let response = post(&app, "/api/v1/auth/logout", &json!({"refresh_token": second["refresh_token"]})).await;
        assert_eq!(response.status(), StatusCode::NO_CONTENT);
        let revoked = app
            .scalar("SELECT count(*) FROM refresh_tokens WHERE revoked_at IS NULL AND family IN \
                     (SELECT family FROM refresh_tokens WHERE used_at IS NOT NULL)")
            .await;
        assert_eq!(revoked, 0, "a token of the family outlived the logout");
        let response = refresh(&app, &second["refresh_token"]).await;
        assert_problem(response, StatusCode::UNAUTHORIZED, "/problems/invalid-token").await;
    }

    async fn a_session_lives_at_most_its_maximum_age_however_often_it_is_refreshed(app) {
        // Logged in 91 days ago and refreshed every day since: over.
        let old = app.login(ADMIN_EMAIL, ADMIN_PASSWORD).await;
        age_sessions(&app, 91, 0).await;
        let response = refresh(&app, &old["refresh_token"]).await;
        assert_problem(response, StatusCode::UNAUTHORIZED, "/problems/invalid-token").await;
        // One hour left: the refresh works, and the new token dies with its family.
        let recent = app.login(ADMIN_EMAIL, ADMIN_PASSWORD).await;
        age_sessions(&app, 89, 23).await;
        let response = refresh(&app, &recent["refresh_token"]).await;
        assert_eq!(response.status(), StatusCode::OK);
        let newest = "(SELECT max(id) FROM refresh_tokens)";
        let past_the_family = if app.is_postgres() {
            format!("SELECT count(*) FROM refresh_tokens WHERE id = {newest} AND expires_at > family_started_at + interval '90 days'")
        } else {
            format!("SELECT count(*) FROM refresh_tokens WHERE id = {newest} AND expires_at > family_started_at + 90 * 86400000000")
        };
        assert_eq!(app.scalar(&past_the_family).await, 0);
    }
}

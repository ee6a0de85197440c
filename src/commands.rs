//! Subcommands other than `serve`: one-shot administrative tasks.

use crate::config::Config;
use crate::domain::product::Invalid;
use crate::domain::user::{Email, Password, Role};
use crate::services::auth::AuthError;
use crate::startup::{auth_service, open_store};
use crate::store::StoreError;

/// `tienda users create`: the password comes from a prompt or from stdin, never from argv.
pub async fn create_user(config: &Config, email: &str, role: &str, from_stdin: bool) -> Result<i64, String> {
    let email = Email::parse(email).map_err(|e| format!("--email: {}", e.message))?;
    let role: Role = role
        .parse()
        .map_err(|e: Invalid| format!("--role: {}", e.message))?;
    let password = if from_stdin {
        let mut line = String::new();
        std::io::stdin()
            .read_line(&mut line)
            .map_err(|e| format!("cannot read the password from stdin: {e}"))?;
        line.trim_end_matches(['\n', '\r']).to_owned()
    } else {
        let first =
            rpassword::prompt_password("Password: ").map_err(|e| format!("cannot read the password: {e}"))?;
        let again =
            rpassword::prompt_password("Again: ").map_err(|e| format!("cannot read the password: {e}"))?;
        if first != again {
            return Err("the passwords differ".into());
        }
        first
    };
    let password = Password::new_password(password).map_err(|e| format!("password: {}", e.message))?;
    let store = open_store(config).await.map_err(|e| e.to_string())?;
    let auth = auth_service(config, &store, None)
        .await
        .map_err(|e| e.to_string())?;
    let result = auth.create_user(&email, password, role).await;
    store.close().await;
    result.map(|user| user.id).map_err(|e| match e {
        AuthError::Store(StoreError::Conflict(_)) => {
            format!("a user with email {} already exists", email.as_str())
        }
        other => other.to_string(),
    })
}

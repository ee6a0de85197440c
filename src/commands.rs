//! Subcommands other than `serve`: one-shot administrative tasks.

#[path = "commands_transfer.rs"]
pub mod transfer;

use crate::config::Config;
use crate::domain::import::{FileFormat, ImportMode, ImportOptions, OnError};
use crate::domain::product::Invalid;
use crate::domain::user::{Email, Password, Role};
use crate::services::accounts::AuthError;
use crate::startup::{StartupError, auth_service, open_store};
use crate::store::StoreError;

/// Why a command failed; the message is what the operator sees.
#[derive(Debug, thiserror::Error)]
pub enum CommandError {
    /// An argument that does not parse; the message names it.
    #[error("{argument}: {message}")]
    InvalidArgument {
        /// The argument's name.
        argument: &'static str,
        /// What is wrong with it.
        message: String,
    },
    /// The password could not be read from the prompt or from stdin.
    #[error("cannot read the password{}: {source}", if *.from_stdin { " from stdin" } else { "" })]
    ReadPassword {
        /// `--password-stdin` was given.
        from_stdin: bool,
        /// The read error.
        #[source]
        source: std::io::Error,
    },
    /// The two prompted passwords differ.
    #[error("the passwords differ")]
    PasswordsDiffer,
    /// Another user has this email.
    #[error("a user with email {0} already exists")]
    DuplicateUser(String),
    /// The store or the auth service could not start.
    #[error(transparent)]
    Startup(#[from] StartupError),
    /// Creating the user failed.
    #[error(transparent)]
    Auth(AuthError),
}

fn invalid(argument: &'static str, invalid: Invalid) -> CommandError {
    CommandError::InvalidArgument {
        argument,
        message: invalid.message,
    }
}

/// `tienda users create`: the password comes from a prompt or from stdin, never from argv.
pub async fn create_user(
    config: &Config,
    email: &str,
    role: &str,
    from_stdin: bool,
) -> Result<i64, CommandError> {
    let email = Email::parse(email).map_err(|e| invalid("--email", e))?;
    let role: Role = role.parse().map_err(|e: Invalid| invalid("--role", e))?;
    let read_error = |source| CommandError::ReadPassword { from_stdin, source };
    let password = if from_stdin {
        let mut line = String::new();
        std::io::stdin().read_line(&mut line).map_err(read_error)?;
        line.trim_end_matches(['\n', '\r']).to_owned()
    } else {
        let first = rpassword::prompt_password("Password: ").map_err(read_error)?;
        let again = rpassword::prompt_password("Again: ").map_err(read_error)?;
        if first != again {
            return Err(CommandError::PasswordsDiffer);
        }
        first
    };
    let password = Password::new_password(password).map_err(|e| invalid("password", e))?;
    let store = open_store(config).await?;
    let auth = auth_service(config, &store, None).await?;
    let result = auth.create_user(&email, password, role).await;
    store.close().await;
    result.map(|user| user.id).map_err(|e| match e {
        AuthError::Store(StoreError::Conflict(_)) => CommandError::DuplicateUser(email.as_str().to_owned()),
        other => CommandError::Auth(other),
    })
}

/// The options of `tienda import`, checked.
pub fn import_options(
    format: &str,
    mode: &str,
    on_error: &str,
    dry_run: bool,
) -> Result<ImportOptions, CommandError> {
    let bad = |argument: &'static str, message: &str| CommandError::InvalidArgument {
        argument,
        message: message.to_owned(),
    };
    Ok(ImportOptions {
        format: FileFormat::parse(format).ok_or_else(|| bad("--format", "must be csv or jsonl"))?,
        mode: match mode {
            "upsert" => ImportMode::Upsert,
            "create" => ImportMode::Create,
            _ => return Err(bad("--mode", "must be upsert or create")),
        },
        on_error: match on_error {
            "abort" => OnError::Abort,
            "skip" => OnError::Skip,
            _ => return Err(bad("--on-error", "must be abort or skip")),
        },
        dry_run,
    })
}

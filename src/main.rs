use std::process::ExitCode;

use clap::Parser;
use tienda::cli::{Cli, Command, UsersCommand};
use tienda::commands;
use tienda::config::Config;
use tienda::startup::{Application, open_store, run_worker, shutdown_signal};

fn main() -> ExitCode {
    tienda::install_tls_provider();
    let cli = Cli::parse();
    let config = match Config::from_env() {
        Ok(config) => config,
        Err(error) => return fail(&format!("configuration error: {error}")),
    };
    // Telemetry starts (and its guard flushes traces) outside the runtime: the OTLP exporter
    // runs on a thread of its own with a blocking client.
    // `tienda export` without -o writes the file to stdout, where log lines would mix into it.
    let file_on_stdout = matches!(cli.command, Some(Command::Export { output: None, .. }));
    let _telemetry =
        (!file_on_stdout).then(|| tienda::logs::init(config.log_format, config.observability.otlp));
    let runtime = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(runtime) => runtime,
        Err(error) => return fail(&format!("cannot start the runtime: {error}")),
    };
    runtime.block_on(run(cli, config))
}

async fn run(cli: Cli, config: Config) -> ExitCode {
    if config.secret.ephemeral {
        tracing::warn!(
            "TIENDA_JWT_SECRET is not set: using a random secret for this process only; \
             tokens and cursors die with it, and instances behind a load balancer will not accept each other's"
        );
    }
    match cli.command.unwrap_or(Command::Serve) {
        Command::Serve => {
            let shutdown = shutdown_signal();
            let app = match Application::build(config).await {
                Ok(app) => app,
                Err(error) => return fail(&error.to_string()),
            };
            if let Ok(addr) = app.local_addr() {
                tracing::info!(%addr, "serving");
            }
            match app.run_until(shutdown).await {
                Ok(()) => ExitCode::SUCCESS,
                Err(error) => fail(&format!("server error: {error}")),
            }
        }
        Command::Migrate => match open_store(&config).await {
            Ok(store) => {
                store.close().await;
                tracing::info!("migrations applied");
                ExitCode::SUCCESS
            }
            Err(error) => fail(&error.to_string()),
        },
        Command::Users(UsersCommand::Create {
            email,
            role,
            password_stdin,
        }) => match commands::create_user(&config, &email, &role, password_stdin).await {
            Ok(id) => {
                println!("created user {id} ({email}, {role})");
                ExitCode::SUCCESS
            }
            Err(error) => fail(&error.to_string()),
        },
        Command::Worker => match run_worker(config, shutdown_signal()).await {
            Ok(()) => ExitCode::SUCCESS,
            Err(error) => fail(&error.to_string()),
        },
        Command::Import {
            file,
            format,
            mode,
            on_error,
            dry_run,
        } => {
            let options = match commands::import_options(&format, &mode, &on_error, dry_run) {
                Ok(options) => options,
                Err(error) => return fail(&error.to_string()),
            };
            match commands::transfer::import(&config, &file, options, shutdown_signal()).await {
                Ok(true) => ExitCode::SUCCESS,
                Ok(false) => ExitCode::FAILURE,
                Err(error) => fail(&error.to_string()),
            }
        }
        Command::Export { format, output } => {
            match commands::transfer::export(&config, &format, output.as_deref(), shutdown_signal()).await {
                Ok(true) => ExitCode::SUCCESS,
                Ok(false) => ExitCode::FAILURE,
                Err(error) => fail(&error.to_string()),
            }
        }
    }
}

/// One clear line on stderr and a failing exit code; no panic, no backtrace.
fn fail(message: &str) -> ExitCode {
    eprintln!("tienda: {message}");
    ExitCode::FAILURE
}

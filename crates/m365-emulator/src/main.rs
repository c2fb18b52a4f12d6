//! `m365-emulator`: the identity platform and Microsoft Graph emulator as a process, for the
//! demo.
//!
//! Prints one JSON line describing the emulator (`base_url`, `authority`, `tenant_id`,
//! `client_id`, `users`) so a launcher can read where it listens, then serves until Ctrl-C or
//! SIGTERM.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use m365_emulator::{Config, Emulator, TlsFiles};

const USAGE: &str = "usage: m365-emulator [--listen 127.0.0.1:PORT] [--tls-cert FILE --tls-key FILE] \
[--device-code-interval SECS] [--access-token-lifetime SECS] [--no-public-client-flows] \
[--synthetic-users N]";

/// What the command line asks for.
enum Command {
    Run(Config),
    Help,
}

fn parse_args(mut args: impl Iterator<Item = String>) -> Result<Command, String> {
    let mut config = Config::default();
    let (mut cert, mut key) = (None, None);
    while let Some(arg) = args.next() {
        let mut value = |name: &str| args.next().ok_or_else(|| format!("{name} needs a value"));
        let secs = |name: &str, v: String| {
            v.parse::<u64>()
                .map(Duration::from_secs)
                .map_err(|_| format!("{name}: not a number of seconds: {v}"))
        };
        match arg.as_str() {
            "--listen" => {
                let v = value("--listen")?;
                config.address = v
                    .parse::<SocketAddr>()
                    .map_err(|_| format!("--listen: not an address: {v}"))?;
            }
            "--tls-cert" => cert = Some(PathBuf::from(value("--tls-cert")?)),
            "--tls-key" => key = Some(PathBuf::from(value("--tls-key")?)),
            "--device-code-interval" => {
                config.device_code_interval = secs(&arg, value(&arg)?)?;
            }
            "--access-token-lifetime" => {
                config.access_token_lifetime = secs(&arg, value(&arg)?)?;
            }
            "--no-public-client-flows" => config.allow_public_client_flows = false,
            "--synthetic-users" => {
                let v = value(&arg)?;
                config.synthetic_users =
                    v.parse().map_err(|_| format!("--synthetic-users: not a number: {v}"))?;
            }
            "-h" | "--help" => return Ok(Command::Help),
            other => return Err(format!("unknown argument: {other}")),
        }
    }
    config.tls = match (cert, key) {
        (Some(cert_chain_pem), Some(private_key_pem)) => {
            Some(TlsFiles { cert_chain_pem, private_key_pem })
        }
        (None, None) => None,
        _ => return Err("--tls-cert and --tls-key go together".to_owned()),
    };
    Ok(Command::Run(config))
}

/// Waits for Ctrl-C or (on Unix) SIGTERM.
fn wait_for_shutdown_signal() -> std::io::Result<()> {
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
    runtime.block_on(async {
        #[cfg(unix)]
        {
            let mut term =
                tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
            tokio::select! {
                r = tokio::signal::ctrl_c() => r,
                _ = term.recv() => Ok(()),
            }
        }
        #[cfg(not(unix))]
        {
            tokio::signal::ctrl_c().await
        }
    })
}

#[allow(clippy::print_stdout)] // The one JSON line (and --help) are the binary's output.
fn main() -> ExitCode {
    let config = match parse_args(std::env::args().skip(1)) {
        Ok(Command::Run(config)) => config,
        Ok(Command::Help) => {
            println!("{USAGE}");
            return ExitCode::SUCCESS;
        }
        Err(message) => {
            eprintln!("m365-emulator: {message}\n{USAGE}");
            return ExitCode::from(2);
        }
    };
    let emulator = match Emulator::start(config) {
        Ok(emulator) => emulator,
        Err(e) => {
            eprintln!("m365-emulator: cannot start: {e}");
            return ExitCode::FAILURE;
        }
    };
    let users: Vec<String> = emulator.users().into_iter().map(|u| u.user_principal_name).collect();
    let line = serde_json::json!({
        "base_url": emulator.base_url(),
        "authority": emulator.authority(),
        "tenant_id": emulator.tenant_id(),
        "client_id": emulator.client_id(),
        "users": users,
    });
    println!("{line}");
    let result = wait_for_shutdown_signal();
    emulator.stop();
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("m365-emulator: cannot wait for signals: {e}");
            ExitCode::FAILURE
        }
    }
}

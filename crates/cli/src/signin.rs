//! `signin`, `whoami` and `signout`: the Microsoft 365 account (docs/graph.md).
//!
//! Events: `browser-opened` (the sign-in URL; `browser-failed` when no browser could be
//! started, so the user can open it by hand), `device-code` (the code and where to enter it),
//! `signed-in` and `account` (name, username, object and tenant ids), `presence-cleared` or
//! `presence-not-cleared` (signing out ends this app's Teams presence first), `signed-out`,
//! `sign-in-failed` (with a `reason`) and `sign-in-required` (`reason` `not-signed-in` or
//! `sign-in-again`). Exit codes: 0 done, 1 failed, [`EXIT_SIGN_IN_AGAIN`] when the stored
//! sign-in was refused and the user must sign in interactively, [`EXIT_NOT_SIGNED_IN`] when
//! there is none.

use std::process::ExitCode;
use std::time::{Duration, SystemTime};

use agent_runtime::AgentError;
use agent_runtime::m365::{M365, M365Error};
use graph_client::{Account, AuthError};
use serde::Serialize;

use crate::emit;

/// `whoami` (or anything needing the account) after the identity platform refused the stored
/// sign-in: the user must sign in again.
pub(crate) const EXIT_SIGN_IN_AGAIN: u8 = 3;
/// Nothing is stored: the user never signed in, or signed out.
pub(crate) const EXIT_NOT_SIGNED_IN: u8 = 4;

#[derive(Serialize)]
#[serde(tag = "event", rename_all = "kebab-case")]
enum Line<'a> {
    BrowserOpened {
        url: &'a str,
    },
    BrowserFailed {
        url: &'a str,
        message: &'a str,
    },
    DeviceCode {
        user_code: &'a str,
        verification_uri: &'a str,
        expires_in: u64,
        message: &'a str,
    },
    SignedIn {
        #[serde(flatten)]
        account: &'a Account,
    },
    Account {
        #[serde(flatten)]
        account: &'a Account,
        /// Seconds the current access token has left.
        access_token_expires_in: u64,
    },
    SignedOut {
        existed: bool,
    },
    PresenceCleared,
    PresenceNotCleared {
        message: String,
    },
    SignInFailed {
        reason: &'static str,
        message: String,
    },
    SignInRequired {
        reason: &'static str,
        #[serde(skip_serializing_if = "Option::is_none")]
        username: Option<&'a str>,
        message: String,
    },
}

pub(crate) fn m365() -> Result<Result<M365, M365Error>, AgentError> {
    let config = crate::load_config()?;
    Ok(M365::new(config.m365()))
}

pub(crate) async fn sign_in(device_code: bool) -> Result<ExitCode, AgentError> {
    let m365 = match m365()? {
        Ok(m365) => m365,
        Err(error) => return Ok(failed(error)),
    };
    let result = if device_code {
        match m365.identity().start_device_code().await {
            Ok(code) => {
                emit(&Line::DeviceCode {
                    user_code: &code.user_code,
                    verification_uri: &code.verification_uri,
                    expires_in: code.expires_in,
                    message: &code.message,
                });
                eprintln!("{}", code.message);
                m365.finish_device_code(&code).await
            }
            Err(error) => Err(error.into()),
        }
    } else {
        m365.sign_in_with_browser(|url| {
            match graph_client::browser::open(url) {
                Ok(()) => emit(&Line::BrowserOpened { url }),
                Err(message) => {
                    // Still listening: the user can open the page by hand on this machine.
                    emit(&Line::BrowserFailed { url, message: &message });
                    eprintln!("Open this page in a browser on this computer to sign in:\n{url}");
                }
            }
            Ok(())
        })
        .await
    };
    Ok(match result {
        Ok(session) => {
            emit(&Line::SignedIn { account: &session.account });
            ExitCode::SUCCESS
        }
        Err(error) => failed(error),
    })
}

pub(crate) async fn who_am_i() -> Result<ExitCode, AgentError> {
    let m365 = match m365()? {
        Ok(m365) => m365,
        Err(error) => return Ok(failed(error)),
    };
    Ok(match m365.resume().await {
        Ok(session) => {
            let left = session.expires_at.duration_since(SystemTime::now()).unwrap_or_default();
            emit(&Line::Account {
                account: &session.account,
                access_token_expires_in: left.as_secs(),
            });
            ExitCode::SUCCESS
        }
        Err(error) => failed(error),
    })
}

pub(crate) async fn sign_out() -> Result<ExitCode, AgentError> {
    let m365 = match m365()? {
        Ok(m365) => m365,
        Err(error) => return Ok(failed(error)),
    };
    // Teams must not keep showing this app's presence for someone who signed out. Best effort:
    // without a usable sign-in or network the session lapses by itself within its expiry.
    let cleared = tokio::time::timeout(Duration::from_secs(5), clear_presence(&m365)).await;
    match cleared {
        Ok(Ok(true)) => emit(&Line::PresenceCleared),
        Ok(Ok(false)) => {}
        Ok(Err(message)) => emit(&Line::PresenceNotCleared { message }),
        Err(_) => emit(&Line::PresenceNotCleared { message: "timed out after 5 s".into() }),
    }
    Ok(match m365.sign_out().await {
        Ok(existed) => {
            emit(&Line::SignedOut { existed });
            ExitCode::SUCCESS
        }
        Err(error) => failed(error),
    })
}

/// Ends this app's Teams presence session (`clearPresence`) for the stored account; false when
/// no account is signed in.
async fn clear_presence(m365: &M365) -> Result<bool, String> {
    let mut session = match m365.resume().await {
        Ok(session) => session,
        Err(M365Error::NotSignedIn) => return Ok(false),
        Err(error) => return Err(error.to_string()),
    };
    let graph = m365.identity().graph().await.map_err(|e| e.to_string())?;
    let token = m365.access_token(&mut session).await.map_err(|e| e.to_string())?;
    let client_id = &m365.identity().settings().client_id;
    graph
        .clear_presence(&token, &session.account.object_id, client_id)
        .await
        .map(|()| true)
        .map_err(|e| e.to_string())
}

/// Reports a failure and picks the exit code.
pub(crate) fn failed(error: M365Error) -> ExitCode {
    let message = error.to_string();
    let (reason, code) = match &error {
        M365Error::NotSignedIn => {
            emit(&Line::SignInRequired { reason: "not-signed-in", username: None, message });
            return ExitCode::from(EXIT_NOT_SIGNED_IN);
        }
        M365Error::SignInAgain { account, .. } => {
            let username = Some(account.username.as_str());
            emit(&Line::SignInRequired { reason: "sign-in-again", username, message });
            return ExitCode::from(EXIT_SIGN_IN_AGAIN);
        }
        M365Error::Corrupt(_) => {
            emit(&Line::SignInRequired { reason: "sign-in-again", username: None, message });
            return ExitCode::from(EXIT_SIGN_IN_AGAIN);
        }
        // During an interactive sign-in, `invalid_grant` means the code itself was refused.
        M365Error::Auth(AuthError::SignInAgain { .. }) => ("refused", 1),
        M365Error::Auth(AuthError::Declined(_)) => ("declined", 1),
        M365Error::Auth(AuthError::DeviceCodeExpired) => ("expired", 1),
        M365Error::Auth(AuthError::Blocked(_)) => ("blocked-by-policy", 1),
        M365Error::Auth(AuthError::IdToken(_)) => ("invalid-id-token", 1),
        M365Error::Auth(AuthError::Unreachable { .. }) => ("unreachable", 1),
        M365Error::Auth(AuthError::Settings { .. }) => ("settings", 1),
        M365Error::Auth(AuthError::BrowserTimeout(_)) => ("timed-out", 1),
        M365Error::Keyring(_) => ("keyring", 1),
        _ => ("failed", 1),
    };
    emit(&Line::SignInFailed { reason, message });
    ExitCode::from(code)
}

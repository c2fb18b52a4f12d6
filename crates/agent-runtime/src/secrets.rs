//! Secrets in the OS keyring: the SIP password and the Microsoft 365 sign-in (see
//! [`crate::m365`]). Secret Service (GNOME Keyring, KWallet) on Linux, the Keychain on macOS,
//! the Credential Manager on Windows.
//!
//! One scheme everywhere: service [`KEYRING_SERVICE`] (`switchboard`); for the SIP password,
//! account the address-of-record (`sip:alice@sip.example.com`).
//! `secret-tool lookup service switchboard username sip:alice@sip.example.com` finds it on
//! Linux. Automation may give the password in
//! [`crate::PASSWORD_ENV`] instead; it is never read from or written to a file.
//!
//! Keyring calls block (and a locked desktop keyring waits for the user), so they run on the
//! blocking pool with a time limit.

use std::time::Duration;

use sip_engine::Secret;

/// The keyring service name of every Switchboard secret.
pub const KEYRING_SERVICE: &str = "switchboard";

/// How long a keyring call may take (a silent D-Bus peer would otherwise hang us for ever).
const KEYRING_TIMEOUT: Duration = Duration::from_secs(5);

/// Why the keyring could not be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SecretError {
    #[error(
        "no OS keyring is available ({detail}); on Linux start a Secret Service such as \
         gnome-keyring (for the SIP password alone, SWITCHBOARD_SIP_PASSWORD can stand in)"
    )]
    NoKeyring { detail: String },
    #[error("the OS keyring is locked or refused access ({detail}); unlock it and try again")]
    Locked { detail: String },
    #[error("the OS keyring did not answer within {} s", KEYRING_TIMEOUT.as_secs())]
    Timeout,
    #[error("the OS keyring failed: {detail}")]
    Failed { detail: String },
}

impl From<keyring::Error> for SecretError {
    fn from(error: keyring::Error) -> Self {
        match &error {
            keyring::Error::NoDefaultStore => {
                // The store's own status says why (no D-Bus session, no service...).
                let detail = match keyring::Entry::store_status() {
                    Err(cause) => cause.to_string(),
                    Ok(_) => error.to_string(),
                };
                SecretError::NoKeyring { detail }
            }
            keyring::Error::PlatformFailure(_) => {
                SecretError::NoKeyring { detail: error.to_string() }
            }
            keyring::Error::NoStorageAccess(_) => SecretError::Locked { detail: error.to_string() },
            _ => SecretError::Failed { detail: error.to_string() },
        }
    }
}

async fn blocking<T: Send + 'static>(
    work: impl FnOnce() -> Result<T, keyring::Error> + Send + 'static,
) -> Result<T, SecretError> {
    let task = tokio::task::spawn_blocking(work);
    match tokio::time::timeout(KEYRING_TIMEOUT, task).await {
        Err(_) => Err(SecretError::Timeout),
        Ok(Err(join)) => Err(SecretError::Failed { detail: join.to_string() }),
        Ok(Ok(result)) => result.map_err(SecretError::from),
    }
}

/// The stored password of `aor`, or `None` when none is stored.
pub async fn sip_password(aor: &str) -> Result<Option<Secret>, SecretError> {
    Ok(secret(aor).await?.map(Secret::new))
}

/// Stores (or replaces) the password of `aor`.
pub async fn store_sip_password(aor: &str, password: &Secret) -> Result<(), SecretError> {
    store_secret(aor, password.expose()).await
}

/// Removes the password of `aor`; true when there was one.
pub async fn delete_sip_password(aor: &str) -> Result<bool, SecretError> {
    delete_secret(aor).await
}

/// The secret stored under `account` (service [`KEYRING_SERVICE`]), or `None`.
pub(crate) async fn secret(account: &str) -> Result<Option<String>, SecretError> {
    let account = account.to_owned();
    blocking(move || match keyring::Entry::new(KEYRING_SERVICE, &account)?.get_password() {
        Ok(value) => Ok(Some(value)),
        Err(keyring::Error::NoEntry) => Ok(None),
        Err(error) => Err(error),
    })
    .await
}

/// Stores (or replaces) the secret under `account`.
pub(crate) async fn store_secret(account: &str, value: &str) -> Result<(), SecretError> {
    let (account, value) = (account.to_owned(), value.to_owned());
    blocking(move || keyring::Entry::new(KEYRING_SERVICE, &account)?.set_password(&value)).await
}

/// Removes the secret under `account`; true when there was one.
pub(crate) async fn delete_secret(account: &str) -> Result<bool, SecretError> {
    let account = account.to_owned();
    blocking(move || match keyring::Entry::new(KEYRING_SERVICE, &account)?.delete_credential() {
        Ok(()) => Ok(true),
        Err(keyring::Error::NoEntry) => Ok(false),
        Err(error) => Err(error),
    })
    .await
}

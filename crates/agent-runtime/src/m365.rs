//! The Microsoft 365 sign-in kept across runs: the refresh token and account metadata in the OS
//! keyring, silent refresh, and the "sign in again" state.
//!
//! Storage scheme: one keyring item, service `switchboard`, account `m365:<client id>`, whose
//! secret is a JSON document ([`StoredSignIn`]): the authority, the account (name, UPN, object
//! and tenant ids), the granted scopes and the refresh token. Access tokens live only in memory
//! (they last about an hour and a refresh token gets new ones). Nothing goes to files or logs.
//!
//! Microsoft rotates the refresh token on every use, so each new one replaces the stored one
//! before it is relied on. When a refresh is refused (`invalid_grant`: revoked, expired, a
//! password change; or a claims challenge) the refresh token is dropped and the item keeps the
//! account and the reason: every later start reports "sign in again" at once, without asking
//! the identity platform again, until the user signs in interactively.

use std::time::{Duration, SystemTime};

use graph_client::{Account, AuthError, Identity, SignInSettings, Token, Tokens};
use serde::{Deserialize, Serialize};

use crate::secrets::{self, SecretError};

/// The keyring account of the sign-in for an app registration.
pub fn keyring_account(client_id: &str) -> String {
    format!("m365:{client_id}")
}

/// What the keyring item holds.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct StoredSignIn {
    pub version: u32,
    pub authority: String,
    pub account: Account,
    #[serde(default)]
    pub scopes: Vec<String>,
    /// `None` once the identity platform refused it.
    pub refresh_token: Option<Token>,
    /// Why the user must sign in again, when they must.
    #[serde(default)]
    pub sign_in_again: Option<String>,
    /// The claims challenge that came with it, for the next interactive sign-in.
    #[serde(default)]
    pub claims: Option<String>,
}

/// Why there is no usable sign-in.
#[derive(Debug, thiserror::Error)]
pub enum M365Error {
    #[error("not signed in to Microsoft 365; run `switchboard-cli signin`")]
    NotSignedIn,
    #[error("{} must sign in to Microsoft 365 again: {reason}", account.username)]
    SignInAgain { account: Account, reason: String },
    #[error(transparent)]
    Auth(#[from] AuthError),
    #[error(transparent)]
    Keyring(#[from] SecretError),
    #[error("the stored Microsoft 365 sign-in is unreadable ({0}); sign in again")]
    Corrupt(String),
}

/// Signs in, and keeps the sign-in in the keyring.
#[derive(Debug, Clone)]
pub struct M365 {
    identity: Identity,
}

/// A signed-in account with a current access token.
#[derive(Debug)]
pub struct Session {
    pub account: Account,
    access_token: Token,
    pub expires_at: SystemTime,
    refresh_token: Option<Token>,
}

/// An access token this close to expiry is renewed before use.
pub const REFRESH_MARGIN: Duration = Duration::from_secs(5 * 60);

impl M365 {
    pub fn new(settings: SignInSettings) -> Result<Self, M365Error> {
        Ok(Self { identity: Identity::new(settings)? })
    }

    pub fn identity(&self) -> &Identity {
        &self.identity
    }

    fn keyring_account(&self) -> String {
        keyring_account(&self.identity.settings().client_id)
    }

    /// The stored sign-in, if any.
    pub async fn stored(&self) -> Result<Option<StoredSignIn>, M365Error> {
        let Some(text) = secrets::secret(&self.keyring_account()).await? else {
            return Ok(None);
        };
        serde_json::from_str(&text).map(Some).map_err(|e| M365Error::Corrupt(e.to_string()))
    }

    /// Signs in through the system browser (`open` starts it on the URL) and stores the result.
    /// A pending claims challenge from the last refusal goes along.
    pub async fn sign_in_with_browser(
        &self,
        open: impl FnOnce(&str) -> Result<(), String>,
    ) -> Result<Session, M365Error> {
        let previous = self.stored().await.ok().flatten();
        let claims = previous.as_ref().and_then(|p| p.claims.clone());
        let hint = previous.as_ref().map(|p| p.account.username.clone());
        let tokens =
            self.identity.sign_in_with_browser(open, claims.as_deref(), hint.as_deref()).await?;
        self.keep(tokens).await
    }

    /// Finishes a device code sign-in started with `identity().start_device_code()` and
    /// stores the result.
    pub async fn finish_device_code(
        &self,
        code: &graph_client::device_code::DeviceCode,
    ) -> Result<Session, M365Error> {
        let tokens = self.identity.finish_device_code(code).await?;
        self.keep(tokens).await
    }

    /// The stored sign-in, refreshed: a current access token without asking the user.
    pub async fn resume(&self) -> Result<Session, M365Error> {
        let stored = self.stored().await?.ok_or(M365Error::NotSignedIn)?;
        let refresh_token = match (&stored.refresh_token, &stored.sign_in_again) {
            (Some(token), None) => token.clone(),
            (_, reason) => {
                return Err(M365Error::SignInAgain {
                    account: stored.account,
                    reason: reason.clone().unwrap_or_else(|| "no refresh token is stored".into()),
                });
            }
        };
        let mut session = Session {
            account: stored.account,
            access_token: Token::new(String::new()),
            expires_at: SystemTime::UNIX_EPOCH,
            refresh_token: Some(refresh_token),
        };
        self.refresh(&mut session).await?;
        Ok(session)
    }

    /// The session's access token, renewed first when it expires within [`REFRESH_MARGIN`].
    pub async fn access_token(&self, session: &mut Session) -> Result<Token, M365Error> {
        if SystemTime::now() + REFRESH_MARGIN >= session.expires_at {
            self.refresh(session).await?;
        }
        Ok(session.access_token.clone())
    }

    /// Forgets the sign-in on this machine; true when there was one.
    pub async fn sign_out(&self) -> Result<bool, M365Error> {
        Ok(secrets::delete_secret(&self.keyring_account()).await?)
    }

    async fn refresh(&self, session: &mut Session) -> Result<(), M365Error> {
        let refresh_token =
            session.refresh_token.clone().ok_or_else(|| M365Error::SignInAgain {
                account: session.account.clone(),
                reason: "no refresh token".into(),
            })?;
        match self.identity.refresh(&refresh_token, &session.account).await {
            Ok(mut tokens) => {
                // Microsoft always rotates it; a server that does not keeps the old one valid.
                tokens.refresh_token.get_or_insert(refresh_token);
                *session = self.keep(tokens).await?;
                Ok(())
            }
            Err(AuthError::SignInAgain { reason, claims }) => {
                // Remember the refusal so nothing retries with the dead token.
                let stored = StoredSignIn {
                    version: 1,
                    authority: self.identity.settings().authority.clone(),
                    account: session.account.clone(),
                    scopes: Vec::new(),
                    refresh_token: None,
                    sign_in_again: Some(reason.clone()),
                    claims,
                };
                self.store(&stored).await?;
                session.refresh_token = None;
                Err(M365Error::SignInAgain { account: session.account.clone(), reason })
            }
            Err(other) => Err(other.into()),
        }
    }

    /// Stores a fresh token set (the rotated refresh token first) and makes it the session.
    async fn keep(&self, tokens: Tokens) -> Result<Session, M365Error> {
        let stored = StoredSignIn {
            version: 1,
            authority: self.identity.settings().authority.clone(),
            account: tokens.account.clone(),
            scopes: tokens.scopes,
            refresh_token: tokens.refresh_token.clone(),
            sign_in_again: None,
            claims: None,
        };
        self.store(&stored).await?;
        Ok(Session {
            account: tokens.account,
            access_token: tokens.access_token,
            expires_at: tokens.expires_at,
            refresh_token: tokens.refresh_token,
        })
    }

    async fn store(&self, stored: &StoredSignIn) -> Result<(), M365Error> {
        let text = serde_json::to_string(stored).map_err(|e| M365Error::Corrupt(e.to_string()))?;
        Ok(secrets::store_secret(&self.keyring_account(), &text).await?)
    }
}

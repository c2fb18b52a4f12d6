//! The Microsoft 365 sign-in kept across runs: the refresh token and account metadata in the OS
//! keyring, silent refresh, and the "sign in again" state.
//!
//! Storage scheme, all under keyring service `switchboard`:
//! - account `m365:<client id>`: a JSON document ([`StoredSignIn`]): the authority, the
//!   account (name, UPN, object and tenant ids), the granted scopes, and which parts hold the
//!   refresh token;
//! - accounts `m365:<client id>/refresh-token/<generation>/<n>` (n from 1): the refresh token in
//!   parts of at most [`PART_CHARS`] characters. Windows' Credential Manager keeps at most 2560
//!   bytes (1280 UTF-16 characters) per item and Microsoft's refresh tokens can be longer.
//!   A new token is written under a new generation before the document points at it, and the
//!   old parts are deleted after, so a crash never leaves a document naming half a token.
//!
//! Access tokens live only in memory (they last about an hour and a refresh token gets new
//! ones). Nothing goes to files or logs.
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
    /// Where the refresh token is; `None` once the identity platform refused it.
    pub refresh_token: Option<TokenParts>,
    /// Why the user must sign in again, when they must.
    #[serde(default)]
    pub sign_in_again: Option<String>,
    /// The claims challenge that came with it, for the next interactive sign-in.
    #[serde(default)]
    pub claims: Option<String>,
}

/// The keyring items holding a refresh token.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TokenParts {
    pub generation: String,
    pub parts: usize,
}

/// The longest part of a refresh token kept in one keyring item.
pub const PART_CHARS: usize = 1000;

impl TokenParts {
    /// The keyring account of part `n` (from 1).
    pub fn account(&self, client_id: &str, n: usize) -> String {
        format!("{}/refresh-token/{}/{n}", keyring_account(client_id), self.generation)
    }
}

/// Splits `token` into parts of at most [`PART_CHARS`] characters (at least one part).
fn split(token: &str) -> Vec<String> {
    let chars: Vec<char> = token.chars().collect();
    let mut parts: Vec<String> = chars.chunks(PART_CHARS).map(|c| c.iter().collect()).collect();
    if parts.is_empty() {
        parts.push(String::new());
    }
    parts
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
    /// The permissions the tenant granted (the token response's `scope`).
    pub scopes: Vec<String>,
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

    /// Reads a stored refresh token back from its parts.
    async fn read_token(&self, parts: &TokenParts) -> Result<Token, M365Error> {
        let client_id = &self.identity.settings().client_id;
        let mut token = String::new();
        for n in 1..=parts.parts {
            let part = secrets::secret(&parts.account(client_id, n)).await?.ok_or_else(|| {
                M365Error::Corrupt(format!("part {n} of the refresh token is missing"))
            })?;
            token.push_str(&part);
        }
        Ok(Token::new(token))
    }

    async fn delete_token(&self, parts: &TokenParts) -> Result<(), M365Error> {
        let client_id = &self.identity.settings().client_id;
        for n in 1..=parts.parts {
            secrets::delete_secret(&parts.account(client_id, n)).await?;
        }
        Ok(())
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
        let (session, stored) = self.keep(tokens).await;
        stored.map(|()| session)
    }

    /// Finishes a device code sign-in started with `identity().start_device_code()` and
    /// stores the result.
    pub async fn finish_device_code(
        &self,
        code: &graph_client::device_code::DeviceCode,
    ) -> Result<Session, M365Error> {
        let tokens = self.identity.finish_device_code(code).await?;
        let (session, stored) = self.keep(tokens).await;
        stored.map(|()| session)
    }

    /// The stored sign-in, refreshed: a current access token without asking the user.
    pub async fn resume(&self) -> Result<Session, M365Error> {
        let stored = self.stored().await?.ok_or(M365Error::NotSignedIn)?;
        // A token Microsoft issued for one authority is never sent to another.
        if stored.authority != self.identity.settings().authority {
            return Err(M365Error::SignInAgain {
                account: stored.account,
                reason: format!(
                    "the sign-in authority changed from {} to {}",
                    stored.authority,
                    self.identity.settings().authority
                ),
            });
        }
        let refresh_token = match (&stored.refresh_token, &stored.sign_in_again) {
            (Some(parts), None) => self.read_token(parts).await?,
            (_, reason) => {
                return Err(M365Error::SignInAgain {
                    account: stored.account,
                    reason: reason.clone().unwrap_or_else(|| "no refresh token is stored".into()),
                });
            }
        };
        let mut session = Session {
            account: stored.account,
            scopes: stored.scopes,
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

    /// A new access token even when the current one looks valid: for after Graph refused it
    /// (revoked early, or this machine's clock is off).
    pub async fn renewed_token(&self, session: &mut Session) -> Result<Token, M365Error> {
        self.refresh(session).await?;
        Ok(session.access_token.clone())
    }

    /// Whether the tenant granted `permission` (a Graph scope, with or without its resource).
    pub fn granted(session: &Session, permission: &str) -> bool {
        session.scopes.iter().any(|s| {
            s.eq_ignore_ascii_case(permission)
                || s.rsplit_once('/').is_some_and(|(_, name)| name.eq_ignore_ascii_case(permission))
        })
    }

    /// Forgets the sign-in on this machine; true when there was one.
    pub async fn sign_out(&self) -> Result<bool, M365Error> {
        if let Ok(Some(StoredSignIn { refresh_token: Some(parts), .. })) = self.stored().await {
            self.delete_token(&parts).await?;
        }
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
                // The session moves on even if storing fails: the old token is dead already.
                let (new_session, stored) = self.keep(tokens).await;
                *session = new_session;
                stored
            }
            Err(AuthError::SignInAgain { reason, claims }) => {
                // Remember the refusal so nothing retries with the dead token.
                session.refresh_token = None;
                let previous = self.stored().await.ok().flatten();
                let stored = StoredSignIn {
                    version: 1,
                    authority: self.identity.settings().authority.clone(),
                    account: session.account.clone(),
                    scopes: previous.as_ref().map(|p| p.scopes.clone()).unwrap_or_default(),
                    refresh_token: None,
                    sign_in_again: Some(reason.clone()),
                    claims,
                };
                if let Err(error) =
                    self.store(&stored, previous.and_then(|p| p.refresh_token)).await
                {
                    tracing::warn!(%error, "could not record the refused sign-in");
                }
                Err(M365Error::SignInAgain { account: session.account.clone(), reason })
            }
            Err(other) => Err(other.into()),
        }
    }

    /// Makes a fresh token set the session and stores it (the rotated refresh token first).
    async fn keep(&self, tokens: Tokens) -> (Session, Result<(), M365Error>) {
        let session = Session {
            account: tokens.account.clone(),
            scopes: tokens.scopes.clone(),
            access_token: tokens.access_token,
            expires_at: tokens.expires_at,
            refresh_token: tokens.refresh_token.clone(),
        };
        let previous = self.stored().await.ok().flatten().and_then(|p| p.refresh_token);
        let result = self.store_token(tokens.refresh_token.as_ref()).await;
        let result = match result {
            Ok(parts) => {
                let stored = StoredSignIn {
                    version: 1,
                    authority: self.identity.settings().authority.clone(),
                    account: tokens.account,
                    scopes: tokens.scopes,
                    refresh_token: parts,
                    sign_in_again: None,
                    claims: None,
                };
                self.store(&stored, previous).await
            }
            Err(error) => Err(error),
        };
        (session, result)
    }

    /// Writes a refresh token's parts under a new generation.
    async fn store_token(&self, token: Option<&Token>) -> Result<Option<TokenParts>, M365Error> {
        let Some(token) = token else { return Ok(None) };
        let pieces = split(token.expose());
        let generation = {
            use rand::Rng as _;
            format!("{:08x}", rand::rng().random::<u32>())
        };
        let parts = TokenParts { generation, parts: pieces.len() };
        let client_id = &self.identity.settings().client_id;
        for (n, piece) in pieces.iter().enumerate() {
            secrets::store_secret(&parts.account(client_id, n + 1), piece).await?;
        }
        Ok(Some(parts))
    }

    /// Writes the document, then deletes the parts of the token it replaced.
    async fn store(
        &self,
        stored: &StoredSignIn,
        replaced: Option<TokenParts>,
    ) -> Result<(), M365Error> {
        let text = serde_json::to_string(stored).map_err(|e| M365Error::Corrupt(e.to_string()))?;
        secrets::store_secret(&self.keyring_account(), &text).await?;
        if let Some(old) = replaced.filter(|old| Some(old) != stored.refresh_token.as_ref()) {
            self.delete_token(&old).await?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_are_split_into_parts_that_fit_any_keyring() {
        let token: String = (0..2345).map(|i| char::from(b'A' + (i % 26) as u8)).collect();
        let parts = split(&token);
        assert_eq!(parts.iter().map(String::len).collect::<Vec<_>>(), [1000, 1000, 345]);
        assert_eq!(parts.concat(), token);
        assert_eq!(split("short"), ["short"]);
        assert_eq!(split(""), [""]);
    }

    #[test]
    fn part_accounts_name_the_generation() {
        let parts = TokenParts { generation: "0badcafe".into(), parts: 2 };
        assert_eq!(parts.account("abc", 2), "m365:abc/refresh-token/0badcafe/2");
    }
}

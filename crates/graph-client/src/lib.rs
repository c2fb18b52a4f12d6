//! Microsoft 365 sign-in for a public client: the authorization code flow with PKCE through
//! the system browser and a loopback redirect, and the device code flow, against the Microsoft
//! identity platform v2.0 (or anything that speaks its documented HTTP API, such as
//! `m365-emulator`).
//!
//! - [`pkce`], [`oauth`], [`id_token`] and [`device_code`] are pure: request values, answer
//!   parsing, token validation and the polling schedule, tested without a network.
//! - [`Identity`] drives them over HTTPS with `reqwest` (rustls with ring, the OS certificate
//!   verifier, the system proxy settings) and [`loopback`] receives the browser's redirect.
//!
//! Storage is not here: the caller keeps the refresh token (see `agent-runtime`'s keyring
//! store). See `docs/graph.md` for the flows, scopes and storage scheme.

use std::fmt;

use serde::{Deserialize, Serialize};

pub mod browser;
pub mod device_code;
pub mod dial;
pub mod graph;
pub mod id_token;
mod identity;
pub mod loopback;
pub mod oauth;
pub mod pkce;
pub mod presence;

pub use id_token::Account;
pub use identity::{AuthError, BROWSER_TIMEOUT, Identity, SignInSettings, Tokens};

/// An OAuth token or code: never printed, not even by `Debug`.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Token(String);

impl Token {
    pub fn new(value: impl Into<String>) -> Self {
        Self(value.into())
    }

    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Token {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Token(***)")
    }
}

/// The scopes every sign-in asks for besides the resource scopes: an ID token (`openid`,
/// `profile`) and a refresh token (`offline_access`).
pub const OIDC_SCOPES: [&str; 3] = ["openid", "profile", "offline_access"];

/// The Graph permissions Switchboard asks for by default: the signed-in user's profile, reading
/// colleagues' presence and basic profiles, and setting the user's own presence.
/// Scopes without a resource prefix are Microsoft Graph's.
pub const DEFAULT_SCOPES: [&str; 4] =
    ["User.Read", "User.ReadBasic.All", "Presence.Read.All", "Presence.ReadWrite"];

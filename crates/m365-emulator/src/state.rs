//! The state shared by the HTTP server and the control API.
//!
//! One mutex guards the identity state, the signing keys and the pending tamper, so a token
//! response is decided and signed atomically (a rotation cannot slip between deciding and
//! signing). Nothing slow happens under the lock: key generation runs before taking it.

use std::collections::HashMap;
use std::sync::{Mutex, MutexGuard, PoisonError};
use std::time::{Instant, SystemTime};

use crate::directory::{User, has_photo_by_default};
use crate::graph::GraphState;
use crate::graph::users;
use crate::identity::{Grant, Identity};
use crate::keys::KeySet;
use crate::tokens::{self, Issuer, PendingTamper, TokenResponse};

/// One request the emulator served, for tests to assert on (e.g. that the JWKS was fetched
/// again after a rotation, or how far apart device-code polls were).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RequestRecord {
    /// `GET`, `POST`, ...
    pub method: String,
    /// The path without the query, e.g. `/common/oauth2/v2.0/token`.
    pub path: String,
    /// The `grant_type` of a token request.
    pub grant_type: Option<String>,
    /// The response status.
    pub status: u16,
    /// When the request arrived (monotonic, so gaps between polls can be measured).
    pub at: Instant,
}

/// Mutable emulator state.
#[derive(Debug)]
pub(crate) struct State {
    pub(crate) identity: Identity,
    pub(crate) keys: KeySet,
    pub(crate) tamper: Option<PendingTamper>,
    /// Every token issued, by user object id, for [`crate::Emulator::issued_tokens`].
    pub(crate) issued: HashMap<String, Vec<String>>,
    /// Microsoft Graph: presence, throttling, photos, the presence clock.
    pub(crate) graph: GraphState,
}

impl State {
    /// Signs the tokens for `grant` (and stores its refresh token). A pending tamper applies
    /// to the first response that carries an ID token.
    ///
    /// The access token and the response's `scope` carry only the Graph permissions the admin
    /// consented to (like `.default`, but for named permissions too, where Microsoft would
    /// instead stop at a "Need admin approval" page). The refresh token remembers what was
    /// asked for, so a permission consented later appears on the next refresh.
    pub(crate) fn issue_tokens(
        &mut self,
        issuer: Issuer<'_>,
        grant: &Grant,
        now: SystemTime,
    ) -> TokenResponse {
        let lifetimes = self.identity.lifetimes().clone();
        let refresh_token = self.identity.issue_refresh_token(grant, now);
        let consented = self.identity.consented_permissions();
        let grant = &Grant { scopes: grant.scopes.restricted_to(consented), ..grant.clone() };
        let key = self.keys.current();
        let access_token = tokens::access_token(key, issuer, grant, lifetimes.access_token, now);
        let id_token = grant.scopes.openid.then(|| {
            let tamper = self.tamper.take();
            tokens::id_token(key, issuer, grant, lifetimes.id_token, now, tamper)
        });
        let issued = self.issued.entry(grant.user.id.clone()).or_default();
        issued.push(access_token.clone());
        issued.extend(id_token.iter().cloned());
        issued.extend(refresh_token.iter().cloned());
        TokenResponse {
            token_type: "Bearer".to_owned(),
            scope: grant.scopes.response_scope(),
            expires_in: lifetimes.access_token.as_secs(),
            ext_expires_in: lifetimes.access_token.as_secs(),
            access_token,
            refresh_token,
            id_token,
        }
    }

    /// Adds `n` synthetic users, numbered after the existing ones, every other one with a
    /// photo; returns them.
    pub(crate) fn add_synthetic_users(&mut self, n: usize) -> Vec<User> {
        let first = self.graph.synthetic_users + 1;
        let added: Vec<User> = (first..first + n).map(users::synthetic_user).collect();
        for (number, user) in (first..).zip(&added) {
            if has_photo_by_default(number) {
                self.graph.photos.insert(user.id.clone());
            }
        }
        self.graph.synthetic_users += n;
        self.identity.add_users(added.clone());
        added
    }
}

/// Everything the server threads and the [`crate::Emulator`] handle share.
#[derive(Debug)]
pub(crate) struct Shared {
    /// `http://127.0.0.1:PORT` or `https://...`, no trailing slash.
    pub(crate) base_url: String,
    pub(crate) tenant_id: String,
    state: Mutex<State>,
    requests: Mutex<Vec<RequestRecord>>,
}

impl Shared {
    pub(crate) fn new(base_url: String, tenant_id: String, state: State) -> Self {
        Shared { base_url, tenant_id, state: Mutex::new(state), requests: Mutex::new(Vec::new()) }
    }

    /// Locks the state. A panic while holding the lock leaves consistent-enough data for an
    /// emulator, so poisoning is ignored rather than cascading into every later request.
    pub(crate) fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// The issuer URLs of this emulator.
    pub(crate) fn issuer(&self) -> Issuer<'_> {
        Issuer { base_url: &self.base_url, tenant_id: &self.tenant_id }
    }

    pub(crate) fn record(&self, record: RequestRecord) {
        self.requests.lock().unwrap_or_else(PoisonError::into_inner).push(record);
    }

    pub(crate) fn requests(&self) -> Vec<RequestRecord> {
        self.requests.lock().unwrap_or_else(PoisonError::into_inner).clone()
    }

    pub(crate) fn clear_requests(&self) {
        self.requests.lock().unwrap_or_else(PoisonError::into_inner).clear();
    }
}

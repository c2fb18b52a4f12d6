//! The identity platform's state machine: who may get which tokens, and when.
//!
//! This is pure logic over in-memory state. It never reads the clock (every operation takes
//! `now`), never does I/O and never signs: it decides, and returns a [`Grant`] describing the
//! tokens to issue, or an [`AadError`]. The HTTP layer and the control API wrap it in one
//! mutex. The submodules hold the three grants: authorization codes (`codes`), refresh tokens
//! (`refresh`) and device codes (`device`).

mod codes;
mod device;
mod refresh;

use std::collections::{BTreeSet, HashMap, HashSet};
use std::time::{Duration, SystemTime};

use serde_json::Value;

use crate::aad_error::AadError;
use crate::directory::{App, TENANT_NAME, User};
use crate::error::ControlError;
use crate::scopes::Scopes;

pub(crate) use codes::CodeRequest;
pub(crate) use device::{Approval, DeviceStart};

/// How long each artefact lives.
#[derive(Debug, Clone)]
pub(crate) struct Lifetimes {
    pub(crate) access_token: Duration,
    pub(crate) id_token: Duration,
    /// Inactivity window: every redemption issues a new refresh token with a fresh window.
    pub(crate) refresh_token: Duration,
    pub(crate) auth_code: Duration,
    pub(crate) device_code: Duration,
    pub(crate) device_code_interval: Duration,
}

/// What the token endpoint is about to issue, as decided by the identity logic.
#[derive(Debug, Clone)]
pub(crate) struct Grant {
    pub(crate) user: User,
    pub(crate) client_id: String,
    pub(crate) scopes: Scopes,
    /// The authorize request's `nonce` (only for tokens from an authorization code).
    pub(crate) nonce: Option<String>,
    /// Whether the sign-in satisfied a step-up (claims) request.
    pub(crate) mfa: bool,
    /// The lineage of refresh tokens from one sign-in, revoked together on code replay.
    pub(crate) family: String,
    /// When the user signed in interactively.
    pub(crate) auth_time: SystemTime,
}

/// Per-user state.
#[derive(Debug, Default)]
struct UserState {
    /// Like Entra's `signInSessionsValidFromDateTime`: refresh tokens issued before it fail.
    tokens_valid_from: Option<SystemTime>,
    /// A pending Conditional Access claims challenge (JSON).
    claims_challenge: Option<String>,
    /// Graph permissions the user has consented to for the app.
    consented: BTreeSet<String>,
}

/// The emulated tenant's mutable state.
#[derive(Debug)]
pub(crate) struct Identity {
    app: App,
    users: Vec<User>,
    lifetimes: Lifetimes,
    user_state: HashMap<String, UserState>,
    codes: HashMap<String, codes::AuthCode>,
    refresh_tokens: HashMap<String, refresh::RefreshRecord>,
    devices: HashMap<String, device::DeviceAuthorization>,
    /// Normalised user code → device code.
    user_codes: HashMap<String, String>,
    revoked_families: HashSet<String>,
    block_device_code_flow: bool,
    forced_slow_downs: u32,
}

impl Identity {
    /// A tenant with `app` registered and `users` in its directory.
    pub(crate) fn new(app: App, users: Vec<User>, lifetimes: Lifetimes) -> Self {
        Identity {
            app,
            users,
            lifetimes,
            user_state: HashMap::new(),
            codes: HashMap::new(),
            refresh_tokens: HashMap::new(),
            devices: HashMap::new(),
            user_codes: HashMap::new(),
            revoked_families: HashSet::new(),
            block_device_code_flow: false,
            forced_slow_downs: 0,
        }
    }

    /// The registered application.
    pub(crate) fn app(&self) -> &App {
        &self.app
    }

    /// The directory's users.
    pub(crate) fn users(&self) -> &[User] {
        &self.users
    }

    /// Adds users to the directory (synthetic users for large-directory tests).
    pub(crate) fn add_users(&mut self, users: impl IntoIterator<Item = User>) {
        self.users.extend(users);
    }

    /// The Graph permissions the admin consented to for the app.
    pub(crate) fn consented_permissions(&self) -> &[String] {
        &self.app.consented_permissions
    }

    /// Replaces the admin-consented Graph permissions.
    pub(crate) fn set_consented_permissions(&mut self, permissions: Vec<String>) {
        self.app.consented_permissions = permissions;
    }

    /// The configured lifetimes.
    pub(crate) fn lifetimes(&self) -> &Lifetimes {
        &self.lifetimes
    }

    /// A user by UPN (case-insensitive) or object id.
    pub(crate) fn find_user(&self, login: &str) -> Option<&User> {
        let login = login.trim();
        self.users
            .iter()
            .find(|u| u.user_principal_name.eq_ignore_ascii_case(login) || u.id == login)
    }

    fn user_or_error(&self, login: &str) -> Result<User, ControlError> {
        self.find_user(login).cloned().ok_or_else(|| ControlError::UnknownUser(login.to_owned()))
    }

    fn user_by_id(&self, oid: &str) -> Option<User> {
        self.users.iter().find(|u| u.id == oid).cloned()
    }

    /// Validates `client_id`: missing → AADSTS900144, unknown → AADSTS700016.
    pub(crate) fn check_client(&self, client_id: Option<&str>) -> Result<(), AadError> {
        let client_id = client_id
            .filter(|c| !c.is_empty())
            .ok_or_else(|| AadError::missing_parameter("client_id"))?;
        if client_id.eq_ignore_ascii_case(&self.app.client_id) {
            Ok(())
        } else {
            Err(AadError::unknown_client(client_id, TENANT_NAME))
        }
    }

    /// Parses a scope string against the app's configured permissions.
    pub(crate) fn parse_scopes(&self, raw: &str) -> Result<Scopes, AadError> {
        Scopes::parse(raw, &self.app.configured_permissions)
    }

    /// Records that `user` consented to `scopes` for the app.
    fn record_consent(&mut self, oid: &str, scopes: &Scopes) {
        let state = self.user_state.entry(oid.to_owned()).or_default();
        state.consented.extend(scopes.graph.iter().cloned());
    }

    // ----- control ---------------------------------------------------------------------------

    /// Turns "Allow public client flows" on or off.
    pub(crate) fn set_allow_public_client_flows(&mut self, allow: bool) {
        self.app.allow_public_client_flows = allow;
    }

    /// Makes Conditional Access block (or stop blocking) device-code sign-ins.
    pub(crate) fn set_block_device_code_flow(&mut self, block: bool) {
        self.block_device_code_flow = block;
    }

    /// Whether Conditional Access blocks device-code sign-ins.
    pub(crate) fn device_code_flow_blocked(&self) -> bool {
        self.block_device_code_flow
    }

    /// The next `n` device-code polls answer `slow_down`.
    pub(crate) fn force_slow_down(&mut self, n: u32) {
        self.forced_slow_downs = n;
    }

    /// Revokes every refresh token of the user issued before `now` (Graph's
    /// `revokeSignInSessions`).
    pub(crate) fn revoke_user(&mut self, login: &str, now: SystemTime) -> Result<(), ControlError> {
        let user = self.user_or_error(login)?;
        self.user_state.entry(user.id).or_default().tokens_valid_from = Some(now);
        Ok(())
    }

    /// Makes the user's next refresh answer `interaction_required` with `claims`, until an
    /// interactive sign-in carries a `claims` parameter containing it.
    pub(crate) fn require_claims_challenge(
        &mut self,
        login: &str,
        claims: &str,
    ) -> Result<(), ControlError> {
        let parsed: Value =
            serde_json::from_str(claims).map_err(|e| ControlError::InvalidClaims(e.to_string()))?;
        if !parsed.is_object() {
            return Err(ControlError::InvalidClaims("not an object".to_owned()));
        }
        let user = self.user_or_error(login)?;
        self.user_state.entry(user.id).or_default().claims_challenge = Some(claims.to_owned());
        Ok(())
    }

    /// Clears the user's claims challenge if `claims` (an authorize request's parameter)
    /// contains it. Returns whether a step-up happened (any `claims` counts as one).
    fn satisfy_claims(&mut self, oid: &str, claims: Option<&str>) -> bool {
        let Some(requested) = claims.and_then(|c| serde_json::from_str::<Value>(c).ok()) else {
            return false;
        };
        if let Some(state) = self.user_state.get_mut(oid) {
            let satisfied = state
                .claims_challenge
                .as_deref()
                .and_then(|c| serde_json::from_str::<Value>(c).ok())
                .is_some_and(|challenge| json_contains(&requested, &challenge));
            if satisfied {
                state.claims_challenge = None;
            }
        }
        true
    }
}

/// Whether `haystack` contains `needle`: every member of a needle object is in the haystack
/// object, every element of a needle array is in the haystack array, scalars are equal. A
/// client may merge its own claims (`xms_cc`) into the challenge, so equality is too strict.
fn json_contains(haystack: &Value, needle: &Value) -> bool {
    match (haystack, needle) {
        (Value::Object(h), Value::Object(n)) => {
            n.iter().all(|(k, nv)| h.get(k).is_some_and(|hv| json_contains(hv, nv)))
        }
        (Value::Array(h), Value::Array(n)) => {
            n.iter().all(|nv| h.iter().any(|hv| json_contains(hv, nv)))
        }
        (h, n) => h == n,
    }
}

#[cfg(test)]
pub(crate) mod test_support {
    //! A tenant and a clock for the unit tests.

    use std::time::{Duration, SystemTime};

    use super::{Identity, Lifetimes};
    use crate::clock::from_unix_seconds;
    use crate::directory::{App, sample_users};

    /// 2023-11-14 22:13:20Z.
    pub(crate) fn t0() -> SystemTime {
        from_unix_seconds(1_700_000_000)
    }

    pub(crate) fn secs(n: u64) -> Duration {
        Duration::from_secs(n)
    }

    pub(crate) fn identity() -> Identity {
        Identity::new(
            App::switchboard(true),
            sample_users(),
            Lifetimes {
                access_token: secs(3599),
                id_token: secs(3600),
                refresh_token: secs(90 * 86_400),
                auth_code: secs(600),
                device_code: secs(900),
                device_code_interval: secs(5),
            },
        )
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::test_support::*;
    use super::*;

    #[test]
    fn containment_allows_merged_client_claims() {
        let challenge =
            json!({"access_token": {"capolids": {"essential": true, "values": ["p1"]}}});
        let merged = json!({"access_token": {
            "capolids": {"essential": true, "values": ["p0", "p1"]},
            "xms_cc": {"values": ["cp1"]}
        }});
        assert!(json_contains(&merged, &challenge));
        assert!(!json_contains(
            &json!({"access_token": {"xms_cc": {"values": ["cp1"]}}}),
            &challenge
        ));
    }

    #[test]
    fn client_and_user_lookup() {
        let mut id = identity();
        assert!(id.check_client(Some(crate::directory::CLIENT_ID)).is_ok());
        assert_eq!(id.check_client(None).expect_err("missing").code, 900_144);
        assert_eq!(id.check_client(Some("nope")).expect_err("unknown").code, 700_016);
        assert!(id.find_user("adelev@CONTOSO.example").is_some());
        assert!(id.require_claims_challenge("AdeleV@contoso.example", "[1]").is_err());
        assert_eq!(
            id_err(identity().revoke_user("ghost@contoso.example", t0())),
            ControlError::UnknownUser("ghost@contoso.example".to_owned())
        );
    }

    fn id_err(r: Result<(), ControlError>) -> ControlError {
        r.expect_err("should fail")
    }
}

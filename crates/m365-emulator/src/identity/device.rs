//! The device authorization grant (<https://learn.microsoft.com/entra/identity-platform/v2-oauth2-device-code>,
//! RFC 8628).
//!
//! A device code is pending until the user approves or declines it on `/devicelogin` (or via
//! the control API), then yields tokens exactly once. Polling is policed as RFC 8628 §3.5
//! says: a poll sooner than `interval` after the previous poll of the same device code answers
//! `slow_down`, and from then on the emulator expects the interval plus five seconds, as the
//! client must. "Allow public client flows" off fails both the device-code request and the
//! polls (AADSTS7000218); Conditional Access can block the flow (AADSTS53003).

use std::time::{Duration, SystemTime};

use super::{Grant, Identity};
use crate::aad_error::AadError;
use crate::error::ControlError;
use crate::ids::{guid, normalise_user_code, opaque, user_code};
use crate::scopes::Scopes;

/// RFC 8628 §3.5: each `slow_down` adds five seconds to the interval.
const SLOW_DOWN_STEP: Duration = Duration::from_secs(5);

/// The device authorization response's variable parts.
#[derive(Debug, Clone)]
pub(crate) struct DeviceStart {
    pub(crate) device_code: String,
    pub(crate) user_code: String,
    pub(crate) expires_in: u64,
    pub(crate) interval: u64,
}

/// Where a device authorization stands.
#[derive(Debug, Clone, PartialEq, Eq)]
enum DeviceStatus {
    Pending,
    Approved { user_oid: String, at: SystemTime },
    Declined,
    Blocked,
    Redeemed,
}

/// How an approval ended, for the device login page.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Approval {
    /// The device will get tokens.
    Approved,
    /// Conditional Access blocks the device-code flow: the device gets AADSTS53003.
    Blocked,
}

/// One device authorization.
#[derive(Debug)]
pub(super) struct DeviceAuthorization {
    client_id: String,
    scopes: Scopes,
    user_code: String,
    expires_at: SystemTime,
    interval: Duration,
    last_poll: Option<SystemTime>,
    status: DeviceStatus,
}

impl Identity {
    /// Starts a device authorization (`POST /devicecode`).
    pub(crate) fn start_device(
        &mut self,
        client_id: &str,
        scope: &str,
        now: SystemTime,
    ) -> Result<DeviceStart, AadError> {
        if !self.app.allow_public_client_flows {
            return Err(AadError::public_client_flows_disabled());
        }
        let scopes = self.parse_scopes(scope)?;
        let device_code = opaque(96);
        let user_code = loop {
            let candidate = user_code();
            if !self.user_codes.contains_key(&candidate) {
                break candidate;
            }
        };
        let interval = self.lifetimes.device_code_interval;
        self.devices.insert(
            device_code.clone(),
            DeviceAuthorization {
                client_id: client_id.to_owned(),
                scopes,
                user_code: user_code.clone(),
                expires_at: now + self.lifetimes.device_code,
                interval,
                last_poll: None,
                status: DeviceStatus::Pending,
            },
        );
        self.user_codes.insert(user_code.clone(), device_code.clone());
        Ok(DeviceStart {
            device_code,
            user_code,
            expires_in: self.lifetimes.device_code.as_secs(),
            interval: interval.as_secs(),
        })
    }

    /// One poll of the token endpoint with `grant_type=...:device_code`.
    pub(crate) fn poll_device(
        &mut self,
        client_id: &str,
        device_code: &str,
        now: SystemTime,
    ) -> Result<Grant, AadError> {
        if !self.app.allow_public_client_flows {
            return Err(AadError::public_client_flows_disabled());
        }
        let blocked = self.block_device_code_flow;
        let forced = self.forced_slow_downs > 0;
        let dev = self.devices.get_mut(device_code).ok_or_else(AadError::bad_verification_code)?;
        if !dev.client_id.eq_ignore_ascii_case(client_id) {
            return Err(AadError::bad_verification_code());
        }
        if dev.status == DeviceStatus::Redeemed {
            return Err(AadError::device_code_redeemed());
        }
        if now >= dev.expires_at {
            return Err(AadError::device_code_expired());
        }
        let too_soon = dev.last_poll.is_some_and(|last| now < last + dev.interval);
        dev.last_poll = Some(now);
        if forced || too_soon {
            dev.interval += SLOW_DOWN_STEP;
            let interval = dev.interval.as_secs();
            if forced {
                self.forced_slow_downs -= 1;
            }
            return Err(AadError::slow_down(interval));
        }
        let (user_oid, at) = match &dev.status {
            DeviceStatus::Pending => return Err(AadError::authorization_pending()),
            DeviceStatus::Declined => return Err(AadError::authorization_declined()),
            DeviceStatus::Blocked => return Err(AadError::blocked_by_conditional_access()),
            DeviceStatus::Redeemed => return Err(AadError::device_code_redeemed()),
            DeviceStatus::Approved { user_oid, at } => (user_oid.clone(), *at),
        };
        if blocked {
            dev.status = DeviceStatus::Blocked;
            return Err(AadError::blocked_by_conditional_access());
        }
        dev.status = DeviceStatus::Redeemed;
        let scopes = dev.scopes.clone();
        let client_id = dev.client_id.clone();
        let user = self.user_by_id(&user_oid).ok_or_else(AadError::bad_verification_code)?;
        Ok(Grant {
            user,
            client_id,
            scopes,
            nonce: None,
            mfa: false,
            family: guid(),
            auth_time: at,
        })
    }

    fn pending_device(
        &mut self,
        typed_user_code: &str,
        now: SystemTime,
    ) -> Result<&mut DeviceAuthorization, ControlError> {
        let key = normalise_user_code(typed_user_code);
        let dev = self
            .user_codes
            .get(&key)
            .and_then(|dc| self.devices.get_mut(dc))
            .ok_or_else(|| ControlError::UnknownUserCode(typed_user_code.to_owned()))?;
        if now >= dev.expires_at {
            return Err(ControlError::DeviceCodeExpired(dev.user_code.clone()));
        }
        if dev.status != DeviceStatus::Pending {
            return Err(ControlError::DeviceCodeNotPending(dev.user_code.clone()));
        }
        Ok(dev)
    }

    /// The user signs in as `login` and approves the device (page or control API).
    pub(crate) fn approve_device(
        &mut self,
        typed_user_code: &str,
        login: &str,
        now: SystemTime,
    ) -> Result<Approval, ControlError> {
        let user = self.user_or_error(login)?;
        let blocked = self.block_device_code_flow;
        let dev = self.pending_device(typed_user_code, now)?;
        let scopes = dev.scopes.clone();
        if blocked {
            dev.status = DeviceStatus::Blocked;
            return Ok(Approval::Blocked);
        }
        dev.status = DeviceStatus::Approved { user_oid: user.id.clone(), at: now };
        self.record_consent(&user.id, &scopes);
        Ok(Approval::Approved)
    }

    /// The user declines the device.
    pub(crate) fn decline_device(
        &mut self,
        typed_user_code: &str,
        now: SystemTime,
    ) -> Result<(), ControlError> {
        self.pending_device(typed_user_code, now)?.status = DeviceStatus::Declined;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::directory::CLIENT_ID;
    use crate::identity::test_support::*;

    const ADELE: &str = "AdeleV@contoso.example";

    fn code(err: Result<Grant, AadError>) -> (&'static str, u32) {
        let e = err.expect_err("should fail");
        (e.error, e.code)
    }

    #[test]
    fn pending_then_approved_then_redeemed_once() {
        let mut id = identity();
        let start =
            id.start_device(CLIENT_ID, "openid offline_access User.Read", t0()).expect("start");
        assert_eq!((start.expires_in, start.interval), (900, 5));
        let dc = start.device_code.clone();
        assert_eq!(
            code(id.poll_device(CLIENT_ID, &dc, t0() + secs(5))),
            ("authorization_pending", 70_016)
        );
        // Lower-case and a dash are fine on the page.
        let typed = format!("{}-{}", &start.user_code[..4], start.user_code[4..].to_lowercase());
        assert_eq!(id.approve_device(&typed, ADELE, t0() + secs(6)), Ok(Approval::Approved));
        assert!(id.approve_device(&start.user_code, ADELE, t0() + secs(7)).is_err());
        let grant = id.poll_device(CLIENT_ID, &dc, t0() + secs(10)).expect("tokens");
        assert_eq!(grant.user.user_principal_name, ADELE);
        assert_eq!(
            code(id.poll_device(CLIENT_ID, &dc, t0() + secs(15))),
            ("invalid_grant", 70_000)
        );
        assert_eq!(
            code(id.poll_device(CLIENT_ID, "nope", t0())),
            ("bad_verification_code", 70_018)
        );
        assert_eq!(code(id.poll_device("other", &dc, t0())), ("bad_verification_code", 70_018));
    }

    #[test]
    fn polling_too_fast_slows_down_by_five_seconds() {
        let mut id = identity();
        let dc = id.start_device(CLIENT_ID, "User.Read", t0()).expect("start").device_code;
        // The first poll may come at once; the next must wait 5 s.
        assert_eq!(code(id.poll_device(CLIENT_ID, &dc, t0())).0, "authorization_pending");
        assert_eq!(code(id.poll_device(CLIENT_ID, &dc, t0() + secs(4))).0, "slow_down");
        // Now 10 s are expected since that poll.
        assert_eq!(code(id.poll_device(CLIENT_ID, &dc, t0() + secs(13))).0, "slow_down");
        assert_eq!(
            code(id.poll_device(CLIENT_ID, &dc, t0() + secs(28))).0,
            "authorization_pending"
        );
        // Forced slow-downs apply regardless of timing.
        id.force_slow_down(2);
        assert_eq!(code(id.poll_device(CLIENT_ID, &dc, t0() + secs(100))).0, "slow_down");
        assert_eq!(code(id.poll_device(CLIENT_ID, &dc, t0() + secs(200))).0, "slow_down");
        assert_eq!(
            code(id.poll_device(CLIENT_ID, &dc, t0() + secs(300))).0,
            "authorization_pending"
        );
    }

    #[test]
    fn declined_expired_blocked_and_disabled() {
        let mut id = identity();
        let s = id.start_device(CLIENT_ID, "User.Read", t0()).expect("start");
        id.decline_device(&s.user_code, t0()).expect("pending");
        assert_eq!(
            code(id.poll_device(CLIENT_ID, &s.device_code, t0())),
            ("authorization_declined", 70_000)
        );

        let s = id.start_device(CLIENT_ID, "User.Read", t0()).expect("start");
        assert_eq!(
            code(id.poll_device(CLIENT_ID, &s.device_code, t0() + secs(900))),
            ("expired_token", 70_020)
        );
        assert_eq!(
            id.approve_device(&s.user_code, ADELE, t0() + secs(901)),
            Err(ControlError::DeviceCodeExpired(s.user_code.clone()))
        );

        id.set_block_device_code_flow(true);
        let s = id.start_device(CLIENT_ID, "User.Read", t0()).expect("start");
        assert_eq!(id.approve_device(&s.user_code, ADELE, t0()), Ok(Approval::Blocked));
        assert_eq!(
            code(id.poll_device(CLIENT_ID, &s.device_code, t0())),
            ("invalid_grant", 53_003)
        );
        id.set_block_device_code_flow(false);

        id.set_allow_public_client_flows(false);
        let e = id.start_device(CLIENT_ID, "User.Read", t0()).expect_err("disabled");
        assert_eq!((e.status, e.error, e.code), (401, "invalid_client", 7_000_218));
        assert_eq!(
            code(id.poll_device(CLIENT_ID, &s.device_code, t0())),
            ("invalid_client", 7_000_218)
        );
    }
}

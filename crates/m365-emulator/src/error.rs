//! Errors of the public Rust API (the control API and access-token validation).
//!
//! Protocol errors seen by HTTP clients are not here: they are AADSTS responses, built in
//! `aad_error`.

/// A control-API call could not be carried out.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ControlError {
    /// No user with this user principal name (or object id) in the directory.
    #[error("no user '{0}' in the directory")]
    UnknownUser(String),
    /// No device authorization has this user code.
    #[error("no device authorization with user code '{0}'")]
    UnknownUserCode(String),
    /// The device code behind this user code has expired.
    #[error("the device code for user code '{0}' has expired")]
    DeviceCodeExpired(String),
    /// The device authorization was already approved or declined.
    #[error("the device authorization for user code '{0}' was already completed")]
    DeviceCodeNotPending(String),
    /// A claims challenge must be a JSON object.
    #[error("the claims challenge is not a JSON object: {0}")]
    InvalidClaims(String),
    /// A scope string the emulator rejects (AADSTS70011 over HTTP).
    #[error("invalid scope: {0}")]
    InvalidScope(String),
    /// An availability/activity pair the operation does not accept.
    #[error("unsupported presence combination: {0}")]
    InvalidPresence(String),
}

/// Why [`crate::Emulator::validate_access_token`] rejected a token.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TokenValidationError {
    /// Not a compact JWS with JSON header and claims.
    #[error("the token is not a well-formed JWT")]
    Malformed,
    /// The header's `alg` is not `RS256`.
    #[error("unsupported signing algorithm")]
    UnsupportedAlgorithm,
    /// The `kid` is not (or no longer) published in the JWKS.
    #[error("signing key '{0}' is not published")]
    UnknownKey(String),
    /// The signature does not verify.
    #[error("the signature does not verify")]
    BadSignature,
    /// `aud` is not Microsoft Graph.
    #[error("the audience '{0}' is not Microsoft Graph")]
    WrongAudience(String),
    /// `iss` is not this emulator's tenant.
    #[error("the issuer '{0}' is not this tenant")]
    WrongIssuer(String),
    /// `exp` has passed.
    #[error("the token has expired")]
    Expired,
    /// `nbf` is in the future.
    #[error("the token is not valid yet")]
    NotYetValid,
    /// `oid` names no user in the directory.
    #[error("the token's user '{0}' is not in the directory")]
    UnknownUser(String),
}

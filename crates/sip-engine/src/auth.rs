//! HTTP Digest authentication for SIP (RFC 3261 §22, RFC 7616, RFC 8760).
//!
//! The UAC side only: read a `WWW-Authenticate` or `Proxy-Authenticate` challenge and answer it
//! with credentials. MD5 and SHA-256 (and their `-sess` forms) with `qop=auth` or no qop are
//! supported; a challenge that only offers `qop=auth-int` is refused with
//! [`AuthError::AuthIntOnly`] rather than answered wrongly.

use std::fmt::{self, Write as _};

use md5::Md5;
use sha2::{Digest as _, Sha256};

/// A password or other secret: never printed, not even by `Debug`.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    pub fn new(value: impl Into<String>) -> Self {
        Self(value.into())
    }

    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(***)")
    }
}

/// A user name and password for digest authentication.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Credentials {
    pub username: String,
    pub password: Secret,
}

/// Digest algorithms (RFC 7616 §3.3, RFC 8760 §2).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Algorithm {
    Md5,
    Md5Sess,
    Sha256,
    Sha256Sess,
}

impl Algorithm {
    fn parse(token: &str) -> Option<Self> {
        Some(match token.to_ascii_uppercase().as_str() {
            "MD5" => Algorithm::Md5,
            "MD5-SESS" => Algorithm::Md5Sess,
            "SHA-256" => Algorithm::Sha256,
            "SHA-256-SESS" => Algorithm::Sha256Sess,
            _ => return None,
        })
    }

    fn name(self) -> &'static str {
        match self {
            Algorithm::Md5 => "MD5",
            Algorithm::Md5Sess => "MD5-sess",
            Algorithm::Sha256 => "SHA-256",
            Algorithm::Sha256Sess => "SHA-256-sess",
        }
    }

    fn hash(self, data: &str) -> String {
        match self {
            Algorithm::Md5 | Algorithm::Md5Sess => hex(&Md5::digest(data.as_bytes())),
            Algorithm::Sha256 | Algorithm::Sha256Sess => hex(&Sha256::digest(data.as_bytes())),
        }
    }

    fn is_session(self) -> bool {
        matches!(self, Algorithm::Md5Sess | Algorithm::Sha256Sess)
    }
}

fn hex(bytes: &[u8]) -> String {
    let mut out = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        let _ = write!(out, "{b:02x}");
    }
    out
}

/// Why a challenge could not be answered.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AuthError {
    #[error("the challenge is not a Digest challenge")]
    NotDigest,
    #[error("the challenge has no {0}")]
    Missing(&'static str),
    #[error("unsupported digest algorithm {0}")]
    Algorithm(String),
    #[error("the challenge offers only qop=auth-int, which is not supported")]
    AuthIntOnly,
}

/// A parsed Digest challenge.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Challenge {
    pub realm: String,
    pub nonce: String,
    pub opaque: Option<String>,
    pub algorithm: Algorithm,
    /// True when the server offered `qop=auth` (we then always use it).
    pub qop_auth: bool,
    /// RFC 7616 §3.3: the nonce expired but the credentials were right: retry without asking.
    pub stale: bool,
}

impl Challenge {
    /// Parses one `WWW-Authenticate` / `Proxy-Authenticate` value.
    pub fn parse(value: &str) -> Result<Self, AuthError> {
        let value = value.trim();
        let rest = value
            .get(..6)
            .filter(|scheme| scheme.eq_ignore_ascii_case("digest"))
            .map(|_| &value[6..])
            .ok_or(AuthError::NotDigest)?;
        let params = auth_params(rest);
        let get = |name: &str| {
            params.iter().find(|(k, _)| k.eq_ignore_ascii_case(name)).map(|(_, v)| v.clone())
        };
        let realm = get("realm").ok_or(AuthError::Missing("realm"))?;
        let nonce = get("nonce").ok_or(AuthError::Missing("nonce"))?;
        let algorithm = match get("algorithm") {
            None => Algorithm::Md5,
            Some(a) => Algorithm::parse(&a).ok_or(AuthError::Algorithm(a))?,
        };
        let qop = get("qop");
        let qops: Vec<String> =
            qop.iter().flat_map(|q| q.split(',')).map(|q| q.trim().to_ascii_lowercase()).collect();
        let qop_auth = qops.iter().any(|q| q == "auth");
        if !qops.is_empty() && !qop_auth {
            return Err(AuthError::AuthIntOnly);
        }
        let stale = get("stale").is_some_and(|s| s.eq_ignore_ascii_case("true"));
        Ok(Self { realm, nonce, opaque: get("opaque"), algorithm, qop_auth, stale })
    }

    /// The `Authorization` / `Proxy-Authorization` value for a request.
    ///
    /// `nonce_count` counts the requests made with this nonce (from 1); `cnonce` is a fresh
    /// random value from the caller.
    pub fn answer(
        &self,
        credentials: &Credentials,
        method: &str,
        uri: &str,
        nonce_count: u32,
        cnonce: &str,
    ) -> String {
        let alg = self.algorithm;
        let mut ha1 = alg.hash(&format!(
            "{}:{}:{}",
            credentials.username,
            self.realm,
            credentials.password.expose()
        ));
        if alg.is_session() {
            // RFC 7616 §3.4.2: A1 for -sess adds the nonce and cnonce.
            ha1 = alg.hash(&format!("{ha1}:{}:{cnonce}", self.nonce));
        }
        let ha2 = alg.hash(&format!("{method}:{uri}"));
        let nc = format!("{nonce_count:08x}");
        let response = if self.qop_auth {
            alg.hash(&format!("{ha1}:{}:{nc}:{cnonce}:auth:{ha2}", self.nonce))
        } else {
            alg.hash(&format!("{ha1}:{}:{ha2}", self.nonce))
        };
        let mut out = format!(
            "Digest username=\"{}\", realm=\"{}\", nonce=\"{}\", uri=\"{uri}\", response=\"{response}\", algorithm={}",
            quote(&credentials.username),
            quote(&self.realm),
            quote(&self.nonce),
            alg.name()
        );
        if self.qop_auth || alg.is_session() {
            let _ = write!(out, ", cnonce=\"{}\"", quote(cnonce));
        }
        if self.qop_auth {
            let _ = write!(out, ", qop=auth, nc={nc}");
        }
        if let Some(opaque) = &self.opaque {
            let _ = write!(out, ", opaque=\"{}\"", quote(opaque));
        }
        out
    }
}

/// Escapes a value for a quoted-string (RFC 3261 §25.1).
fn quote(value: &str) -> String {
    value.replace('\\', "\\\\").replace('"', "\\\"")
}

/// Splits `k=v, k="v, with comma", ...` into pairs, unquoting values.
fn auth_params(s: &str) -> Vec<(String, String)> {
    let mut out = vec![];
    let mut chars = s.chars().peekable();
    loop {
        while chars.peek().is_some_and(|c| c.is_whitespace() || *c == ',') {
            chars.next();
        }
        let key: String = chars.by_ref().take_while(|c| *c != '=').collect();
        if key.trim().is_empty() {
            return out;
        }
        while chars.peek().is_some_and(|c| c.is_whitespace()) {
            chars.next();
        }
        let mut value = String::new();
        if chars.peek() == Some(&'"') {
            chars.next();
            while let Some(c) = chars.next() {
                match c {
                    '\\' => value.extend(chars.next()),
                    '"' => break,
                    c => value.push(c),
                }
            }
        } else {
            value = chars.by_ref().take_while(|c| *c != ',').collect::<String>().trim().to_owned();
        }
        out.push((key.trim().to_owned(), value));
    }
}

/// Picks the challenge to answer: the first one we support (RFC 8760 §2.4, RFC 7616 §3.7).
pub fn choose<'a>(values: impl IntoIterator<Item = &'a str>) -> Result<Challenge, AuthError> {
    let mut last_error = AuthError::NotDigest;
    for value in values {
        match Challenge::parse(value) {
            Ok(challenge) => return Ok(challenge),
            Err(error) => last_error = error,
        }
    }
    Err(last_error)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mufasa() -> Credentials {
        Credentials { username: "Mufasa".into(), password: Secret::new("Circle of Life") }
    }

    #[test]
    fn rfc7616_section_3_9_1_md5_and_sha256() {
        let md5 = Challenge::parse(
            r#"Digest realm="http-auth@example.org", qop="auth, auth-int", algorithm=MD5,
            nonce="7ypf/xlj9XXwfDPEoM4URrv/xwf94BcCAzFZH4GiTo0v",
            opaque="FQhe/qaU925kfnzjCev0ciny7QMkPqMAFRtzCUYo5tdS""#,
        )
        .expect("challenge");
        let cnonce = "f2/wE4q74E6zIJEtWaHKaf5wv/H5QzzpXusqGemxURZJ";
        let answer = md5.answer(&mufasa(), "GET", "/dir/index.html", 1, cnonce);
        assert!(answer.contains(r#"response="8ca523f5e9506fed4657c9700eebdbec""#), "{answer}");
        assert!(answer.contains("qop=auth, nc=00000001"));
        assert!(answer.contains(r#"opaque="FQhe/qaU925kfnzjCev0ciny7QMkPqMAFRtzCUYo5tdS""#));

        let sha = Challenge { algorithm: Algorithm::Sha256, ..md5 };
        let answer = sha.answer(&mufasa(), "GET", "/dir/index.html", 1, cnonce);
        assert!(
            answer.contains(
                r#"response="753927fa0e85d155564e2e272a28d1802ca10daf4496794697cf8db5856cb6c1""#
            ),
            "{answer}"
        );
        assert!(answer.contains("algorithm=SHA-256"));
    }

    #[test]
    fn rfc2617_section_3_5() {
        let c = Challenge::parse(
            r#"Digest realm="testrealm@host.com", qop="auth,auth-int",
            nonce="dcd98b7102dd2f0e8b11d0f600bfb0c093", opaque="5ccc069c403ebaf9f0171e9517f40e41""#,
        )
        .expect("challenge");
        // RFC 2617 spells the password with a capital O, unlike RFC 7616.
        let creds =
            Credentials { username: "Mufasa".into(), password: Secret::new("Circle Of Life") };
        let answer = c.answer(&creds, "GET", "/dir/index.html", 1, "0a4f113b");
        assert!(answer.contains(r#"response="6629fae49393a05397450978507c4ef1""#), "{answer}");
    }

    #[test]
    fn no_qop_uses_the_rfc2069_form() {
        let c = Challenge::parse(r#"Digest realm="sip.test", nonce="abc""#).expect("challenge");
        let creds = Credentials { username: "alice".into(), password: Secret::new("pw") };
        let answer = c.answer(&creds, "REGISTER", "sip:sip.test", 1, "x");
        let ha1 = Algorithm::Md5.hash("alice:sip.test:pw");
        let ha2 = Algorithm::Md5.hash("REGISTER:sip:sip.test");
        let expected = Algorithm::Md5.hash(&format!("{ha1}:abc:{ha2}"));
        assert!(answer.contains(&format!("response=\"{expected}\"")));
        assert!(!answer.contains("cnonce"), "no qop, no cnonce: {answer}");
    }

    #[test]
    fn refusals_and_choice() {
        assert_eq!(Challenge::parse("Basic realm=x"), Err(AuthError::NotDigest));
        assert_eq!(
            Challenge::parse(r#"Digest realm="r", nonce="n", qop="auth-int""#),
            Err(AuthError::AuthIntOnly)
        );
        assert_eq!(
            Challenge::parse(r#"Digest realm="r", nonce="n", algorithm=SHA-512-256"#),
            Err(AuthError::Algorithm("SHA-512-256".into()))
        );
        assert_eq!(Challenge::parse(r#"Digest nonce="n""#), Err(AuthError::Missing("realm")));
        let stale = Challenge::parse(r#"Digest realm="r", nonce="n2", stale=TRUE"#).expect("ok");
        assert!(stale.stale);
        let chosen = choose([
            r#"Digest realm="r", nonce="n", algorithm=SHA-512-256"#,
            r#"Digest realm="r", nonce="n", algorithm=SHA-256, qop="auth""#,
            r#"Digest realm="r", nonce="n", algorithm=MD5"#,
        ])
        .expect("one is supported");
        assert_eq!(chosen.algorithm, Algorithm::Sha256);
    }

    #[test]
    fn secrets_are_not_printed() {
        let creds = Credentials { username: "alice".into(), password: Secret::new("hunter2") };
        assert!(!format!("{creds:?}").contains("hunter2"));
    }
}

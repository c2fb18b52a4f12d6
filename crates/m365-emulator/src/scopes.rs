//! Scope parsing for the v2.0 endpoints.
//!
//! A v2.0 request names OpenID Connect scopes (`openid profile email offline_access`) and the
//! resource's permissions, either short (`User.Read`, which means Graph) or qualified
//! (`https://graph.microsoft.com/User.Read`, `https://graph.microsoft.com/.default`). The
//! emulator has one resource, Microsoft Graph, and knows a list of its real delegated
//! permissions, so a typo in a client's scope fails here as it would against Microsoft
//! (AADSTS70011) instead of silently working.
//! See <https://learn.microsoft.com/entra/identity-platform/scopes-oidc>.

use std::collections::BTreeSet;

use crate::aad_error::AadError;
use crate::directory::{GRAPH_APP_ID, GRAPH_RESOURCE};

/// Real Microsoft Graph delegated permissions the emulator accepts (matched without regard to
/// case, as Microsoft does, and returned in this spelling).
const GRAPH_PERMISSIONS: &[&str] = &[
    "Calendars.Read",
    "Calendars.ReadWrite",
    "Channel.ReadBasic.All",
    "Chat.Read",
    "Chat.ReadWrite",
    "ChatMessage.Send",
    "Contacts.Read",
    "Contacts.Read.Shared",
    "Contacts.ReadWrite",
    "Directory.Read.All",
    "Files.Read",
    "Files.ReadWrite",
    "Group.Read.All",
    "GroupMember.Read.All",
    "Mail.Read",
    "Mail.ReadWrite",
    "Mail.Send",
    "MailboxSettings.Read",
    "MailboxSettings.ReadWrite",
    "OnlineMeetings.Read",
    "OnlineMeetings.ReadWrite",
    "Organization.Read.All",
    "People.Read",
    "People.Read.All",
    "Presence.Read",
    "Presence.Read.All",
    "Presence.ReadWrite",
    "ProfilePhoto.Read.All",
    "Team.ReadBasic.All",
    "User.Read",
    "User.Read.All",
    "User.ReadBasic.All",
    "User.ReadWrite",
];

/// The permission Microsoft grants implicitly when a request names only OIDC scopes.
const IMPLICIT_PERMISSION: &str = "User.Read";

/// A parsed, validated `scope` parameter.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct Scopes {
    /// Graph permissions in canonical spelling, first-seen order, no duplicates; never empty
    /// as parsed (only [`Scopes::restricted_to`] can empty it).
    pub(crate) graph: Vec<String>,
    pub(crate) openid: bool,
    pub(crate) profile: bool,
    pub(crate) email: bool,
    pub(crate) offline_access: bool,
}

impl Scopes {
    /// Parses a space-separated `scope`. `configured` is what `.default` expands to. An empty
    /// string is reported as a missing parameter.
    pub(crate) fn parse(raw: &str, configured: &[String]) -> Result<Self, AadError> {
        let mut scopes = Scopes::default();
        let mut default = false;
        let mut any = false;
        for token in raw.split_ascii_whitespace() {
            any = true;
            match token.to_ascii_lowercase().as_str() {
                "openid" => scopes.openid = true,
                "profile" => scopes.profile = true,
                "email" => scopes.email = true,
                "offline_access" => scopes.offline_access = true,
                _ => {
                    let name = graph_permission_name(token)
                        .ok_or_else(|| AadError::invalid_scope(token))?;
                    if name == ".default" {
                        default = true;
                        continue;
                    }
                    let canonical = GRAPH_PERMISSIONS
                        .iter()
                        .find(|p| p.eq_ignore_ascii_case(name))
                        .ok_or_else(|| AadError::invalid_scope(token))?;
                    push_unique(&mut scopes.graph, canonical);
                }
            }
        }
        if !any {
            return Err(AadError::missing_parameter("scope"));
        }
        if default {
            // `.default` cannot be mixed with named permissions of the same resource.
            if !scopes.graph.is_empty() {
                return Err(AadError::invalid_scope(raw.trim()));
            }
            for permission in configured {
                push_unique(&mut scopes.graph, permission);
            }
        }
        if scopes.graph.is_empty() {
            scopes.graph.push(IMPLICIT_PERMISSION.to_owned());
        }
        Ok(scopes)
    }

    /// The `scope` field of a token response: the Graph permissions, then the OIDC scopes the
    /// way Microsoft lists them (`User.Read profile openid email`). `offline_access` is not
    /// listed, as Microsoft does not list it.
    pub(crate) fn response_scope(&self) -> String {
        let mut out: Vec<&str> = self.graph.iter().map(String::as_str).collect();
        if self.profile || self.openid {
            out.push("profile");
        }
        if self.openid {
            out.push("openid");
        }
        if self.email || self.openid {
            out.push("email");
        }
        out.join(" ")
    }

    /// The access token's `scp` claim: the Graph permissions, space-separated.
    pub(crate) fn scp(&self) -> String {
        self.graph.join(" ")
    }

    /// These scopes without the Graph permissions outside `allowed` (names ignore case): what
    /// a token may carry when the admin consented to only `allowed`. May leave no Graph
    /// permission at all (the token then has an empty `scp`).
    pub(crate) fn restricted_to(&self, allowed: &[String]) -> Scopes {
        let mut scopes = self.clone();
        scopes.graph.retain(|p| allowed.iter().any(|a| a.eq_ignore_ascii_case(p)));
        scopes
    }

    /// Whether every Graph permission here is in `granted`.
    pub(crate) fn graph_within(&self, granted: &BTreeSet<String>) -> bool {
        self.graph.iter().all(|p| granted.contains(p))
    }
}

/// The permission part of a Graph scope (`User.Read`, `.default`), or `None` for a scope of
/// another resource.
fn graph_permission_name(token: &str) -> Option<&str> {
    for prefix in [GRAPH_RESOURCE, GRAPH_APP_ID] {
        if token.len() > prefix.len() + 1
            && token[..prefix.len()].eq_ignore_ascii_case(prefix)
            && token.as_bytes()[prefix.len()] == b'/'
        {
            return Some(&token[prefix.len() + 1..]);
        }
    }
    if token.contains('/') || token.contains(':') { None } else { Some(token) }
}

fn push_unique(list: &mut Vec<String>, item: &str) {
    if !list.iter().any(|x| x == item) {
        list.push(item.to_owned());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn configured() -> Vec<String> {
        vec!["User.Read".to_owned(), "Presence.Read.All".to_owned()]
    }

    #[test]
    fn short_and_qualified_names_are_one_permission() {
        let s = Scopes::parse(
            "openid offline_access user.read https://graph.microsoft.com/User.Read \
             00000003-0000-0000-c000-000000000000/presence.read.all",
            &configured(),
        )
        .expect("valid");
        assert_eq!(s.graph, ["User.Read", "Presence.Read.All"]);
        assert!(s.openid && s.offline_access && !s.email);
        assert_eq!(s.response_scope(), "User.Read Presence.Read.All profile openid email");
        assert_eq!(s.scp(), "User.Read Presence.Read.All");
    }

    #[test]
    fn default_expands_and_oidc_only_implies_user_read() {
        let s =
            Scopes::parse("https://graph.microsoft.com/.default", &configured()).expect("valid");
        assert_eq!(s.graph, ["User.Read", "Presence.Read.All"]);
        let s = Scopes::parse("openid profile", &configured()).expect("valid");
        assert_eq!(s.graph, ["User.Read"]);
    }

    #[test]
    fn restriction_keeps_only_consented_permissions() {
        let s = Scopes::parse("openid User.Read User.Read.All", &configured()).expect("valid");
        let allowed = vec!["user.read".to_owned(), "Presence.Read.All".to_owned()];
        let r = s.restricted_to(&allowed);
        assert_eq!(r.graph, ["User.Read"]);
        assert!(r.openid);
        assert_eq!(r.response_scope(), "User.Read profile openid email");
        assert_eq!(s.restricted_to(&[]).scp(), "");
    }

    #[test]
    fn unknown_and_foreign_scopes_are_invalid() {
        for bad in [
            "User.Raed",
            "https://outlook.office.com/Mail.Read",
            "https://graph.microsoft.com/.default User.Read",
            "api://something/else",
        ] {
            let err = Scopes::parse(bad, &configured()).expect_err(bad);
            assert_eq!((err.error, err.code), ("invalid_scope", 70_011), "{bad}");
        }
        let err = Scopes::parse("  ", &configured()).expect_err("empty");
        assert_eq!(err.code, 900_144);
    }
}

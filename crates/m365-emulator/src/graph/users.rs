//! Graph's `user` resource as the emulator serves it: properties, `$select`, what each
//! permission may read, paging tokens, and synthetic users for large directories.
//!
//! See <https://learn.microsoft.com/graph/api/resources/user>,
//! <https://learn.microsoft.com/graph/api/user-list>,
//! <https://learn.microsoft.com/graph/permissions-reference#userreadbasicall> and
//! <https://learn.microsoft.com/graph/paging>.

use serde_json::{Map, Value, json};
use sha2::{Digest as _, Sha256};

use crate::directory::{TENANT_DOMAIN, TENANT_NAME, User};
use crate::ids::{b64url, b64url_decode};

/// A property of `user` the emulator knows.
#[derive(Debug, Clone, Copy)]
struct Property {
    name: &'static str,
    /// In the basic profile `User.ReadBasic.All` grants.
    basic: bool,
    /// Returned when there is no `$select` (Graph's v1.0 default set).
    default: bool,
    /// Usable in `$search` (string-valued).
    searchable: bool,
}

const fn p(name: &'static str, basic: bool, default: bool, searchable: bool) -> Property {
    Property { name, basic, default, searchable }
}

/// The properties served, in Graph's default-response order for the default ones.
const PROPERTIES: &[Property] = &[
    p("businessPhones", false, true, false),
    p("displayName", true, true, true),
    p("givenName", true, true, true),
    p("jobTitle", false, true, true),
    p("mail", true, true, true),
    p("mobilePhone", false, true, true),
    p("officeLocation", false, true, true),
    p("preferredLanguage", false, true, true),
    p("surname", true, true, true),
    p("userPrincipalName", true, true, true),
    p("id", true, true, false),
    p("accountEnabled", false, false, false),
    p("companyName", false, false, true),
    p("department", false, false, true),
    p("imAddresses", false, false, false),
    p("mailNickname", false, false, true),
];

/// The properties `$search` accepts.
pub(crate) fn searchable_properties() -> Vec<&'static str> {
    PROPERTIES.iter().filter(|p| p.searchable).map(|p| p.name).collect()
}

/// Graph's default property set, in its order.
pub(crate) fn default_selection() -> Vec<&'static str> {
    PROPERTIES.iter().filter(|p| p.default).map(|p| p.name).collect()
}

/// Parses `$select` (comma-separated, names ignoring case) into canonical names; the error is
/// the first unknown name.
pub(crate) fn parse_select(raw: &str) -> Result<Vec<&'static str>, String> {
    let mut out = Vec::new();
    for name in raw.split(',').map(str::trim).filter(|n| !n.is_empty()) {
        let property = PROPERTIES
            .iter()
            .find(|p| p.name.eq_ignore_ascii_case(name))
            .ok_or_else(|| name.to_owned())?;
        if !out.contains(&property.name) {
            out.push(property.name);
        }
    }
    Ok(out)
}

/// How much of a user's profile the caller may read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Visibility {
    /// Every property (`User.Read` on oneself, `User.Read.All`, `Directory.Read.All`).
    Full,
    /// The basic profile only (`User.ReadBasic.All`): other properties read as null.
    Basic,
}

/// A property's value, or `None` when the user has none (JSON null).
fn value(user: &User, name: &str) -> Option<Value> {
    let upn = &user.user_principal_name;
    Some(match name {
        "id" => json!(user.id),
        "displayName" => json!(user.display_name),
        "givenName" => json!(user.given_name),
        "surname" => json!(user.surname),
        "mail" => json!(user.mail),
        "userPrincipalName" => json!(upn),
        "jobTitle" => json!(user.job_title),
        "department" => json!(user.department),
        "businessPhones" => json!(user.business_phones),
        "mobilePhone" => json!(user.mobile_phone.as_ref()?),
        "officeLocation" => json!(user.office_location.as_ref()?),
        "preferredLanguage" => json!("en-US"),
        "accountEnabled" => json!(true),
        "companyName" => json!(TENANT_NAME),
        "imAddresses" => json!([upn.to_lowercase()]),
        "mailNickname" => json!(upn.split('@').next().unwrap_or(upn)),
        _ => return None,
    })
}

/// A string property's value as `$search` sees it (`None` for null or hidden).
pub(crate) fn search_value(user: &User, name: &str, visibility: Visibility) -> Option<String> {
    let property = PROPERTIES.iter().find(|p| p.name == name)?;
    if visibility == Visibility::Basic && !property.basic {
        return None;
    }
    value(user, name).and_then(|v| v.as_str().map(str::to_owned))
}

/// The user as a JSON object with `selection`'s properties. Properties the caller may not
/// read come back as null (an empty collection for `businessPhones` and `imAddresses`), as
/// Graph answers a `User.ReadBasic.All` caller.
pub(crate) fn project(
    user: &User,
    selection: &[&str],
    visibility: Visibility,
) -> Map<String, Value> {
    let mut object = Map::new();
    for name in selection {
        let Some(property) = PROPERTIES.iter().find(|p| p.name == *name) else {
            continue;
        };
        let hidden = visibility == Visibility::Basic && !property.basic;
        let v = if hidden {
            match property.name {
                "businessPhones" | "imAddresses" => json!([]),
                _ => Value::Null,
            }
        } else {
            value(user, property.name).unwrap_or(Value::Null)
        };
        object.insert(property.name.to_owned(), v);
    }
    object
}

/// Prefix of the emulator's `$skiptoken`s, so a foreign or hand-made token is told apart.
const SKIPTOKEN_PREFIX: &str = "emu1.";

/// An opaque `$skiptoken` for the page starting at `offset`. Clients must follow
/// `@odata.nextLink` as is; the token's content is the emulator's business.
pub(crate) fn skiptoken(offset: usize) -> String {
    let payload = format!("{offset}|{}", b64url(Sha256::digest(format!("skip|{offset}"))));
    format!("{SKIPTOKEN_PREFIX}{}", b64url(payload))
}

/// The offset in a `$skiptoken` from [`skiptoken`]; `None` for anything else.
pub(crate) fn parse_skiptoken(token: &str) -> Option<usize> {
    let payload = b64url_decode(token.strip_prefix(SKIPTOKEN_PREFIX)?)?;
    let payload = String::from_utf8(payload).ok()?;
    let (offset, check) = payload.split_once('|')?;
    let offset: usize = offset.parse().ok()?;
    (check == b64url(Sha256::digest(format!("skip|{offset}")))).then_some(offset)
}

/// Synthetic user number `n` (1-based): "Test User 0001", `TestUser0001@contoso.example`, a
/// stable object id derived from `n`, and phone numbers from Ofcom's ranges reserved for
/// drama (`+44 20 7946 0xxx`, `+44 7700 900xxx`), unique for the first thousand.
pub(crate) fn synthetic_user(n: usize) -> User {
    let number = format!("{n:04}");
    let upn = format!("TestUser{number}@{TENANT_DOMAIN}");
    let hash = Sha256::digest(format!("switchboard-synthetic-user|{n}").as_bytes());
    let mut b = [0u8; 16];
    b.copy_from_slice(&hash[..16]);
    b[6] = (b[6] & 0x0f) | 0x40;
    b[8] = (b[8] & 0x3f) | 0x80;
    let hex: String = b.iter().map(|x| format!("{x:02x}")).collect();
    let id =
        format!("{}-{}-{}-{}-{}", &hex[0..8], &hex[8..12], &hex[12..16], &hex[16..20], &hex[20..]);
    let line = n % 1000;
    User {
        id,
        user_principal_name: upn.clone(),
        display_name: format!("Test User {number}"),
        given_name: "Test".to_owned(),
        surname: format!("User {number}"),
        job_title: "Agent".to_owned(),
        department: "Contact Centre".to_owned(),
        mail: upn,
        business_phones: vec![format!("+44 20 7946 {line:04}")],
        mobile_phone: Some(format!("+44 7700 900{line:03}")),
        office_location: Some(format!("Floor {}", 1 + n % 5)),
    }
}

/// Whether `text` is a GUID in the 8-4-4-4-12 form (any case).
pub(crate) fn is_guid(text: &str) -> bool {
    let groups: Vec<&str> = text.split('-').collect();
    groups.len() == 5
        && groups
            .iter()
            .zip([8, 4, 4, 4, 12])
            .all(|(g, len)| g.len() == len && g.bytes().all(|c| c.is_ascii_hexdigit()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::directory::sample_users;

    #[test]
    fn select_and_visibility() {
        let adele = &sample_users()[0];
        let full = project(adele, &default_selection(), Visibility::Full);
        assert_eq!(full.len(), 11);
        assert_eq!(full["businessPhones"], json!(["+1 425 555 0109"]));
        assert_eq!(full["jobTitle"], "Retail Manager");
        let basic = project(adele, &default_selection(), Visibility::Basic);
        assert_eq!(basic["displayName"], "Adele Vance");
        assert_eq!(basic["mail"], "AdeleV@contoso.example");
        assert_eq!(basic["jobTitle"], Value::Null);
        assert_eq!(basic["businessPhones"], json!([]));
        assert_eq!(basic["mobilePhone"], Value::Null);
        assert_eq!(
            parse_select("displayName, MAIL,id,mail"),
            Ok(vec!["displayName", "mail", "id"])
        );
        assert_eq!(parse_select("displayName,shoeSize"), Err("shoeSize".to_owned()));
        let picked = project(adele, &parse_select("department").expect("known"), Visibility::Full);
        assert_eq!(picked.len(), 1);
        assert_eq!(search_value(adele, "jobTitle", Visibility::Basic), None);
        assert_eq!(
            search_value(adele, "jobTitle", Visibility::Full).as_deref(),
            Some("Retail Manager")
        );
    }

    #[test]
    fn skiptokens_round_trip_and_reject_forgeries() {
        for offset in [0, 100, 12_345] {
            assert_eq!(parse_skiptoken(&skiptoken(offset)), Some(offset));
        }
        assert_eq!(parse_skiptoken("RFNwdAIAAQAAAB"), None);
        assert_eq!(parse_skiptoken(&format!("{SKIPTOKEN_PREFIX}{}", b64url("100|x"))), None);
    }

    #[test]
    fn synthetic_users_are_stable_and_distinct() {
        let a = synthetic_user(1);
        assert_eq!(a.display_name, "Test User 0001");
        assert_eq!(a.user_principal_name, "TestUser0001@contoso.example");
        assert!(is_guid(&a.id));
        assert_eq!(a, synthetic_user(1));
        assert_ne!(a.id, synthetic_user(2).id);
        assert_eq!(synthetic_user(42).business_phones, ["+44 20 7946 0042"]);
        assert_eq!(synthetic_user(12_345).display_name, "Test User 12345");
        assert!(!is_guid("AdeleV@contoso.example"));
        assert!(is_guid("6E7B768E-07E2-4810-8459-485F84F8F204"));
    }
}

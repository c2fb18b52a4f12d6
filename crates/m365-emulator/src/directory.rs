//! The emulated directory: one tenant, one registered public client, Microsoft's demo users.
//!
//! The data is fixed so tests and the demo can name users and ids without asking; the users
//! carry the Graph `user` resource fields (serialised in Graph's camelCase) because the Graph
//! part of the emulator serves them from here. Tests that need a large directory add
//! synthetic users (`graph::users::synthetic_user`).

use serde::Serialize;

/// The emulated tenant's id (a made-up GUID, not a real tenant).
pub const TENANT_ID: &str = "3c0f5a8e-27d4-4b61-9e1a-6f2b8d47c3e9";

/// The emulated tenant's display name.
pub const TENANT_NAME: &str = "Contoso";

/// The emulated tenant's verified domain; user principal names end with it.
pub const TENANT_DOMAIN: &str = "contoso.example";

/// The registered public client's application (client) id.
pub const CLIENT_ID: &str = "a7d1c2e4-5b39-4f08-8c6a-2e9f1b0d7a53";

/// The registered application's display name (shown on the consent page, `app_displayname`).
pub const APP_NAME: &str = "Switchboard";

/// Microsoft Graph's application id, the `aud` of Graph access tokens.
pub const GRAPH_APP_ID: &str = "00000003-0000-0000-c000-000000000000";

/// Microsoft Graph's resource URI (also accepted as an access-token audience).
pub const GRAPH_RESOURCE: &str = "https://graph.microsoft.com";

/// A user in the emulated directory, with the fields of Graph's `user` resource.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct User {
    /// Object id (`oid` in tokens, Graph `id`).
    pub id: String,
    /// `AdeleV@contoso.example`: `preferred_username`/`upn` in tokens.
    pub user_principal_name: String,
    /// Full name (`name` in tokens).
    pub display_name: String,
    /// First name.
    pub given_name: String,
    /// Last name.
    pub surname: String,
    /// Job title.
    pub job_title: String,
    /// Department.
    pub department: String,
    /// Primary SMTP address.
    pub mail: String,
    /// Office numbers, `+1 425 555 0109` style.
    pub business_phones: Vec<String>,
    /// Mobile number.
    pub mobile_phone: Option<String>,
    /// Office location.
    pub office_location: Option<String>,
}

/// The registered application (an app registration with "Mobile and desktop" redirect URIs).
#[derive(Debug, Clone)]
pub(crate) struct App {
    pub(crate) client_id: String,
    pub(crate) display_name: String,
    /// Registered redirect URIs; loopback ones match on any port.
    pub(crate) redirect_uris: Vec<String>,
    /// "Allow public client flows" (gates the device-code flow).
    pub(crate) allow_public_client_flows: bool,
    /// The API permissions configured on the registration, which `.default` expands to.
    pub(crate) configured_permissions: Vec<String>,
    /// The Graph permissions the tenant's admin consented to for the app: tokens carry only
    /// these (see `State::issue_tokens`).
    pub(crate) consented_permissions: Vec<String>,
}

/// The permissions an admin consented to unless configured otherwise: what the Switchboard
/// client asks for. `User.Read.All` (full profiles of other users) is deliberately absent.
pub(crate) const DEFAULT_CONSENTED_PERMISSIONS: [&str; 4] =
    ["User.Read", "User.ReadBasic.All", "Presence.Read.All", "Presence.ReadWrite"];

impl App {
    /// The Switchboard registration.
    pub(crate) fn switchboard(allow_public_client_flows: bool) -> Self {
        App {
            client_id: CLIENT_ID.to_owned(),
            display_name: APP_NAME.to_owned(),
            redirect_uris: vec![
                "http://localhost".to_owned(),
                "http://127.0.0.1".to_owned(),
                "https://login.microsoftonline.com/common/oauth2/nativeclient".to_owned(),
            ],
            allow_public_client_flows,
            configured_permissions: ["User.Read", "User.ReadBasic.All", "Presence.Read.All"]
                .map(str::to_owned)
                .to_vec(),
            consented_permissions: DEFAULT_CONSENTED_PERMISSIONS.map(str::to_owned).to_vec(),
        }
    }
}

/// `(given, surname, upn prefix, oid, job title, department, office, phone suffix)`.
#[rustfmt::skip]
type Persona = (&'static str, &'static str, &'static str, &'static str, &'static str, &'static str, &'static str, &'static str);

/// Microsoft's demo-tenant personas; the object ids are made up.
#[rustfmt::skip]
const PERSONAS: &[Persona] = &[
    ("Adele", "Vance", "AdeleV", "6e7b768e-07e2-4810-8459-485f84f8f204", "Retail Manager", "Retail", "18/2111", "0109"),
    ("Alex", "Wilber", "AlexW", "87d349ed-44d7-43e1-9a83-5f2406dee5bd", "Marketing Assistant", "Marketing", "131/1104", "0110"),
    ("Megan", "Bowen", "MeganB", "48d31887-5fad-4d73-a9f5-3c356e68a038", "Marketing Manager", "Marketing", "12/1110", "0111"),
    ("Lee", "Gu", "LeeG", "d5a8b1c4-7f36-4e92-8b0d-1a4c6e9f2b37", "Director", "Manufacturing", "23/3101", "0112"),
    ("Nestor", "Wilke", "NestorW", "e8f2c6a1-3b57-4d09-9c4e-7a1b5d3f8e26", "Director", "Operations", "36/2121", "0113"),
    ("Patti", "Fernandez", "PattiF", "f1b4d7e2-9a63-4c18-a5b2-8d6e0c4f1a95", "President", "Executive Management", "15/1102", "0114"),
    ("Lynne", "Robbins", "LynneR", "a3c9e5f7-1d28-4b6a-8e0f-5b7d9c2a4e61", "Planner", "Retail", "20/1109", "0115"),
    ("Isaiah", "Langer", "IsaiahL", "b6e0a2d8-4c71-4f95-b3a7-9e1c5f8d2b04", "Sales Rep", "Sales", "20/1101", "0116"),
];

/// Whether the `index`-th sample or synthetic user has a profile photo: every other one
/// (Adele Vance does), so clients meet both cases.
pub(crate) fn has_photo_by_default(index: usize) -> bool {
    index.is_multiple_of(2)
}

/// The sample users, in a stable order (Adele Vance first).
pub(crate) fn sample_users() -> Vec<User> {
    PERSONAS
        .iter()
        .map(|&(given, surname, alias, oid, title, department, office, phone)| {
            let upn = format!("{alias}@{TENANT_DOMAIN}");
            User {
                id: oid.to_owned(),
                user_principal_name: upn.clone(),
                display_name: format!("{given} {surname}"),
                given_name: given.to_owned(),
                surname: surname.to_owned(),
                job_title: title.to_owned(),
                department: department.to_owned(),
                mail: upn,
                business_phones: vec![format!("+1 425 555 {phone}")],
                mobile_phone: Some(format!("+1 206 555 {phone}")),
                office_location: Some(office.to_owned()),
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn users_are_distinct_and_in_the_tenant_domain() {
        let users = sample_users();
        assert!(users.len() >= 6);
        let mut ids: Vec<&str> = users.iter().map(|u| u.id.as_str()).collect();
        ids.sort_unstable();
        ids.dedup();
        assert_eq!(ids.len(), users.len());
        assert!(users.iter().all(|u| u.user_principal_name.ends_with("@contoso.example")));
        assert_eq!(users[0].user_principal_name, "AdeleV@contoso.example");
        let json = serde_json::to_value(&users[0]).expect("serialises");
        assert_eq!(json["businessPhones"][0], "+1 425 555 0109");
    }
}

//! Turning a Teams colleague into something the SBC can route: a SIP URI from a template
//! (`sip:{upn}`, `sip:{objectId}@sbc.example.com`), or their phone number from Graph
//! (`businessPhones`, else `mobilePhone`) normalised to E.164 and put into a template
//! (`sip:{e164}@sbc.example.com;user=phone`).
//!
//! Direct Routing reaches a Teams user by number or by SIP URI, depending on how the tenant
//! is set up, so the rule is a setting that policy fixes. Numbers in Entra ID are typed by
//! people ("+1 (425) 555-0109", "0171 1234567", "425.555.0109 x123"): the national forms need
//! the tenant's country to become E.164 (ITU-T E.164; `tel:` URIs, RFC 3966).

use serde::{Deserialize, Serialize};

/// How colleagues are dialled.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "by", rename_all = "kebab-case")]
pub enum DialRule {
    /// A SIP URI made from the user: `{upn}`, `{objectId}`, `{mail}` are replaced.
    SipUri { template: String },
    /// Their phone number in E.164 put into `template` (`{e164}` with the `+`, `{digits}`
    /// without it), e.g. `sip:{e164}@sbc.example.com;user=phone` or `tel:{e164}`.
    Phone { template: String, default_country: String },
}

/// What a colleague's address is made from (fields of Graph's `user`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Colleague<'a> {
    pub object_id: &'a str,
    pub user_principal_name: &'a str,
    pub mail: Option<&'a str>,
    pub business_phones: &'a [String],
    pub mobile_phone: Option<&'a str>,
}

/// Why a colleague cannot be dialled.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DialError {
    #[error("no phone number is listed for this colleague")]
    NoNumber,
    #[error("'{0}' is not a phone number that can be dialled")]
    BadNumber(String),
    #[error("'{number}' is a national number and the country {country} is not known")]
    UnknownCountry { number: String, country: String },
    #[error("the template needs '{{{0}}}', which this colleague does not have")]
    Missing(String),
    #[error("the template names '{{{0}}}', which is not a known placeholder")]
    UnknownPlaceholder(String),
    #[error("'{0}' cannot be put into a SIP URI (a guest account or an unusual character)")]
    NotSipSafe(String),
}

/// A dialable address, and the E.164 number it came from when it came from one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Dialable {
    pub uri: String,
    pub e164: Option<String>,
}

impl DialRule {
    pub fn address(&self, who: &Colleague<'_>) -> Result<Dialable, DialError> {
        match self {
            DialRule::SipUri { template } => {
                let uri = expand(template, |name| {
                    let value = match name {
                        "upn" => Some(who.user_principal_name),
                        "objectId" => Some(who.object_id),
                        "mail" => who.mail,
                        _ => return Err(DialError::UnknownPlaceholder(name.to_owned())),
                    };
                    let value = value
                        .filter(|v| !v.is_empty())
                        .ok_or_else(|| DialError::Missing(name.to_owned()))?;
                    sip_user_part(value)
                })?;
                Ok(Dialable { uri, e164: None })
            }
            DialRule::Phone { template, default_country } => {
                let numbers: Vec<&str> = who
                    .business_phones
                    .iter()
                    .map(String::as_str)
                    .chain(who.mobile_phone)
                    .filter(|n| !n.trim().is_empty())
                    .collect();
                // The first number that makes sense; else why the first one does not.
                let mut first_error = None;
                for number in &numbers {
                    match to_e164(number, default_country) {
                        Ok(e164) => {
                            let uri = expand(template, |name| match name {
                                "e164" => Ok(e164.clone()),
                                "digits" => Ok(e164[1..].to_owned()),
                                _ => Err(DialError::UnknownPlaceholder(name.to_owned())),
                            })?;
                            return Ok(Dialable { uri, e164: Some(e164) });
                        }
                        Err(error) => {
                            first_error.get_or_insert(error);
                        }
                    }
                }
                Err(first_error.unwrap_or(DialError::NoNumber))
            }
        }
    }
}

/// Replaces each `{name}` of `template` once, left to right (a value that itself contains
/// `{…}` is not expanded again).
fn expand(
    template: &str,
    mut value: impl FnMut(&str) -> Result<String, DialError>,
) -> Result<String, DialError> {
    let mut out = String::new();
    let mut rest = template;
    while let Some(open) = rest.find('{') {
        out.push_str(&rest[..open]);
        let after = &rest[open + 1..];
        let Some(close) = after.find('}') else {
            out.push_str(&rest[open..]);
            return Ok(out);
        };
        out.push_str(&value(&after[..close])?);
        rest = &after[close + 1..];
    }
    out.push_str(rest);
    Ok(out)
}

/// A value for the user part (or host) of a SIP URI: RFC 3261's unreserved and user-unreserved
/// characters, `@` and `.`. Guest accounts (`alex_fabrikam.com#EXT#@…`) and anything else are
/// refused rather than escaped: an SBC would not route them anyway.
fn sip_user_part(value: &str) -> Result<String, DialError> {
    let allowed = |c: char| c.is_ascii_alphanumeric() || "-_.!~*'()&=+$,;?/@".contains(c);
    if value.contains("#EXT#") || !value.chars().all(allowed) {
        return Err(DialError::NotSipSafe(value.to_owned()));
    }
    Ok(value.to_owned())
}

/// Invisible direction marks (LRM, RLM, embeddings, isolates).
fn is_direction_mark(c: char) -> bool {
    matches!(c, '\u{200e}' | '\u{200f}' | '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}')
}

/// A country's calling code and the prefixes dialled inside it.
struct Country {
    iso: &'static str,
    code: &'static str,
    /// Dialled before a national number inside the country, dropped in E.164 (`0`, `8`).
    trunk: Option<&'static str>,
    /// Dialled before a country code from inside the country (`00`, `011`).
    international: &'static str,
}

/// The countries whose national formats are understood. Numbers written with `+` or an
/// international prefix work for every country.
const COUNTRIES: &[Country] = &[
    Country { iso: "US", code: "1", trunk: Some("1"), international: "011" },
    Country { iso: "CA", code: "1", trunk: Some("1"), international: "011" },
    Country { iso: "GB", code: "44", trunk: Some("0"), international: "00" },
    Country { iso: "IE", code: "353", trunk: Some("0"), international: "00" },
    Country { iso: "DE", code: "49", trunk: Some("0"), international: "00" },
    Country { iso: "AT", code: "43", trunk: Some("0"), international: "00" },
    Country { iso: "CH", code: "41", trunk: Some("0"), international: "00" },
    Country { iso: "FR", code: "33", trunk: Some("0"), international: "00" },
    Country { iso: "NL", code: "31", trunk: Some("0"), international: "00" },
    Country { iso: "BE", code: "32", trunk: Some("0"), international: "00" },
    Country { iso: "SE", code: "46", trunk: Some("0"), international: "00" },
    // Spain, Italy and Poland have no trunk prefix: the national number is dialled whole
    // (Italy's leading 0 stays in E.164).
    Country { iso: "ES", code: "34", trunk: None, international: "00" },
    Country { iso: "IT", code: "39", trunk: None, international: "00" },
    Country { iso: "PL", code: "48", trunk: None, international: "00" },
    Country { iso: "RU", code: "7", trunk: Some("8"), international: "810" },
    Country { iso: "AU", code: "61", trunk: Some("0"), international: "0011" },
    Country { iso: "IN", code: "91", trunk: Some("0"), international: "00" },
    Country { iso: "JP", code: "81", trunk: Some("0"), international: "010" },
];

/// Normalises a number as people type it into E.164 (`+` and up to 15 digits). Extensions
/// (`x123`, `ext. 123`, `;ext=123`) are dropped: a trunk reaches the main number.
pub fn to_e164(number: &str, default_country: &str) -> Result<String, DialError> {
    let bad = || DialError::BadNumber(number.to_owned());
    let lower = number.to_ascii_lowercase();
    let main = ["ext", ";", "x", "#", ","]
        .iter()
        .filter_map(|marker| lower.find(marker))
        .min()
        .map_or(number, |at| &number[..at]);
    let trimmed = main.trim_matches(|c: char| c.is_whitespace() || is_direction_mark(c));
    let plus = trimmed.starts_with('+');
    // "+44 (0)20 …": the trunk prefix in brackets is for national callers only.
    let trimmed = if plus { trimmed.replacen("(0)", "", 1) } else { trimmed.to_owned() };
    let mut digits = String::new();
    for c in trimmed.chars().skip(usize::from(plus)) {
        match c {
            '0'..='9' => digits.push(c),
            // Spaces of every kind, dashes (also the typographic ones and the minus sign),
            // and the direction marks that copying from mail clients brings along.
            c if c.is_whitespace() => {}
            '-' | '.' | '(' | ')' | '/' | '\u{2010}'..='\u{2015}' | '\u{2212}' => {}
            c if is_direction_mark(c) => {}
            _ => return Err(bad()),
        }
    }
    let e164 = if plus {
        // "+49 0171 …", "+44 020 …": the national trunk 0 typed after the country code.
        match COUNTRIES.iter().find(|c| {
            c.trunk == Some("0")
                && digits.starts_with(c.code)
                && digits[c.code.len()..].starts_with('0')
        }) {
            Some(country) => format!("{}{}", country.code, &digits[country.code.len() + 1..]),
            None => digits,
        }
    } else {
        let country = COUNTRIES
            .iter()
            .find(|c| c.iso.eq_ignore_ascii_case(default_country.trim()))
            .ok_or_else(|| DialError::UnknownCountry {
                number: number.to_owned(),
                country: default_country.to_owned(),
            })?;
        if let Some(rest) = digits.strip_prefix(country.international) {
            rest.to_owned()
        } else if country.code == "1" && digits.len() == 10 {
            // North America: ten digits without the trunk 1.
            format!("1{digits}")
        } else if let Some(rest) = country.trunk.and_then(|t| digits.strip_prefix(t)) {
            format!("{}{rest}", country.code)
        } else if country.trunk.is_none() {
            format!("{}{digits}", country.code)
        } else {
            return Err(bad());
        }
    };
    // E.164: at most 15 digits; no real number is shorter than 7 with its country code, and
    // none starts with 0.
    if !(7..=15).contains(&e164.len()) || e164.starts_with('0') {
        return Err(bad());
    }
    Ok(format!("+{e164}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_as_people_type_them() {
        let cases = [
            ("+1 (425) 555-0109", "US", "+14255550109"),
            ("+1 425 555 0109 x123", "US", "+14255550109"),
            ("425.555.0109 ext. 42", "US", "+14255550109"),
            ("1-425-555-0109", "US", "+14255550109"),
            ("011 44 20 7946 0958", "US", "+442079460958"),
            ("020 7946 0958", "GB", "+442079460958"),
            ("+44 (0)20 7946 0958", "GB", "+442079460958"),
            ("0171 1234567", "DE", "+491711234567"),
            ("00 33 1 23 45 67 89", "DE", "+33123456789"),
            ("01 23 45 67 89", "fr", "+33123456789"),
            ("06 12 34 56 78", "IT", "+390612345678"),
            ("912 345 678", "ES", "+34912345678"),
            ("8 (495) 123-45-67", "RU", "+74951234567"),
            ("810 49 30 1234567", "RU", "+49301234567"),
            ("(02) 9876 5432", "AU", "+61298765432"),
            ("+41 44 668 18 00;ext=12", "CH", "+41446681800"),
            ("+44 020 7946 0958", "US", "+442079460958"),
            ("+49 (030) 1234567", "US", "+49301234567"),
            ("+39 06 1234 5678", "US", "+390612345678"),
            ("+1 425 555 0109, x12", "US", "+14255550109"),
            ("\u{200e}+1\u{a0}425\u{2011}555\u{2013}0109", "US", "+14255550109"),
        ];
        for (typed, country, expected) in cases {
            assert_eq!(to_e164(typed, country).as_deref(), Ok(expected), "{typed} in {country}");
        }
    }

    #[test]
    fn what_cannot_be_a_number_is_refused() {
        for typed in
            ["", "+", "call me", "+1 425 555 01O9", "12", "+1234567890123456", "+0 123 4567"]
        {
            assert!(to_e164(typed, "US").is_err(), "{typed:?}");
        }
        assert!(matches!(to_e164("020 7946 0958", "ZZ"), Err(DialError::UnknownCountry { .. })));
        // A number that does not start with the trunk prefix is ambiguous.
        assert!(to_e164("20 7946 0958", "GB").is_err());
    }

    #[test]
    fn templates_make_sip_uris() {
        let phones = vec!["+1 425 555 0109".to_owned()];
        let adele = Colleague {
            object_id: "48d31887-5fad-4d73-a9f5-3c356e68a038",
            user_principal_name: "AdeleV@contoso.example",
            mail: Some("AdeleV@contoso.example"),
            business_phones: &phones,
            mobile_phone: None,
        };
        let by_upn = DialRule::SipUri { template: "sip:{upn}".into() };
        assert_eq!(
            by_upn.address(&adele).map(|d| d.uri).as_deref(),
            Ok("sip:AdeleV@contoso.example")
        );
        let by_id = DialRule::SipUri { template: "sip:{objectId}@sbc.example.com".into() };
        assert_eq!(
            by_id.address(&adele).map(|d| d.uri).as_deref(),
            Ok("sip:48d31887-5fad-4d73-a9f5-3c356e68a038@sbc.example.com")
        );
        let by_phone = DialRule::Phone {
            template: "sip:{e164}@sbc.example.com;user=phone".into(),
            default_country: "US".into(),
        };
        let dialable = by_phone.address(&adele).expect("dialable");
        assert_eq!(dialable.uri, "sip:+14255550109@sbc.example.com;user=phone");
        assert_eq!(dialable.e164.as_deref(), Some("+14255550109"));
        let tel = DialRule::Phone { template: "tel:{e164}".into(), default_country: "US".into() };
        assert_eq!(tel.address(&adele).map(|d| d.uri).as_deref(), Ok("tel:+14255550109"));
    }

    #[test]
    fn values_are_expanded_once_and_must_fit_a_sip_uri() {
        let guest = Colleague {
            user_principal_name: "alex_fabrikam.com#EXT#@contoso.onmicrosoft.com",
            ..Colleague::default()
        };
        let rule = DialRule::SipUri { template: "sip:{upn}".into() };
        assert!(matches!(rule.address(&guest), Err(DialError::NotSipSafe(_))));
        let tricky = Colleague {
            user_principal_name: "a@contoso.example",
            mail: Some("{objectId}@contoso.example"),
            object_id: "secret-id",
            ..Colleague::default()
        };
        let by_mail = DialRule::SipUri { template: "sip:{mail}".into() };
        assert!(matches!(by_mail.address(&tricky), Err(DialError::NotSipSafe(_))));
        let unknown = DialRule::SipUri { template: "sip:{name}@sbc".into() };
        assert_eq!(unknown.address(&tricky), Err(DialError::UnknownPlaceholder("name".into())));
        let unclosed = DialRule::SipUri { template: "sip:{upn".into() };
        assert_eq!(unclosed.address(&tricky).map(|d| d.uri).as_deref(), Ok("sip:{upn"));
    }

    #[test]
    fn the_mobile_number_is_the_fallback_and_gaps_are_reported() {
        let mobile = Colleague { mobile_phone: Some("0171 1234567"), ..Colleague::default() };
        let rule = DialRule::Phone { template: "tel:{e164}".into(), default_country: "DE".into() };
        assert_eq!(rule.address(&mobile).map(|d| d.uri).as_deref(), Ok("tel:+491711234567"));
        assert_eq!(rule.address(&Colleague::default()), Err(DialError::NoNumber));
        let by_mail = DialRule::SipUri { template: "sip:{mail}".into() };
        assert_eq!(by_mail.address(&Colleague::default()), Err(DialError::Missing("mail".into())));
        // An unparseable first number does not hide a good mobile one.
        let phones = vec!["call reception".to_owned()];
        let both = Colleague {
            business_phones: &phones,
            mobile_phone: Some("0171 1234567"),
            ..Colleague::default()
        };
        assert_eq!(rule.address(&both).map(|d| d.uri).as_deref(), Ok("tel:+491711234567"));
    }
}

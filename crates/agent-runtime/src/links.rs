//! `sip:`, `sips:`, `tel:` and `callto:` links (from a browser, a CRM, `xdg-open`) as the
//! dialler's text: the app opens them as a call ready to dial, never dialling by itself.
//!
//! What comes back is read by [`crate::phone::dial_target`] like anything typed: a number is
//! normalised to E.164 at the SIP account's domain, an address is called as it is.

/// The longest link taken (a dialler's worth; anything longer is not a phone number or address).
const MAX_LINK: usize = 512;

/// The dialler's text for `link`, or `None` when it is not a link to call.
///
/// - `sip:alice@example.com`, `sips:…` → as given (percent-escapes decoded); `sip://…` (written
///   by some CRMs) loses the slashes.
/// - `tel:+1-425-555-0100;ext=12` → `+1-425-555-0100` (RFC 3966: parameters dropped, the
///   visual separators left for the dialler to read).
/// - `callto:+14255550100`, `callto://+14255550100` → the number or name after the scheme.
pub fn dial_text(link: &str) -> Option<String> {
    let link = link.trim();
    if link.len() > MAX_LINK {
        return None;
    }
    let (scheme, rest) = link.split_once(':')?;
    let scheme = scheme.to_ascii_lowercase();
    let rest = rest.trim_start_matches('/');
    let decoded = percent_decode(rest)?;
    if decoded.is_empty() || decoded.chars().any(|c| c.is_control()) {
        return None;
    }
    match scheme.as_str() {
        "sip" | "sips" => Some(format!("{scheme}:{decoded}")),
        "tel" | "callto" => {
            let number = decoded.split([';', '?']).next().unwrap_or_default().trim();
            (!number.is_empty()).then(|| number.to_owned())
        }
        _ => None,
    }
}

/// The first of the program's arguments that is a link to call (how the desktop file's `%u`
/// and a second start hand one over).
pub fn from_args<I: IntoIterator<Item = S>, S: AsRef<str>>(args: I) -> Option<String> {
    args.into_iter().find_map(|arg| dial_text(arg.as_ref()))
}

/// `%XX` escapes decoded as UTF-8; `None` for a broken escape or bytes that are not UTF-8.
fn percent_decode(text: &str) -> Option<String> {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = bytes.get(i + 1..i + 3)?;
            let hex = std::str::from_utf8(hex).ok()?;
            out.push(u8::from_str_radix(hex, 16).ok()?);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn links_become_the_dialler_s_text() {
        assert_eq!(dial_text("sip:alice@example.com").as_deref(), Some("sip:alice@example.com"));
        assert_eq!(
            dial_text("SIPS:bob@example.com;transport=tls").as_deref(),
            Some("sips:bob@example.com;transport=tls")
        );
        assert_eq!(dial_text("sip://alice@example.com").as_deref(), Some("sip:alice@example.com"));
        assert_eq!(dial_text("sip:alice%40example.com").as_deref(), Some("sip:alice@example.com"));
        assert_eq!(dial_text("tel:+1-425-555-0100").as_deref(), Some("+1-425-555-0100"));
        assert_eq!(dial_text("tel:+1-425-555-0100;ext=12").as_deref(), Some("+1-425-555-0100"));
        assert_eq!(dial_text("tel:%2B44%2020%207946%200958").as_deref(), Some("+44 20 7946 0958"));
        assert_eq!(dial_text("callto://+14255550100").as_deref(), Some("+14255550100"));
        assert_eq!(dial_text("callto:+14255550100?call").as_deref(), Some("+14255550100"));
    }

    #[test]
    fn anything_else_is_not_a_link_to_call() {
        for link in [
            "https://example.com",
            "mailto:a@b",
            "sip:",
            "tel:;ext=1",
            "sip:a%4",
            "sip:%ff%fe",
            "sip:a%0Ab",
            "no scheme",
            "--autostart",
        ] {
            assert_eq!(dial_text(link), None, "{link}");
        }
        assert_eq!(dial_text(&format!("tel:{}", "1".repeat(600))), None);
    }

    #[test]
    fn the_first_link_among_the_arguments_is_taken() {
        assert_eq!(
            from_args(["/usr/bin/switchboard", "tel:+14255550100"]).as_deref(),
            Some("+14255550100")
        );
        assert_eq!(from_args(["switchboard"]), None);
    }
}

//! Redirect URI matching for a public client.
//!
//! Microsoft compares the request's `redirect_uri` with the registered ones exactly, except for
//! loopback URIs of desktop apps: for `http://localhost` and `http://127.0.0.1` "the port
//! component of the redirect URI is ignored", so a native app can listen on any free port
//! (<https://learn.microsoft.com/entra/identity-platform/reply-url>). Scheme, host and path
//! must still match; an empty path counts as `/`.

use url::Url;

/// Whether `candidate` matches one of `registered`.
pub(crate) fn is_registered(registered: &[String], candidate: &str) -> bool {
    let Ok(candidate_url) = Url::parse(candidate) else {
        return false;
    };
    if candidate_url.fragment().is_some() {
        return false;
    }
    registered.iter().any(|r| {
        if r == candidate {
            return true;
        }
        let Ok(reg) = Url::parse(r) else {
            return false;
        };
        if is_loopback(&reg) {
            is_loopback(&candidate_url)
                && reg.host_str() == candidate_url.host_str()
                && reg.path() == candidate_url.path()
                && reg.query() == candidate_url.query()
                && candidate_url.username().is_empty()
                && candidate_url.password().is_none()
        } else {
            // Normalised comparison (the `url` crate lower-cases scheme and host).
            reg == candidate_url
        }
    })
}

/// `http://localhost` or `http://127.0.0.1` (IPv6 `[::1]` is not supported by Microsoft).
fn is_loopback(url: &Url) -> bool {
    url.scheme() == "http" && matches!(url.host_str(), Some("localhost" | "127.0.0.1"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn registered() -> Vec<String> {
        vec![
            "http://localhost".to_owned(),
            "http://127.0.0.1".to_owned(),
            "https://login.microsoftonline.com/common/oauth2/nativeclient".to_owned(),
        ]
    }

    #[test]
    fn loopback_ignores_the_port_but_not_the_path() {
        let r = registered();
        for ok in [
            "http://localhost",
            "http://localhost/",
            "http://localhost:53117",
            "http://localhost:53117/",
            "http://127.0.0.1:8400/",
            "https://login.microsoftonline.com/common/oauth2/nativeclient",
        ] {
            assert!(is_registered(&r, ok), "{ok}");
        }
        for bad in [
            "http://localhost:53117/callback",
            "https://localhost:53117/",
            "http://[::1]:53117/",
            "http://127.0.0.2:80/",
            "http://localhost:1/?x=1",
            "http://localhost/#frag",
            "http://user@localhost:5/",
            "https://login.microsoftonline.com/common/oauth2/nativeclient/x",
            "http://evil.example/",
            "not a url",
        ] {
            assert!(!is_registered(&r, bad), "{bad}");
        }
    }
}

//! A scripted browser for the sign-in tests: it does what a person does on the emulator's
//! sign-in page (pick an account, press Accept or Cancel) and follows the redirect to the
//! app's loopback listener, over real HTTP(S). No JavaScript: the emulator's pages are plain
//! forms (see m365-emulator's form contract).

use std::path::Path;

/// What the browser ended on.
#[derive(Debug, Clone)]
pub struct Visit {
    /// The status and body of the last page (the app's "you can close this window").
    pub status: u16,
    pub body: String,
    /// Where the sign-in page sent the browser.
    pub redirected_to: String,
}

/// Opens `url` (the authorization request), picks `user` (`None`: press Cancel), submits, and
/// follows the redirect. Blocking; over HTTPS it trusts `ca` and nothing else.
pub fn sign_in(url: &str, ca: Option<&Path>, user: Option<&str>) -> Result<Visit, String> {
    let (url, ca, user) = (url.to_owned(), ca.map(Path::to_owned), user.map(str::to_owned));
    // Its own runtime on its own thread, so async tests can call it too.
    std::thread::spawn(move || {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(|e| e.to_string())?
            .block_on(visit(&url, ca.as_deref(), user.as_deref()))
    })
    .join()
    .map_err(|_| "the scripted browser panicked".to_owned())?
}

async fn visit(url: &str, ca: Option<&Path>, user: Option<&str>) -> Result<Visit, String> {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let mut roots = Vec::new();
    if let Some(ca) = ca {
        let pem = std::fs::read(ca).map_err(|e| format!("{}: {e}", ca.display()))?;
        roots.push(reqwest::Certificate::from_pem(&pem).map_err(|e| e.to_string())?);
    }
    let client = reqwest::Client::builder()
        .tls_certs_only(roots)
        .no_proxy()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .map_err(|e| e.to_string())?;
    let page = client.get(url).send().await.map_err(|e| e.to_string())?;
    let status = page.status();
    let page_url = page.url().clone();
    let html = page.text().await.map_err(|e| e.to_string())?;
    if !status.is_success() {
        return Err(format!("the sign-in page answered {status}: {html}"));
    }
    let form = Form::parse(&html).ok_or_else(|| format!("no form on the sign-in page: {html}"))?;
    let action = page_url.join(&form.action).map_err(|e| e.to_string())?;
    let mut fields = form.hidden;
    match user {
        Some(user) => {
            fields.push(("login".into(), user.into()));
            fields.push(("decision".into(), "accept".into()));
        }
        None => fields.push(("decision".into(), "cancel".into())),
    }
    let answer = client.post(action).form(&fields).send().await.map_err(|e| e.to_string())?;
    if !answer.status().is_redirection() {
        let status = answer.status();
        let body = answer.text().await.unwrap_or_default();
        return Err(format!("the sign-in form answered {status}, not a redirect: {body}"));
    }
    let location = answer
        .headers()
        .get("location")
        .and_then(|l| l.to_str().ok())
        .ok_or("a redirect without Location")?
        .to_owned();
    let last = client.get(&location).send().await.map_err(|e| e.to_string())?;
    let status = last.status().as_u16();
    let body = last.text().await.map_err(|e| e.to_string())?;
    Ok(Visit { status, body, redirected_to: location })
}

/// The first `<form>` of a page: its action and hidden fields.
#[derive(Debug)]
struct Form {
    action: String,
    hidden: Vec<(String, String)>,
}

impl Form {
    fn parse(html: &str) -> Option<Self> {
        let start = html.find("<form")?;
        let end = html[start..].find("</form>").map_or(html.len(), |e| start + e);
        let form = &html[start..end];
        let tag_end = form.find('>')?;
        let action = attribute(&form[..tag_end], "action").unwrap_or_default();
        let mut hidden = Vec::new();
        let mut rest = form;
        while let Some(at) = rest.find("<input") {
            let tag = &rest[at..];
            let close = tag.find('>')?;
            let tag = &tag[..close];
            if attribute(tag, "type").as_deref() == Some("hidden")
                && let Some(name) = attribute(tag, "name")
            {
                hidden.push((name, attribute(tag, "value").unwrap_or_default()));
            }
            rest = &rest[at + close..];
        }
        Some(Self { action, hidden })
    }
}

/// A double-quoted attribute's value, entities decoded.
fn attribute(tag: &str, name: &str) -> Option<String> {
    let needle = format!(" {name}=\"");
    let start = tag.find(&needle)? + needle.len();
    let end = tag[start..].find('"')? + start;
    Some(
        tag[start..end]
            .replace("&quot;", "\"")
            .replace("&#39;", "'")
            .replace("&#x27;", "'")
            .replace("&lt;", "<")
            .replace("&gt;", ">")
            .replace("&amp;", "&"),
    )
}

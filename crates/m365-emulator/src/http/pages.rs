//! The HTML pages: consent, device login, results and errors.
//!
//! Tests drive these pages with a scripted "browser" that parses the markup, so the markup is
//! deliberately plain and stable (the contract is in the crate documentation): one element per
//! line, attributes always in the order `type`, `name`, `value`, then `checked`, every value
//! HTML-escaped, no JavaScript needed (the only script is the consent page's auto-submit).

use std::fmt::Write as _;

use crate::aad_error::{AadError, Trace};
use crate::authorize::AuthorizeRequest;
use crate::directory::{TENANT_NAME, User};

/// Escapes text for HTML element content and double-quoted attribute values.
pub(crate) fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            _ => out.push(c),
        }
    }
    out
}

fn layout(title: &str, body: &str) -> String {
    format!(
        "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n\
         <title>{}</title>\n<style>body{{font-family:Segoe UI,Helvetica,Arial,sans-serif;\
         max-width:40em;margin:2em auto;padding:0 1em}}label{{display:block;margin:.3em 0}}\
         button{{margin:1em .5em 0 0;padding:.4em 1.5em}}code{{background:#eee}}\
         td,th{{text-align:left;padding:.2em .8em .2em 0}}</style>\n</head>\n<body>\n{}</body>\n</html>\n",
        escape(title),
        body
    )
}

fn hidden(out: &mut String, name: &str, value: &str) {
    let _ = writeln!(
        out,
        "<input type=\"hidden\" name=\"{}\" value=\"{}\">",
        escape(name),
        escape(value)
    );
}

/// The account choice: one radio button per user, `preselect` (or the first user) checked.
fn account_choice(out: &mut String, users: &[User], preselect: Option<&str>) {
    let selected = preselect
        .and_then(|hint| {
            users.iter().position(|u| u.user_principal_name.eq_ignore_ascii_case(hint))
        })
        .unwrap_or(0);
    out.push_str("<fieldset>\n<legend>Pick an account</legend>\n");
    for (i, user) in users.iter().enumerate() {
        let _ = writeln!(
            out,
            "<label><input type=\"radio\" name=\"login\" value=\"{}\"{}> {} ({})</label>",
            escape(&user.user_principal_name),
            if i == selected { " checked" } else { "" },
            escape(&user.display_name),
            escape(&user.user_principal_name),
        );
    }
    out.push_str("</fieldset>\n");
}

fn decision_buttons(out: &mut String) {
    out.push_str(
        "<button type=\"submit\" name=\"decision\" value=\"accept\" id=\"accept\">Accept</button>\n\
         <button type=\"submit\" name=\"decision\" value=\"cancel\" id=\"cancel\">Cancel</button>\n",
    );
}

/// The sign-in and consent page of an authorization request.
pub(crate) fn consent(
    action: &str,
    req: &AuthorizeRequest,
    users: &[User],
    app_name: &str,
    auto_submit: bool,
) -> String {
    let mut body = format!("<h1>Sign in to {}</h1>\n", escape(TENANT_NAME));
    let _ = writeln!(body, "<p>{} wants to:</p>\n<ul>", escape(app_name));
    for scope in req.scopes.response_scope().split(' ') {
        let _ = writeln!(body, "<li><code>{}</code></li>", escape(scope));
    }
    if req.scopes.offline_access {
        body.push_str("<li><code>offline_access</code></li>\n");
    }
    body.push_str("</ul>\n");
    let _ = writeln!(body, "<form method=\"post\" action=\"{}\" id=\"consent\">", escape(action));
    for (name, value) in &req.forwarded {
        hidden(&mut body, name, value);
    }
    account_choice(&mut body, users, req.login_hint.as_deref());
    decision_buttons(&mut body);
    body.push_str("</form>\n");
    if auto_submit {
        // A real browser with a session would not stop here.
        body.push_str("<script>document.getElementById(\"accept\").click();</script>\n");
    }
    layout(&format!("Sign in to {TENANT_NAME}"), &body)
}

/// The device login page (`/devicelogin`).
pub(crate) fn device_login(users: &[User], code: &str, notice: Option<&str>) -> String {
    let mut body =
        "<h1>Enter code</h1>\n<p>Enter the code displayed on your app or device.</p>\n".to_owned();
    if let Some(notice) = notice {
        let _ = writeln!(body, "<p id=\"notice\">{}</p>", escape(notice));
    }
    body.push_str("<form method=\"post\" action=\"/devicelogin\" id=\"devicelogin\">\n");
    let _ = writeln!(
        body,
        "<label>Code <input type=\"text\" name=\"otc\" value=\"{}\" autocomplete=\"off\"></label>",
        escape(code)
    );
    account_choice(&mut body, users, None);
    decision_buttons(&mut body);
    body.push_str("</form>\n");
    layout("Enter code", &body)
}

/// The result of the device login form. `outcome` is machine-readable (`approved`, ...).
pub(crate) fn device_outcome(outcome: &str, heading: &str, detail: &str) -> String {
    let body = format!(
        "<h1>{}</h1>\n<p id=\"outcome\">{}</p>\n<p id=\"detail\">{}</p>\n",
        escape(heading),
        escape(outcome),
        escape(detail)
    );
    layout(heading, &body)
}

/// Microsoft's "Sorry, but we're having trouble signing you in." page.
pub(crate) fn error(err: &AadError, trace: &Trace) -> String {
    let body = format!(
        "<h1>Sorry, but we're having trouble signing you in.</h1>\n\
         <p id=\"error-code\">AADSTS{}</p>\n<p id=\"error\">{}</p>\n<p id=\"error-message\">{}</p>\n\
         <p>Request Id: {}<br>\nCorrelation Id: {}<br>\nTimestamp: {}</p>\n",
        err.code,
        escape(err.error),
        escape(&err.message),
        escape(&trace.trace_id),
        escape(&trace.correlation_id),
        escape(&trace.timestamp),
    );
    layout("Sign in to your account", &body)
}

/// `response_mode=form_post`: a form that POSTs the response to the redirect URI.
pub(crate) fn form_post(action: &str, params: &[(String, String)]) -> String {
    let mut body =
        format!("<form method=\"post\" action=\"{}\" id=\"response\">\n", escape(action));
    for (name, value) in params {
        hidden(&mut body, name, value);
    }
    body.push_str(
        "<noscript><button type=\"submit\">Continue</button></noscript>\n</form>\n\
         <script>document.getElementById(\"response\").submit();</script>\n",
    );
    layout("Working...", &body)
}

/// The page of `/error?code=n`.
pub(crate) fn error_code(code: &str, description: Option<&str>) -> String {
    let body = format!(
        "<h1>Error code: AADSTS{}</h1>\n<p>{}</p>\n<p>See \
         <a href=\"https://learn.microsoft.com/entra/identity-platform/reference-error-codes\">\
         Microsoft Entra authentication and authorization error codes</a>.</p>\n",
        escape(code),
        escape(description.unwrap_or("This emulator does not describe this code."))
    );
    layout("Error code lookup", &body)
}

/// The page after `end_session_endpoint`.
pub(crate) fn signed_out() -> String {
    layout(
        "Signed out",
        "<h1>You signed out of your account</h1>\n<p id=\"outcome\">signed_out</p>\n",
    )
}

/// The index page of the demo: endpoints, ids and users.
pub(crate) fn index(base_url: &str, tenant_id: &str, client_id: &str, users: &[User]) -> String {
    let authority = format!("{base_url}/{tenant_id}");
    let mut body = format!(
        "<h1>Microsoft identity platform emulator</h1>\n<p>Tenant <b>{}</b> <code>{}</code>, \
         client id <code>{}</code>.</p>\n<h2>Endpoints</h2>\n<ul>\n",
        escape(TENANT_NAME),
        escape(tenant_id),
        escape(client_id)
    );
    for (name, url) in [
        ("OpenID configuration", format!("{authority}/v2.0/.well-known/openid-configuration")),
        ("Keys (JWKS)", format!("{authority}/discovery/v2.0/keys")),
        ("Authorize", format!("{authority}/oauth2/v2.0/authorize")),
        ("Token", format!("{authority}/oauth2/v2.0/token")),
        ("Device code", format!("{authority}/oauth2/v2.0/devicecode")),
        ("Device login", format!("{base_url}/devicelogin")),
    ] {
        let _ = writeln!(body, "<li>{}: <code>{}</code></li>", escape(name), escape(&url));
    }
    body.push_str("</ul>\n<h2>Users</h2>\n<table>\n<tr><th>Name</th><th>UPN</th><th>Title</th><th>Phone</th></tr>\n");
    for u in users {
        let _ = writeln!(
            body,
            "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
            escape(&u.display_name),
            escape(&u.user_principal_name),
            escape(&u.job_title),
            escape(&u.business_phones.join(", "))
        );
    }
    body.push_str("</table>\n");
    layout("Microsoft identity platform emulator", &body)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes_attribute_breakers() {
        assert_eq!(escape(r#"<a href="x">&'"#), "&lt;a href=&quot;x&quot;&gt;&amp;&#39;");
    }
}

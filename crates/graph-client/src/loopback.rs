//! The loopback redirect listener of the browser sign-in (RFC 8252 §7.3, §8.3).
//!
//! It listens on `127.0.0.1` on a port the OS picks (the IP literal, not `localhost`, so that
//! neither a hosts file nor an IPv6 listener of another program can take the redirect), and
//! waits for the one request whose `state` is this sign-in's. Microsoft ignores the port of a
//! loopback redirect URI registered as `http://localhost` or `http://127.0.0.1`
//! (<https://learn.microsoft.com/entra/identity-platform/reply-url#localhost-exceptions>).
//!
//! A request with another `state` (a stale tab, a page on the machine probing the port) gets an
//! error page and does not end the wait; favicon and other requests get 404.

use std::convert::Infallible;
use std::net::{Ipv4Addr, SocketAddr};

use bytes::Bytes;
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use tokio::net::TcpListener;
use tokio::sync::mpsc;

use crate::Token;

/// What the browser brought back.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Redirect {
    /// The authorization code.
    Code(Token),
    /// The authorization server's error (`access_denied` when the user cancelled).
    Error { error: String, description: String },
}

/// A bound listener, waiting for [`Listener::wait`].
#[derive(Debug)]
pub struct Listener {
    listener: TcpListener,
    port: u16,
}

impl Listener {
    pub async fn bind() -> std::io::Result<Self> {
        let listener = TcpListener::bind(SocketAddr::from((Ipv4Addr::LOCALHOST, 0))).await?;
        let port = listener.local_addr()?.port();
        Ok(Self { listener, port })
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// The redirect URI to send: `http://127.0.0.1:PORT/`.
    pub fn redirect_uri(&self) -> String {
        format!("http://127.0.0.1:{}/", self.port)
    }

    /// Serves until a request carries `state`; answers it with a page telling the user to go
    /// back to the app.
    pub async fn wait(self, state: String) -> std::io::Result<Redirect> {
        let (tx, mut rx) = mpsc::channel::<Redirect>(1);
        // Connections end with the wait: dropping the set aborts whatever is still open.
        let mut connections = tokio::task::JoinSet::new();
        loop {
            tokio::select! {
                accepted = self.listener.accept() => {
                    let stream = match accepted {
                        Ok((stream, _)) => stream,
                        Err(error) => {
                            // Out of descriptors, say: keep listening rather than fail the sign-in.
                            tracing::warn!(%error, "loopback listener could not accept");
                            tokio::time::sleep(std::time::Duration::from_millis(100)).await;
                            continue;
                        }
                    };
                    let (tx, state) = (tx.clone(), state.clone());
                    connections.spawn(async move {
                        let service = hyper::service::service_fn(move |request| {
                            let answer = answer(&request, &state);
                            if let Some(redirect) = answer.1 {
                                let _ = tx.try_send(redirect);
                            }
                            async move { Ok::<_, Infallible>(answer.0) }
                        });
                        // Another local program must not hold a connection open for ever.
                        let connection = hyper::server::conn::http1::Builder::new()
                            .timer(hyper_util::rt::TokioTimer::new())
                            .header_read_timeout(HEADER_TIMEOUT)
                            .keep_alive(false)
                            .serve_connection(TokioIo::new(stream), service);
                        if let Err(error) = connection.await {
                            tracing::debug!(%error, "loopback redirect connection failed");
                        }
                    });
                }
                Some(_) = connections.join_next(), if !connections.is_empty() => {}
                Some(redirect) = rx.recv() => {
                    // Let the page reach the browser before the connections are dropped.
                    let drain = async { while connections.join_next().await.is_some() {} };
                    let _ = tokio::time::timeout(std::time::Duration::from_secs(2), drain).await;
                    return Ok(redirect);
                }
            }
        }
    }
}

/// How long a connection may take to send its request head.
const HEADER_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(10);

/// The page for one request, and the redirect it carried if it was ours.
fn answer(request: &Request<Incoming>, state: &str) -> (Response<Full<Bytes>>, Option<Redirect>) {
    if request.uri().path() != "/" {
        return (page(StatusCode::NOT_FOUND, "Not found", "There is nothing here."), None);
    }
    let query = request.uri().query().unwrap_or_default();
    let mut params = std::collections::HashMap::new();
    for (key, value) in url::form_urlencoded::parse(query.as_bytes()) {
        params.entry(key.into_owned()).or_insert_with(|| value.into_owned());
    }
    if params.get("state").map(String::as_str) != Some(state) {
        let body = "This sign-in answer is not for the sign-in Switchboard is waiting for. \
                    Start the sign-in again from Switchboard.";
        return (page(StatusCode::BAD_REQUEST, "Sign-in not recognised", body), None);
    }
    if let Some(code) = params.remove("code") {
        let body = "You are signed in to Switchboard. You can close this window.";
        return (page(StatusCode::OK, "Signed in", body), Some(Redirect::Code(Token::new(code))));
    }
    let error = params.remove("error").unwrap_or_else(|| "invalid_request".into());
    let description = params.remove("error_description").unwrap_or_default();
    let body = "Switchboard was not signed in. You can close this window and go back to \
                Switchboard to see why.";
    (page(StatusCode::OK, "Not signed in", body), Some(Redirect::Error { error, description }))
}

fn page(status: StatusCode, title: &str, text: &str) -> Response<Full<Bytes>> {
    let html = format!(
        "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\"><title>{title} · \
         Switchboard</title><style>body{{font:16px system-ui,sans-serif;margin:15vh auto;\
         max-width:32em;padding:0 1em;color:#222}}@media (prefers-color-scheme:dark){{body\
         {{background:#1e1e1e;color:#eee}}}}</style></head><body><h1>{title}</h1><p>{text}</p>\
         </body></html>"
    );
    let mut response = Response::new(Full::new(Bytes::from(html)));
    *response.status_mut() = status;
    let headers = response.headers_mut();
    headers.insert(
        "content-type",
        hyper::header::HeaderValue::from_static("text/html; charset=utf-8"),
    );
    headers.insert("cache-control", hyper::header::HeaderValue::from_static("no-store"));
    // The code must not leak to other sites through the Referer of anything on the page.
    headers.insert("referrer-policy", hyper::header::HeaderValue::from_static("no-referrer"));
    response
}

#[cfg(test)]
mod tests {
    use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};

    use super::*;

    async fn get(port: u16, target: &str) -> String {
        let mut stream =
            tokio::net::TcpStream::connect(("127.0.0.1", port)).await.expect("connect");
        let request = format!("GET {target} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n\r\n");
        stream.write_all(request.as_bytes()).await.expect("send");
        let mut answer = String::new();
        stream.read_to_string(&mut answer).await.expect("read");
        answer
    }

    #[tokio::test]
    async fn only_this_sign_ins_state_ends_the_wait() {
        let listener = Listener::bind().await.expect("bind");
        let port = listener.port();
        assert_eq!(listener.redirect_uri(), format!("http://127.0.0.1:{port}/"));
        let wait = tokio::spawn(listener.wait("expected-state".into()));

        let stale = get(port, "/?code=stolen&state=other-state").await;
        assert!(stale.starts_with("HTTP/1.1 400"), "{stale}");
        let favicon = get(port, "/favicon.ico").await;
        assert!(favicon.starts_with("HTTP/1.1 404"), "{favicon}");
        let no_state = get(port, "/?code=stolen").await;
        assert!(no_state.starts_with("HTTP/1.1 400"), "{no_state}");
        assert!(!wait.is_finished());

        let ours = get(port, "/?code=the-code&state=expected-state&session_state=x").await;
        assert!(ours.starts_with("HTTP/1.1 200") && ours.contains("You can close this window"));
        assert!(ours.contains("referrer-policy: no-referrer"), "{ours}");
        let redirect = wait.await.expect("joined").expect("a redirect");
        assert_eq!(redirect, Redirect::Code(Token::new("the-code")));
    }

    #[tokio::test]
    async fn an_error_redirect_is_reported() {
        let listener = Listener::bind().await.expect("bind");
        let port = listener.port();
        let wait = tokio::spawn(listener.wait("s".into()));
        let page =
            get(port, "/?error=access_denied&error_description=AADSTS65004%3A+declined&state=s")
                .await;
        assert!(page.contains("was not signed in"), "{page}");
        let redirect = wait.await.expect("joined").expect("a redirect");
        let expected = Redirect::Error {
            error: "access_denied".into(),
            description: "AADSTS65004: declined".into(),
        };
        assert_eq!(redirect, expected);
    }
}

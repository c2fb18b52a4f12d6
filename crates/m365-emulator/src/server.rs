//! The transport: one listener, plain HTTP/1.1 or HTTPS, on a thread with its own runtime.
//!
//! The emulator owns its runtime so that synchronous tests (plain threads) and asynchronous
//! tests (inside another tokio runtime) use it the same way, and so that blocking a test's
//! runtime can never stall the server. Connections are served by hyper's HTTP/1.1 server
//! around the axum router; with TLS, tokio-rustls (ring provider) terminates TLS first.

use std::io;
use std::net::TcpListener as StdTcpListener;
use std::path::Path;
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

use axum::Router;
use hyper::server::conn::http1;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::service::TowerToHyperService;
use rustls::ServerConfig;
use rustls::pki_types::pem::PemObject as _;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::oneshot;
use tokio_rustls::TlsAcceptor;

use crate::TlsFiles;

/// A running server; [`Server::stop`] (or drop) shuts it down and joins its thread.
#[derive(Debug)]
pub(crate) struct Server {
    shutdown: Option<oneshot::Sender<()>>,
    thread: Option<JoinHandle<()>>,
}

fn invalid(path: &Path, what: &str, err: impl std::fmt::Display) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, format!("{what} {}: {err}", path.display()))
}

/// Loads the certificate chain and key and builds a TLS 1.2/1.3 server configuration.
pub(crate) fn load_tls(files: &TlsFiles) -> io::Result<Arc<ServerConfig>> {
    let certs = CertificateDer::pem_file_iter(&files.cert_chain_pem)
        .map_err(|e| invalid(&files.cert_chain_pem, "cannot read certificates from", e))?
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| invalid(&files.cert_chain_pem, "bad certificate in", e))?;
    if certs.is_empty() {
        return Err(invalid(&files.cert_chain_pem, "no certificate in", "empty"));
    }
    let key = PrivateKeyDer::from_pem_file(&files.private_key_pem)
        .map_err(|e| invalid(&files.private_key_pem, "cannot read a private key from", e))?;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut config = ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(io::Error::other)?
        .with_no_client_auth()
        .with_single_cert(certs, key)
        .map_err(|e| invalid(&files.private_key_pem, "certificate and key rejected:", e))?;
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(Arc::new(config))
}

/// Serves `router` on `listener` from a new thread.
pub(crate) fn spawn(
    listener: StdTcpListener,
    tls: Option<Arc<ServerConfig>>,
    router: Router,
) -> io::Result<Server> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .thread_name("m365-emulator-worker")
        .enable_all()
        .build()?;
    listener.set_nonblocking(true)?;
    let listener = {
        let _guard = runtime.enter();
        TcpListener::from_std(listener)?
    };
    let (shutdown, shutdown_rx) = oneshot::channel();
    let acceptor = tls.map(TlsAcceptor::from);
    let thread = std::thread::Builder::new().name("m365-emulator".to_owned()).spawn(move || {
        runtime.block_on(accept_loop(listener, acceptor, router, shutdown_rx));
        // Open keep-alive connections are simply dropped.
        runtime.shutdown_timeout(Duration::from_millis(200));
    })?;
    Ok(Server { shutdown: Some(shutdown), thread: Some(thread) })
}

impl Server {
    /// Stops accepting, drops open connections and joins the thread. Idempotent.
    pub(crate) fn stop(&mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        if let Some(thread) = self.thread.take()
            && thread.join().is_err()
        {
            tracing::warn!("the emulator's server thread panicked");
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.stop();
    }
}

async fn accept_loop(
    listener: TcpListener,
    tls: Option<TlsAcceptor>,
    router: Router,
    mut shutdown: oneshot::Receiver<()>,
) {
    loop {
        let stream = tokio::select! {
            _ = &mut shutdown => break,
            accepted = listener.accept() => match accepted {
                Ok((stream, _peer)) => stream,
                Err(e) => {
                    // Out of file descriptors and the like: back off instead of spinning.
                    tracing::warn!(error = %e, "accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
        };
        tokio::spawn(serve_connection(stream, tls.clone(), router.clone()));
    }
}

async fn serve_connection(stream: TcpStream, tls: Option<TlsAcceptor>, router: Router) {
    let _ = stream.set_nodelay(true);
    let service = TowerToHyperService::new(router);
    let mut builder = http1::Builder::new();
    builder.timer(TokioTimer::new());
    let result = match tls {
        Some(acceptor) => match acceptor.accept(stream).await {
            Ok(tls_stream) => builder.serve_connection(TokioIo::new(tls_stream), service).await,
            Err(e) => {
                tracing::debug!(error = %e, "TLS handshake failed");
                return;
            }
        },
        None => builder.serve_connection(TokioIo::new(stream), service).await,
    };
    if let Err(e) = result {
        tracing::debug!(error = %e, "connection ended with an error");
    }
}

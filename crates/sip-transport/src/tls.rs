//! TLS client configuration (rustls): the OS trust store plus an optional extra CA file, the
//! server's name checked against the SIP domain (RFC 5922 §7.2), and, only when asked for by
//! name, a verifier that accepts any certificate.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::{CryptoProvider, verify_tls12_signature, verify_tls13_signature};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{ClientConfig, DigitallySignedStruct, RootCertStore, SignatureScheme};
use sip_engine::FlowError;

/// How TLS connections are verified.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TlsSettings {
    /// A PEM file of CA certificates trusted in addition to the OS store (a private PKI).
    pub extra_ca_file: Option<PathBuf>,
    /// Accept any server certificate: no trust chain, no name check. Only for lab setups; the
    /// setting lives under a `dangerous` namespace so that nobody turns it on by accident.
    pub dangerous_accept_invalid_certificates: bool,
}

/// Why a TLS client configuration could not be built.
#[derive(Debug, thiserror::Error)]
pub enum TlsConfigError {
    #[error("cannot read CA file {path}: {detail}")]
    CaFile { path: PathBuf, detail: String },
    #[error("CA file {path} holds no usable certificate")]
    NoCertificates { path: PathBuf },
    #[error("TLS setup failed: {0}")]
    Rustls(#[from] rustls::Error),
}

/// The client configuration for every TLS flow.
pub fn client_config(settings: &TlsSettings) -> Result<Arc<ClientConfig>, TlsConfigError> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let builder = ClientConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()?;
    let config = if settings.dangerous_accept_invalid_certificates {
        tracing::warn!("TLS certificate verification is OFF (dangerous setting)");
        builder
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(AcceptAnything(provider)))
            .with_no_client_auth()
    } else {
        builder
            .with_root_certificates(roots(settings.extra_ca_file.as_deref())?)
            .with_no_client_auth()
    };
    Ok(Arc::new(config))
}

fn roots(extra: Option<&Path>) -> Result<RootCertStore, TlsConfigError> {
    let mut roots = RootCertStore::empty();
    let native = rustls_native_certs::load_native_certs();
    for error in &native.errors {
        tracing::debug!(%error, "skipping part of the OS trust store");
    }
    let (added, ignored) = roots.add_parsable_certificates(native.certs);
    tracing::debug!(added, ignored, "OS trust store loaded");
    if let Some(path) = extra {
        let ca_error = |detail: String| TlsConfigError::CaFile { path: path.to_owned(), detail };
        let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(path)
            .map_err(|e| ca_error(e.to_string()))?
            .collect::<Result<_, _>>()
            .map_err(|e| ca_error(e.to_string()))?;
        let (added, _) = roots.add_parsable_certificates(certs);
        if added == 0 {
            return Err(TlsConfigError::NoCertificates { path: path.to_owned() });
        }
    }
    Ok(roots)
}

/// The name a TLS server must prove: the SIP domain when one is known for the address, else
/// the IP address itself.
pub(crate) fn server_name(name: Option<&str>, remote: std::net::IpAddr) -> ServerName<'static> {
    name.and_then(|n| ServerName::try_from(n.to_owned()).ok())
        .unwrap_or_else(|| ServerName::IpAddress(remote.into()))
}

/// Turns a connection error into what the engine and the user see: certificate problems are
/// named as such.
pub(crate) fn classify(error: &std::io::Error) -> FlowError {
    use std::io::ErrorKind;
    if let Some(tls) = error.get_ref().and_then(|e| e.downcast_ref::<rustls::Error>()) {
        return match tls {
            rustls::Error::InvalidCertificate(_) => {
                FlowError::Certificate { detail: tls.to_string() }
            }
            other => FlowError::Tls { detail: other.to_string() },
        };
    }
    match error.kind() {
        ErrorKind::ConnectionRefused => FlowError::Refused,
        ErrorKind::TimedOut => FlowError::ConnectTimeout,
        ErrorKind::ConnectionReset
        | ErrorKind::ConnectionAborted
        | ErrorKind::BrokenPipe
        | ErrorKind::UnexpectedEof => FlowError::Closed,
        _ => FlowError::Io { detail: error.to_string() },
    }
}

/// The `dangerous` verifier: signatures are still checked (the handshake must be with the key
/// in the certificate), but neither the chain nor the name.
#[derive(Debug)]
struct AcceptAnything(Arc<CryptoProvider>);

impl ServerCertVerifier for AcceptAnything {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        verify_tls12_signature(message, cert, dss, &self.0.signature_verification_algorithms)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        verify_tls13_signature(message, cert, dss, &self.0.signature_verification_algorithms)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}

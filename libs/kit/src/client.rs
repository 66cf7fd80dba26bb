//! Channels from one service to another (matching to listings, logistics to settlement and
//! listings): plaintext for `http://` addresses; for `https://`, TLS that trusts only the CA the
//! configuration names and, under mutual TLS, presents this process's client certificate. The
//! TLS files are read at start (a missing one stops it, named) and again, at most every
//! [`CLIENT_TLS_RELOAD_INTERVAL_MS`], when a connection is made: a renewed client certificate is
//! presented on the next connection without a restart, and files that do not load leave the
//! last good ones in use, with a warning.

use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use anyhow::Context as _;
use hyper_util::rt::TokioIo;
use rustls::RootCertStore;
use rustls::pki_types::pem::PemObject as _;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName};
use tokio::net::TcpStream;
use tonic::transport::{Channel, Endpoint};

use crate::config::{self, ServicesTls};

/// Longest wait for a connection to another service.
pub const SERVICE_CONNECT_TIMEOUT_MS: u64 = 5_000;
/// Longest a call to another service may take.
pub const SERVICE_CALL_TIMEOUT_MS: u64 = 10_000;
/// How old the client's TLS files may be, as last read, when a connection is made.
pub const CLIENT_TLS_RELOAD_INTERVAL_MS: u64 = 2_000;

/// A channel to the service at `url` (the setting `key`'s value), connected at its first call.
/// The TLS files are read now: a missing one fails the start, naming its setting and path.
pub fn service_channel(url: &str, key: &str, tls: Option<&ServicesTls>) -> anyhow::Result<Channel> {
    let Some(address) = url.strip_prefix("https://") else {
        return Ok(endpoint(url, key)?.connect_lazy());
    };
    let tls =
        tls.with_context(|| format!("{key}: {url} is https:// and {} is not set", config::SERVICES_CA))?;
    let address = address.trim_end_matches('/');
    let host = address
        .rsplit_once(':')
        .filter(|(_, port)| port.parse::<u16>().is_ok())
        .map(|(host, _)| host.trim_start_matches('[').trim_end_matches(']'))
        .with_context(|| format!("{key}: {url} is not https://host:port"))?;
    let server_name =
        ServerName::try_from(host.to_owned()).with_context(|| format!("{key}: {url}: not a host name"))?;
    let connector = TlsConnector { tls: Arc::new(ClientTls::load(tls.clone())?), server_name };
    // The channel dials TLS itself (the connector): tonic is given the plain address.
    Ok(endpoint(&format!("http://{address}"), key)?.connect_with_connector_lazy(connector))
}

fn endpoint(url: &str, key: &str) -> anyhow::Result<Endpoint> {
    Ok(Endpoint::from_shared(url.to_owned())
        .with_context(|| format!("{key}: {url}"))?
        .connect_timeout(Duration::from_millis(SERVICE_CONNECT_TIMEOUT_MS))
        .timeout(Duration::from_millis(SERVICE_CALL_TIMEOUT_MS)))
}

/// The client TLS of `tls` as tonic takes it, its files read now: for the command-line client,
/// which lives for one command.
pub fn client_tls_config(tls: &ServicesTls) -> anyhow::Result<tonic::transport::ClientTlsConfig> {
    use tonic::transport::{Certificate, ClientTlsConfig, Identity};
    let _ = rustls::crypto::ring::default_provider().install_default();
    let read = |key: &str, path: &std::path::Path| {
        std::fs::read(path).with_context(|| format!("reading {key} {}", path.display()))
    };
    let mut config = ClientTlsConfig::new()
        .ca_certificate(Certificate::from_pem(read(config::SERVICES_CA, &tls.ca_path)?));
    if let Some((cert, key)) = &tls.client {
        config = config.identity(Identity::from_pem(
            read(config::SERVICES_CLIENT_CERT, cert)?,
            read(config::SERVICES_CLIENT_KEY, key)?,
        ));
    }
    Ok(config)
}

/// The bytes of the client's TLS files, as last read.
#[derive(Debug, Clone, PartialEq, Eq)]
struct FileBytes {
    ca: Vec<u8>,
    client: Option<(Vec<u8>, Vec<u8>)>,
}

/// The client's TLS, kept up with its files.
#[derive(Debug)]
struct ClientTls {
    files: ServicesTls,
    state: Mutex<ClientTlsState>,
}

#[derive(Debug)]
struct ClientTlsState {
    bytes: FileBytes,
    read_at: Instant,
    config: Arc<rustls::ClientConfig>,
    /// The last bytes that failed to load, reported once.
    refused: Option<FileBytes>,
}

impl ClientTls {
    fn load(files: ServicesTls) -> anyhow::Result<ClientTls> {
        let bytes = read(&files)?;
        let config = client_config(&files, &bytes)?;
        Ok(ClientTls {
            files,
            state: Mutex::new(ClientTlsState { bytes, read_at: Instant::now(), config, refused: None }),
        })
    }

    /// The settings for a new connection: the files read again if the last read is older
    /// than [`CLIENT_TLS_RELOAD_INTERVAL_MS`].
    fn config(&self) -> Arc<rustls::ClientConfig> {
        let mut state = self.state.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        if state.read_at.elapsed() < Duration::from_millis(CLIENT_TLS_RELOAD_INTERVAL_MS) {
            return state.config.clone();
        }
        state.read_at = Instant::now();
        let bytes = match read(&self.files) {
            Ok(bytes) => bytes,
            Err(error) => {
                tracing::warn!(error = %format!("{error:#}"), "cannot read the client's TLS files again: keeping the ones in use");
                return state.config.clone();
            }
        };
        if bytes == state.bytes {
            return state.config.clone();
        }
        match client_config(&self.files, &bytes) {
            Ok(config) => {
                tracing::info!(
                    "the client's TLS files changed: new connections to the other services use them"
                );
                state.config = config;
                state.bytes = bytes;
                state.refused = None;
            }
            Err(error) => {
                if state.refused.as_ref() != Some(&bytes) {
                    tracing::warn!(
                        error = %format!("{error:#}"),
                        "the client's TLS files changed but do not load: keeping the ones in use"
                    );
                    state.refused = Some(bytes);
                }
            }
        }
        state.config.clone()
    }
}

fn read(files: &ServicesTls) -> anyhow::Result<FileBytes> {
    let read = |key: &str, path: &std::path::Path| {
        std::fs::read(path).with_context(|| format!("reading {key} {}", path.display()))
    };
    Ok(FileBytes {
        ca: read(config::SERVICES_CA, &files.ca_path)?,
        client: match &files.client {
            Some((cert, key)) => {
                Some((read(config::SERVICES_CLIENT_CERT, cert)?, read(config::SERVICES_CLIENT_KEY, key)?))
            }
            None => None,
        },
    })
}

/// The rustls settings of `bytes`: the CA the only trust anchor, HTTP/2, and the client
/// certificate with its key (which must match) under mutual TLS.
fn client_config(files: &ServicesTls, bytes: &FileBytes) -> anyhow::Result<Arc<rustls::ClientConfig>> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let ca_file = || format!("{} {}", config::SERVICES_CA, files.ca_path.display());
    let mut roots = RootCertStore::empty();
    for cert in CertificateDer::pem_slice_iter(&bytes.ca) {
        let cert = cert.with_context(|| format!("{}: not a PEM certificate", ca_file()))?;
        roots.add(cert).with_context(|| format!("{}: not a CA certificate", ca_file()))?;
    }
    anyhow::ensure!(!roots.is_empty(), "{}: holds no certificate", ca_file());
    let builder = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .context("the TLS versions")?
        .with_root_certificates(roots);
    let mut config = match (&bytes.client, &files.client) {
        (Some((cert, key)), Some((cert_path, key_path))) => {
            let cert_file = || format!("{} {}", config::SERVICES_CLIENT_CERT, cert_path.display());
            let certs = CertificateDer::pem_slice_iter(cert)
                .collect::<Result<Vec<_>, _>>()
                .with_context(|| format!("{}: not a PEM certificate chain", cert_file()))?;
            anyhow::ensure!(!certs.is_empty(), "{}: holds no certificate", cert_file());
            let key = PrivateKeyDer::from_pem_slice(key).with_context(|| {
                format!("{} {}: not a PEM private key", config::SERVICES_CLIENT_KEY, key_path.display())
            })?;
            builder
                .with_client_auth_cert(certs, key)
                .with_context(|| format!("{}: the certificate and its key", cert_file()))?
        }
        _ => builder.with_no_client_auth(),
    };
    config.alpn_protocols = vec![b"h2".to_vec()];
    Ok(Arc::new(config))
}

/// Dials a service over TLS with the settings [`ClientTls`] holds when the connection is made.
#[derive(Debug, Clone)]
struct TlsConnector {
    tls: Arc<ClientTls>,
    server_name: ServerName<'static>,
}

impl tower::Service<http::Uri> for TlsConnector {
    type Response = TokioIo<tokio_rustls::client::TlsStream<TcpStream>>;
    type Error = std::io::Error;
    type Future = Pin<Box<dyn Future<Output = Result<Self::Response, Self::Error>> + Send>>;

    fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, uri: http::Uri) -> Self::Future {
        let (tls, server_name) = (self.tls.clone(), self.server_name.clone());
        Box::pin(async move {
            let host =
                uri.host().unwrap_or_default().trim_start_matches('[').trim_end_matches(']').to_owned();
            let port = uri.port_u16().unwrap_or(443);
            let tcp = TcpStream::connect((host.as_str(), port)).await?;
            tcp.set_nodelay(true)?;
            let stream = tokio_rustls::TlsConnector::from(tls.config()).connect(server_name, tcp).await?;
            Ok(TokioIo::new(stream))
        })
    }
}

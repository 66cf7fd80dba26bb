//! The gRPC port's TLS: the certificate, its key and (under mutual TLS) the client CA, read from
//! their files at start and read again every [`TLS_RELOAD_INTERVAL_MS`]: when they change (a
//! cert-manager renewal rewrites the Secret's files), new connections get the new certificate,
//! and the connections open keep theirs. Files that do not load (half of a renewal, a key that
//! does not match its certificate) leave the last good ones in use, with a warning, and are tried
//! again at the next read. Handshakes run beside the accept loop, each bounded in time, at most
//! [`TLS_HANDSHAKES_MAX`] at once.

use std::io;
use std::sync::{Arc, RwLock};
use std::time::Duration;

use anyhow::Context as _;
use rustls::RootCertStore;
use rustls::pki_types::pem::PemObject as _;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::server::WebPkiClientVerifier;
use tokio::net::TcpStream;
use tokio::sync::{Semaphore, mpsc, watch};
use tokio_rustls::TlsAcceptor;
use tokio_rustls::server::TlsStream;
use tokio_stream::StreamExt as _;
use tokio_stream::wrappers::ReceiverStream;
use tonic::transport::server::TcpIncoming;

use crate::config::{self, TlsFiles};

/// How often the TLS files are read again.
pub const TLS_RELOAD_INTERVAL_MS: u64 = 2_000;
/// Longest a client may take to finish the TLS handshake: a client that stalls holds a task
/// and a socket.
pub const TLS_HANDSHAKE_TIMEOUT_MS: u64 = 10_000;
/// Most handshakes under way at once; a connection beyond them is closed at once.
pub const TLS_HANDSHAKES_MAX: usize = 1_024;
/// Connections whose handshake is done, waiting for the server to take them.
const HANDSHAKEN_QUEUE: usize = 128;
/// The pause after an error accepting a connection.
const ACCEPT_ERROR_PAUSE_MS: u64 = 100;

/// The bytes of the TLS files, as last read.
#[derive(Debug, Clone, PartialEq, Eq)]
struct FileBytes {
    cert: Vec<u8>,
    key: Vec<u8>,
    client_ca: Option<Vec<u8>>,
}

/// The TLS of a gRPC port, kept up with its files.
#[derive(Debug)]
pub struct ServerTls {
    files: TlsFiles,
    current: RwLock<(FileBytes, Arc<rustls::ServerConfig>)>,
    /// The last bytes that failed to load, so that one bad renewal is reported once.
    refused: RwLock<Option<FileBytes>>,
}

impl ServerTls {
    /// Reads and loads the files: an error names the setting and the file at fault.
    pub async fn load(files: TlsFiles) -> anyhow::Result<ServerTls> {
        let bytes = read(&files).await?;
        let config = server_config(&files, &bytes)?;
        Ok(ServerTls { files, current: RwLock::new((bytes, config)), refused: RwLock::new(None) })
    }

    /// The TLS settings new connections get.
    pub fn config(&self) -> Arc<rustls::ServerConfig> {
        self.current.read().unwrap_or_else(std::sync::PoisonError::into_inner).1.clone()
    }

    /// Reads the files again and takes them if they changed and load: whether they were taken.
    pub async fn reload(&self) -> bool {
        let bytes = match read(&self.files).await {
            Ok(bytes) => bytes,
            Err(error) => {
                tracing::warn!(error = %format!("{error:#}"), "cannot read the TLS files again: keeping the ones in use");
                return false;
            }
        };
        if self.current.read().unwrap_or_else(std::sync::PoisonError::into_inner).0 == bytes {
            return false;
        }
        match server_config(&self.files, &bytes) {
            Ok(config) => {
                *self.current.write().unwrap_or_else(std::sync::PoisonError::into_inner) = (bytes, config);
                *self.refused.write().unwrap_or_else(std::sync::PoisonError::into_inner) = None;
                tracing::info!(
                    cert = %self.files.cert_path.display(),
                    "the TLS files changed: new connections get the new certificate"
                );
                true
            }
            Err(error) => {
                let mut refused = self.refused.write().unwrap_or_else(std::sync::PoisonError::into_inner);
                if refused.as_ref() != Some(&bytes) {
                    tracing::warn!(
                        error = %format!("{error:#}"),
                        "the TLS files changed but do not load: keeping the ones in use"
                    );
                    *refused = Some(bytes);
                }
                false
            }
        }
    }

    /// Reads the files again every [`TLS_RELOAD_INTERVAL_MS`] until `stop` turns true.
    pub async fn keep_reloading(self: Arc<ServerTls>, mut stop: watch::Receiver<bool>) {
        loop {
            let stopped = tokio::select! {
                () = tokio::time::sleep(Duration::from_millis(TLS_RELOAD_INTERVAL_MS)) => false,
                _ = stop.wait_for(|stop| *stop) => true,
            };
            if stopped {
                return;
            }
            self.reload().await;
        }
    }
}

async fn read(files: &TlsFiles) -> anyhow::Result<FileBytes> {
    let read = |key: &'static str, path: std::path::PathBuf| async move {
        tokio::fs::read(&path).await.with_context(|| format!("reading {key} {}", path.display()))
    };
    Ok(FileBytes {
        cert: read(config::TLS_CERT, files.cert_path.clone()).await?,
        key: read(config::TLS_KEY, files.key_path.clone()).await?,
        client_ca: match &files.client_ca_path {
            Some(path) => Some(read(config::TLS_CLIENT_CA, path.clone()).await?),
            None => None,
        },
    })
}

/// The rustls settings of `bytes`: TLS 1.2 and 1.3, HTTP/2 only, the certificate chain and its
/// key (which must match), and the client CA's verifier under mutual TLS.
fn server_config(files: &TlsFiles, bytes: &FileBytes) -> anyhow::Result<Arc<rustls::ServerConfig>> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let cert_file = || format!("{} {}", config::TLS_CERT, files.cert_path.display());
    let certs = CertificateDer::pem_slice_iter(&bytes.cert)
        .collect::<Result<Vec<_>, _>>()
        .with_context(|| format!("{}: not a PEM certificate chain", cert_file()))?;
    anyhow::ensure!(!certs.is_empty(), "{}: holds no certificate", cert_file());
    let key = PrivateKeyDer::from_pem_slice(&bytes.key).with_context(|| {
        format!("{} {}: not a PEM private key", config::TLS_KEY, files.key_path.display())
    })?;
    let builder = rustls::ServerConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .context("the TLS versions")?;
    let builder = match (&bytes.client_ca, &files.client_ca_path) {
        (Some(ca), Some(path)) => {
            let ca_file = || format!("{} {}", config::TLS_CLIENT_CA, path.display());
            let mut roots = RootCertStore::empty();
            for cert in CertificateDer::pem_slice_iter(ca) {
                let cert = cert.with_context(|| format!("{}: not a PEM certificate", ca_file()))?;
                roots.add(cert).with_context(|| format!("{}: not a CA certificate", ca_file()))?;
            }
            anyhow::ensure!(!roots.is_empty(), "{}: holds no certificate", ca_file());
            let verifier = WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider)
                .build()
                .with_context(|| format!("{}: the client certificate verifier", ca_file()))?;
            builder.with_client_cert_verifier(verifier)
        }
        _ => builder.with_no_client_auth(),
    };
    let mut config = builder.with_single_cert(certs, key).with_context(|| {
        format!(
            "{} and {} {}: the certificate and its key",
            cert_file(),
            config::TLS_KEY,
            files.key_path.display()
        )
    })?;
    config.alpn_protocols = vec![b"h2".to_vec()];
    Ok(Arc::new(config))
}

/// The connections of `incoming` once their TLS handshake is done, with the settings `tls`
/// holds when each connection comes. Ends when the receiving side is dropped.
pub fn tls_incoming(
    mut incoming: TcpIncoming,
    tls: Arc<ServerTls>,
) -> ReceiverStream<Result<TlsStream<TcpStream>, io::Error>> {
    let (handshaken, receiver) = mpsc::channel(HANDSHAKEN_QUEUE);
    let handshakes = Arc::new(Semaphore::new(TLS_HANDSHAKES_MAX));
    tokio::spawn(async move {
        loop {
            let connection = tokio::select! {
                connection = incoming.next() => connection,
                () = handshaken.closed() => return,
            };
            let stream = match connection {
                None => return,
                Some(Ok(stream)) => stream,
                Some(Err(error)) => {
                    // Out of file descriptors, say: the error comes back at once until some
                    // close; a pause keeps the loop from spinning on it.
                    tracing::warn!(%error, "accepting a connection");
                    tokio::time::sleep(Duration::from_millis(ACCEPT_ERROR_PAUSE_MS)).await;
                    continue;
                }
            };
            let Ok(permit) = handshakes.clone().try_acquire_owned() else {
                tracing::warn!(
                    limit = TLS_HANDSHAKES_MAX,
                    "too many TLS handshakes under way: a connection closed"
                );
                continue;
            };
            let acceptor = TlsAcceptor::from(tls.config());
            let handshaken = handshaken.clone();
            tokio::spawn(async move {
                let timeout = Duration::from_millis(TLS_HANDSHAKE_TIMEOUT_MS);
                match tokio::time::timeout(timeout, acceptor.accept(stream)).await {
                    Ok(Ok(stream)) => {
                        // The permit is held until the server takes the connection: handshaken
                        // connections waiting for it count among the bounded ones.
                        let _ = handshaken.send(Ok(stream)).await;
                        drop(permit);
                    }
                    Ok(Err(error)) => tracing::debug!(%error, "a TLS handshake failed"),
                    Err(_) => tracing::debug!("a TLS handshake took too long"),
                }
            });
        }
    });
    ReceiverStream::new(receiver)
}

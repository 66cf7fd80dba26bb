//! Channels from one service to another (matching to listings, logistics to settlement and
//! listings): plaintext for `http://` addresses; for `https://`, TLS that trusts only the CA the
//! configuration names and, under mutual TLS, presents this process's client certificate.

use std::time::Duration;

use anyhow::Context as _;
use tonic::transport::{Certificate, Channel, ClientTlsConfig, Endpoint, Identity};

use crate::config::{self, ServicesTls};

/// Longest wait for a connection to another service.
pub const SERVICE_CONNECT_TIMEOUT_MS: u64 = 5_000;
/// Longest a call to another service may take.
pub const SERVICE_CALL_TIMEOUT_MS: u64 = 10_000;

/// A channel to the service at `url` (the setting `key`'s value), connected at its first call.
/// The TLS files are read now: a missing one fails the start, naming its setting and path.
pub fn service_channel(url: &str, key: &str, tls: Option<&ServicesTls>) -> anyhow::Result<Channel> {
    let mut endpoint = Endpoint::from_shared(url.to_owned())
        .with_context(|| format!("{key}: {url}"))?
        .connect_timeout(Duration::from_millis(SERVICE_CONNECT_TIMEOUT_MS))
        .timeout(Duration::from_millis(SERVICE_CALL_TIMEOUT_MS));
    if url.starts_with("https://") {
        let tls =
            tls.with_context(|| format!("{key}: {url} is https:// and {} is not set", config::SERVICES_CA))?;
        endpoint = endpoint
            .tls_config(client_tls_config(tls)?)
            .with_context(|| format!("{key}: the TLS settings of {url}"))?;
    }
    Ok(endpoint.connect_lazy())
}

/// The client TLS of `tls`, its files read now.
pub fn client_tls_config(tls: &ServicesTls) -> anyhow::Result<ClientTlsConfig> {
    // One crypto provider for the process, as for the server's port.
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

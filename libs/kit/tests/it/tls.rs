//! The gRPC port with TLS and mutual TLS, checked through `grpc.health.v1` with certificates
//! made for the test: a CA, a server certificate for 127.0.0.1 and localhost, a client
//! certificate.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use rcgen::{
    BasicConstraints, CertificateParams, CertifiedIssuer, DnType, ExtendedKeyUsagePurpose, IsCa, KeyPair,
    KeyUsagePurpose,
};
use symbiose_kit::ServerConfig;
use symbiose_kit::config::TlsFiles;
use symbiose_kit::server::{self, Listeners, ServiceSet};
use tempfile::TempDir;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;
use tonic::transport::{Certificate, ClientTlsConfig, Endpoint, Identity};
use tonic_health::pb::HealthCheckRequest;
use tonic_health::pb::health_check_response::ServingStatus;
use tonic_health::pb::health_client::HealthClient;

/// Longest a call may take before the test counts it as hung: no call here should come near.
const CALL_TIMEOUT_MS: u64 = 10_000;

/// Certificates and keys, as PEM, and the files the server reads them from.
struct Pki {
    dir: TempDir,
    ca_pem: String,
    client_cert_pem: String,
    client_key_pem: String,
}

impl Pki {
    fn new() -> Pki {
        let ca_key = KeyPair::generate().expect("CA key");
        let mut ca_params = CertificateParams::new(Vec::<String>::new()).expect("CA params");
        ca_params.distinguished_name.push(DnType::CommonName, "symbiose test CA");
        ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        ca_params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::DigitalSignature];
        let ca = CertifiedIssuer::self_signed(ca_params, ca_key).expect("CA certificate");

        let server_key = KeyPair::generate().expect("server key");
        let mut server_params = CertificateParams::new(vec!["localhost".to_owned(), "127.0.0.1".to_owned()])
            .expect("server params");
        server_params.distinguished_name.push(DnType::CommonName, "localhost");
        server_params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
        let server_cert = server_params.signed_by(&server_key, &ca).expect("server certificate");

        let client_key = KeyPair::generate().expect("client key");
        let mut client_params = CertificateParams::new(Vec::<String>::new()).expect("client params");
        client_params.distinguished_name.push(DnType::CommonName, "partner");
        client_params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth];
        let client_cert = client_params.signed_by(&client_key, &ca).expect("client certificate");

        let dir = tempfile::tempdir().expect("tempdir");
        let pki = Pki {
            dir,
            ca_pem: ca.pem(),
            client_cert_pem: client_cert.pem(),
            client_key_pem: client_key.serialize_pem(),
        };
        std::fs::write(pki.path("ca.pem"), &pki.ca_pem).expect("write");
        std::fs::write(pki.path("server.pem"), server_cert.pem()).expect("write");
        std::fs::write(pki.path("server.key"), server_key.serialize_pem()).expect("write");
        pki
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    fn tls_files(&self, client_ca: bool) -> TlsFiles {
        TlsFiles {
            cert_path: self.path("server.pem"),
            key_path: self.path("server.key"),
            client_ca_path: client_ca.then(|| self.path("ca.pem")),
        }
    }

    /// A client that trusts the test CA and knows the server as localhost.
    fn client_tls(&self) -> ClientTlsConfig {
        ClientTlsConfig::new().ca_certificate(Certificate::from_pem(&self.ca_pem)).domain_name("localhost")
    }

    fn client_tls_with_certificate(&self) -> ClientTlsConfig {
        self.client_tls().identity(Identity::from_pem(&self.client_cert_pem, &self.client_key_pem))
    }
}

/// A server with no services of its own (health and reflection are always there).
struct TestServer {
    addr: SocketAddr,
    stop: oneshot::Sender<()>,
    task: JoinHandle<anyhow::Result<()>>,
}

impl TestServer {
    async fn start(data_dir: &Path, tls: TlsFiles) -> TestServer {
        let config = ServerConfig {
            metrics_addr: None,
            tls: Some(tls),
            ..ServerConfig::for_tests(data_dir.to_owned())
        };
        let listeners = Listeners::bind(&config).await.expect("bind");
        let addr = listeners.grpc_addr();
        let (stop, stopped) = oneshot::channel::<()>();
        let task = tokio::spawn(async move {
            server::serve(&config, ServiceSet::new(), listeners, async {
                let _ = stopped.await;
            })
            .await
        });
        TestServer { addr, stop, task }
    }

    async fn stop(self) {
        let _ = self.stop.send(());
        let result = tokio::time::timeout(Duration::from_millis(CALL_TIMEOUT_MS), self.task)
            .await
            .expect("the server stops")
            .expect("the server task does not panic");
        result.expect("the server ran without error");
    }
}

/// The overall health the server answers, or why the call failed.
async fn health(addr: SocketAddr, tls: Option<ClientTlsConfig>) -> Result<ServingStatus, String> {
    let call = async {
        let scheme = if tls.is_some() { "https" } else { "http" };
        let mut endpoint = Endpoint::from_shared(format!("{scheme}://{addr}"))
            .map_err(|error| error.to_string())?
            .timeout(Duration::from_millis(CALL_TIMEOUT_MS));
        if let Some(tls) = tls {
            endpoint = endpoint.tls_config(tls).map_err(|error| error.to_string())?;
        }
        let channel = endpoint.connect().await.map_err(|error| format!("connect: {error:?}"))?;
        let response = HealthClient::new(channel)
            .check(HealthCheckRequest { service: String::new() })
            .await
            .map_err(|status| format!("check: {status:?}"))?;
        Ok(response.into_inner().status())
    };
    tokio::time::timeout(Duration::from_millis(CALL_TIMEOUT_MS), call)
        .await
        .unwrap_or_else(|_| panic!("the health call to {addr} hung"))
}

#[tokio::test]
async fn a_tls_port_answers_tls_clients_and_refuses_plaintext() {
    let pki = Pki::new();
    let data = tempfile::tempdir().expect("tempdir");
    let server = TestServer::start(data.path(), pki.tls_files(false)).await;

    assert_eq!(health(server.addr, Some(pki.client_tls())).await, Ok(ServingStatus::Serving));
    let plaintext = health(server.addr, None).await;
    assert!(plaintext.is_err(), "a plaintext client got {plaintext:?}");

    server.stop().await;
}

#[tokio::test]
async fn a_mutual_tls_port_requires_a_client_certificate_from_its_ca() {
    let pki = Pki::new();
    let data = tempfile::tempdir().expect("tempdir");
    let server = TestServer::start(data.path(), pki.tls_files(true)).await;

    let anonymous = health(server.addr, Some(pki.client_tls())).await;
    assert!(
        anonymous.as_ref().is_err_and(|error| error.contains("CertificateRequired")),
        "a client without a certificate got {anonymous:?}"
    );
    assert_eq!(
        health(server.addr, Some(pki.client_tls_with_certificate())).await,
        Ok(ServingStatus::Serving)
    );

    // A certificate from another CA is no better than none.
    let stranger = Pki::new();
    let foreign =
        pki.client_tls().identity(Identity::from_pem(&stranger.client_cert_pem, &stranger.client_key_pem));
    let refused = health(server.addr, Some(foreign)).await;
    assert!(refused.is_err(), "a client with a foreign certificate got {refused:?}");

    server.stop().await;
}

#[tokio::test]
async fn a_missing_tls_file_stops_the_start_naming_it() {
    let pki = Pki::new();
    let data = tempfile::tempdir().expect("tempdir");
    let missing = pki.path("absent.key");
    let tls = TlsFiles { key_path: missing.clone(), ..pki.tls_files(false) };
    let config = ServerConfig {
        metrics_addr: None,
        tls: Some(tls),
        ..ServerConfig::for_tests(data.path().to_owned())
    };
    let listeners = Listeners::bind(&config).await.expect("bind");

    let error = server::serve(&config, ServiceSet::new(), listeners, std::future::pending())
        .await
        .expect_err("a missing key file");
    let message = format!("{error:#}");
    assert!(message.contains("SYMBIOSE_TLS_KEY"), "{message}");
    assert!(message.contains(&missing.display().to_string()), "{message}");
}

#[tokio::test]
async fn a_file_that_is_not_pem_stops_the_start_naming_it() {
    let pki = Pki::new();
    let data = tempfile::tempdir().expect("tempdir");
    let garbage = pki.path("garbage.pem");
    std::fs::write(&garbage, "not a certificate").expect("write");
    let tls = TlsFiles { cert_path: garbage.clone(), ..pki.tls_files(false) };
    let config = ServerConfig {
        metrics_addr: None,
        tls: Some(tls),
        ..ServerConfig::for_tests(data.path().to_owned())
    };
    let listeners = Listeners::bind(&config).await.expect("bind");

    let error = server::serve(&config, ServiceSet::new(), listeners, std::future::pending())
        .await
        .expect_err("a certificate that is not PEM");
    let message = format!("{error:#}");
    assert!(message.contains(&garbage.display().to_string()), "{message}");
}

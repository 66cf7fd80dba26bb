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

/// Replaces `to` with `from`'s bytes whole, as a renewal rewrites a mounted Secret's files.
fn replace_file(from: &Path, to: &Path) {
    let temporary = to.with_extension("renewing");
    std::fs::copy(from, &temporary).expect("copy");
    std::fs::rename(&temporary, to).expect("rename");
}

#[tokio::test]
async fn a_renewed_certificate_is_served_to_new_connections_without_a_restart() {
    let pki = Pki::new();
    let data = tempfile::tempdir().expect("tempdir");
    let server = TestServer::start(data.path(), pki.tls_files(false)).await;
    assert_eq!(health(server.addr, Some(pki.client_tls())).await, Ok(ServingStatus::Serving));

    // The certificate is renewed, by another CA so that a client tells them apart.
    let renewed = Pki::new();
    replace_file(&renewed.path("server.key"), &pki.path("server.key"));
    replace_file(&renewed.path("server.pem"), &pki.path("server.pem"));
    let started = std::time::Instant::now();
    let reload_wait = Duration::from_millis(symbiose_kit::tls::TLS_RELOAD_INTERVAL_MS * 3);
    loop {
        if health(server.addr, Some(renewed.client_tls())).await == Ok(ServingStatus::Serving) {
            break;
        }
        assert!(
            started.elapsed() < reload_wait,
            "the renewed certificate is not served after {reload_wait:?}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    println!("the renewed certificate was served {:?} after its files changed", started.elapsed());
    let old = health(server.addr, Some(pki.client_tls())).await;
    assert!(old.is_err(), "a client trusting only the old CA got {old:?}");

    // A renewal that does not load (a certificate without its key) leaves the last good one.
    std::fs::write(
        pki.path("server.pem"),
        "-----BEGIN CERTIFICATE-----\nbroken\n-----END CERTIFICATE-----\n",
    )
    .expect("write");
    tokio::time::sleep(reload_wait).await;
    assert_eq!(health(server.addr, Some(renewed.client_tls())).await, Ok(ServingStatus::Serving));

    server.stop().await;
}

#[tokio::test]
async fn the_health_port_answers_in_plaintext_beside_tls_and_a_stop_turns_every_status_not_serving_first() {
    let pki = Pki::new();
    let data = tempfile::tempdir().expect("tempdir");
    let delay_ms = 1_500;
    let config = ServerConfig {
        metrics_addr: None,
        health_addr: Some(SocketAddr::from(([127, 0, 0, 1], 0))),
        shutdown_delay_ms: delay_ms,
        tls: Some(pki.tls_files(true)),
        ..ServerConfig::for_tests(data.path().to_owned())
    };
    let listeners = Listeners::bind(&config).await.expect("bind");
    let (addr, health_addr) = (listeners.grpc_addr(), listeners.health_addr().expect("a health port"));
    let (stop, stopped) = oneshot::channel::<()>();
    let task = tokio::spawn(async move {
        let mut services = ServiceSet::new();
        services.add(NamedHealth);
        server::serve(&config, services, listeners, async {
            let _ = stopped.await;
        })
        .await
    });

    // Plaintext on the health port, mutual TLS only on the gRPC port.
    assert_eq!(health(health_addr, None).await, Ok(ServingStatus::Serving));
    assert_eq!(health_of(health_addr, NamedHealth::NAME).await, Ok(ServingStatus::Serving));
    assert!(health(addr, None).await.is_err(), "the gRPC port answered plaintext");
    assert_eq!(health(addr, Some(pki.client_tls_with_certificate())).await, Ok(ServingStatus::Serving));

    // A stop: at once every status says NOT_SERVING, the overall one too, while the gRPC port
    // still takes calls for the delay.
    let stop_sent = std::time::Instant::now();
    let _ = stop.send(());
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!(health(health_addr, None).await, Ok(ServingStatus::NotServing));
    assert_eq!(health_of(health_addr, NamedHealth::NAME).await, Ok(ServingStatus::NotServing));
    assert_eq!(health(addr, Some(pki.client_tls_with_certificate())).await, Ok(ServingStatus::NotServing));
    assert!(stop_sent.elapsed() < Duration::from_millis(delay_ms), "the checks took the whole delay");
    // Then the port closes.
    let result = tokio::time::timeout(Duration::from_millis(CALL_TIMEOUT_MS), task)
        .await
        .expect("the server stops")
        .expect("the server task does not panic");
    result.expect("the server ran without error");
    assert!(stop_sent.elapsed() >= Duration::from_millis(delay_ms), "the port closed before the delay");
    assert!(health(addr, Some(pki.client_tls_with_certificate())).await.is_err(), "the port still answers");
    assert!(health(health_addr, None).await.is_err(), "the health port still answers");
}

/// A service of the server's own, for the health service to report a status for by its name;
/// it answers every call UNIMPLEMENTED.
#[derive(Clone)]
struct NamedHealth;

impl NamedHealth {
    const NAME: &'static str = "symbiose.test.v1.Named";
}

impl tonic::server::NamedService for NamedHealth {
    const NAME: &'static str = NamedHealth::NAME;
}

impl tower::Service<http::Request<tonic::body::Body>> for NamedHealth {
    type Response = http::Response<tonic::body::Body>;
    type Error = std::convert::Infallible;
    type Future = std::future::Ready<Result<Self::Response, Self::Error>>;

    fn poll_ready(&mut self, _: &mut std::task::Context<'_>) -> std::task::Poll<Result<(), Self::Error>> {
        std::task::Poll::Ready(Ok(()))
    }

    fn call(&mut self, _: http::Request<tonic::body::Body>) -> Self::Future {
        std::future::ready(Ok(tonic::Status::unimplemented("a name only").into_http()))
    }
}

/// The status of the service `service` on a plaintext port.
async fn health_of(addr: SocketAddr, service: &str) -> Result<ServingStatus, String> {
    let channel = Endpoint::from_shared(format!("http://{addr}"))
        .map_err(|error| error.to_string())?
        .timeout(Duration::from_millis(CALL_TIMEOUT_MS))
        .connect()
        .await
        .map_err(|error| format!("connect: {error:?}"))?;
    let response = HealthClient::new(channel)
        .check(HealthCheckRequest { service: service.to_owned() })
        .await
        .map_err(|status| format!("check: {status:?}"))?;
    Ok(response.into_inner().status())
}

#[tokio::test]
async fn a_renewed_client_certificate_is_presented_on_new_connections_without_a_restart() {
    let pki = Pki::new();
    let data = tempfile::tempdir().expect("tempdir");
    let server = TestServer::start(data.path(), pki.tls_files(true)).await;
    // The client starts with a certificate from another CA: the server refuses it.
    let stranger = Pki::new();
    let (cert, key) = (pki.path("client.pem"), pki.path("client.key"));
    std::fs::write(&cert, &stranger.client_cert_pem).expect("write");
    std::fs::write(&key, &stranger.client_key_pem).expect("write");
    let tls = symbiose_kit::config::ServicesTls {
        ca_path: pki.path("ca.pem"),
        client: Some((cert.clone(), key.clone())),
    };
    let url = format!("https://127.0.0.1:{}", server.addr.port());
    let channel =
        symbiose_kit::client::service_channel(&url, "SYMBIOSE_LISTINGS_URL", Some(&tls)).expect("a channel");
    let check = |channel: tonic::transport::Channel| async move {
        HealthClient::new(channel)
            .check(HealthCheckRequest { service: String::new() })
            .await
            .map(|answer| answer.into_inner().status())
    };
    let refused = check(channel.clone()).await;
    assert!(refused.is_err(), "a certificate from another CA: {refused:?}");
    // Renewed: the files now hold a certificate of the server's CA.
    let renewed_key = pki.path("renewed.key");
    std::fs::write(&renewed_key, &pki.client_key_pem).expect("write");
    std::fs::rename(&renewed_key, &key).expect("rename");
    let renewed_cert = pki.path("renewed.pem");
    std::fs::write(&renewed_cert, &pki.client_cert_pem).expect("write");
    std::fs::rename(&renewed_cert, &cert).expect("rename");
    let started = std::time::Instant::now();
    let wait = Duration::from_millis(symbiose_kit::client::CLIENT_TLS_RELOAD_INTERVAL_MS * 3);
    loop {
        match check(channel.clone()).await {
            Ok(status) => {
                assert_eq!(status, ServingStatus::Serving);
                break;
            }
            Err(status) => {
                assert!(started.elapsed() < wait, "still refused {wait:?} after the renewal: {status:?}")
            }
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    println!("the renewed client certificate was presented {:?} after its files changed", started.elapsed());
    server.stop().await;
}

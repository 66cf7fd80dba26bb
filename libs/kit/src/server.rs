//! The gRPC server every Symbiose process runs: the services it is given, plus health
//! (`grpc.health.v1`) and reflection (v1 and v1alpha, knowing every Symbiose file and the
//! health service), behind a timeout, a per-connection concurrency limit, a span, a trace
//! context (`traceparent` in and out) and metrics per call, with graceful shutdown bounded in
//! time. With a certificate and key in the config the port serves TLS only (and, with a client
//! CA, requires client certificates); it never falls back to plaintext, and takes renewed
//! certificate files without a restart ([`crate::tls`]). A plaintext health port, when
//! configured, answers the same health statuses for probes that cannot speak the port's TLS. At
//! a stop every status turns NOT_SERVING, the overall one included, and the port keeps taking
//! calls for the configured delay before it closes and lets the calls in flight finish.

use std::convert::Infallible;
use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use tokio::net::TcpListener;
use tokio::sync::watch;
use tonic::body::Body;
use tonic::server::NamedService;
use tonic::service::RoutesBuilder;
use tonic::transport::server::TcpIncoming;
use tonic_health::ServingStatus;

use crate::ServerConfig;
use crate::metrics::{self, Metrics};
use crate::tls::ServerTls;
use crate::trace::TraceLayer;
use crate::undecodable::UndecodableLayer;

/// The sockets a server answers on: bound before the server starts, so that a test (or a
/// supervisor) knows the ports, including those picked by the system for port 0.
#[derive(Debug)]
pub struct Listeners {
    pub grpc: TcpListener,
    pub metrics: Option<TcpListener>,
    /// The plaintext health port, when the configuration names one.
    pub health: Option<TcpListener>,
    /// The public web port, for the processes that serve one (the standalone server and the
    /// passports alone, bound by [`Listeners::bind_with_web`]); `None` for the others.
    pub web: Option<TcpListener>,
}

impl Listeners {
    pub async fn bind(config: &ServerConfig) -> anyhow::Result<Listeners> {
        let grpc = TcpListener::bind(config.listen_addr)
            .await
            .with_context(|| format!("binding the gRPC port {}", config.listen_addr))?;
        let metrics = match config.metrics_addr {
            Some(addr) => Some(
                TcpListener::bind(addr).await.with_context(|| format!("binding the metrics port {addr}"))?,
            ),
            None => None,
        };
        let health = match config.health_addr {
            Some(addr) => Some(
                TcpListener::bind(addr).await.with_context(|| format!("binding the health port {addr}"))?,
            ),
            None => None,
        };
        Ok(Listeners { grpc, metrics, health, web: None })
    }

    /// [`Listeners::bind`] and the public web port the configuration names.
    pub async fn bind_with_web(config: &ServerConfig) -> anyhow::Result<Listeners> {
        let mut listeners = Listeners::bind(config).await?;
        if let Some(addr) = config.web_addr {
            listeners.web =
                Some(TcpListener::bind(addr).await.with_context(|| format!("binding the web port {addr}"))?);
        }
        Ok(listeners)
    }

    pub fn web_addr(&self) -> Option<SocketAddr> {
        self.web.as_ref().map(|listener| listener.local_addr().expect("a bound listener has an address"))
    }

    /// The URL the public web port is reached at: the configured one, else `http://` and the
    /// port's bound address.
    pub fn public_base_url(&self, config: &ServerConfig) -> Option<String> {
        match (&config.public_base_url, self.web_addr()) {
            (Some(url), _) => Some(url.clone()),
            (None, Some(addr)) => Some(format!("http://{addr}")),
            (None, None) => None,
        }
    }

    pub fn grpc_addr(&self) -> SocketAddr {
        self.grpc.local_addr().expect("a bound listener has an address")
    }

    pub fn health_addr(&self) -> Option<SocketAddr> {
        self.health.as_ref().map(|listener| listener.local_addr().expect("a bound listener has an address"))
    }

    pub fn metrics_addr(&self) -> Option<SocketAddr> {
        self.metrics.as_ref().map(|listener| listener.local_addr().expect("a bound listener has an address"))
    }
}

/// The gRPC services one process serves, with their names for the health service.
#[derive(Debug, Default)]
pub struct ServiceSet {
    routes: RoutesBuilder,
    names: Vec<&'static str>,
}

impl ServiceSet {
    pub fn new() -> ServiceSet {
        ServiceSet::default()
    }

    pub fn add<S>(&mut self, service: S) -> &mut ServiceSet
    where
        S: tower::Service<http::Request<Body>, Error = Infallible>
            + NamedService
            + Clone
            + Send
            + Sync
            + 'static,
        S::Response: axum::response::IntoResponse,
        S::Future: Send + 'static,
    {
        self.names.push(S::NAME);
        self.routes.add_service(service);
        self
    }
}

/// Serves `services` on `listeners` until `shutdown` completes, then stops taking calls, lets
/// the calls in flight finish for at most the configured grace, and returns.
pub async fn serve(
    config: &ServerConfig,
    services: ServiceSet,
    listeners: Listeners,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> anyhow::Result<()> {
    // Read the TLS files first, so that a missing one stops the start before anything runs.
    let tls = match &config.tls {
        // The certificate and key are parsed here: a file that is not PEM fails the start.
        Some(files) => Some(Arc::new(ServerTls::load(files.clone()).await?)),
        None => None,
    };
    let ServiceSet { mut routes, names } = services;
    let (health_reporter, health_service) = tonic_health::server::health_reporter();
    for name in &names {
        health_reporter.set_service_status(name, ServingStatus::Serving).await;
    }
    let reflection_v1 = tonic_reflection::server::Builder::configure()
        .register_encoded_file_descriptor_set(symbiose_proto::FILE_DESCRIPTOR_SET)
        .register_encoded_file_descriptor_set(tonic_health::pb::FILE_DESCRIPTOR_SET)
        .build_v1()
        .context("building reflection v1")?;
    let reflection_v1alpha = tonic_reflection::server::Builder::configure()
        .register_encoded_file_descriptor_set(symbiose_proto::FILE_DESCRIPTOR_SET)
        .register_encoded_file_descriptor_set(tonic_health::pb::FILE_DESCRIPTOR_SET)
        .build_v1alpha()
        .context("building reflection v1alpha")?;
    routes.add_service(health_service.clone()).add_service(reflection_v1).add_service(reflection_v1alpha);

    let metrics = Metrics::new();
    let (stop_sender, stop_receiver) = watch::channel(false);
    let stopped = |mut receiver: watch::Receiver<bool>| async move {
        // An error means the sender is gone, which also means stop.
        let _ = receiver.wait_for(|stop| *stop).await;
    };

    let metrics_task = listeners.metrics.map(|listener| {
        tracing::info!(addr = %listener.local_addr().map(|a| a.to_string()).unwrap_or_default(), "metrics listening");
        tokio::spawn(metrics::serve(listener, metrics.clone(), stopped(stop_receiver.clone())))
    });
    // Health only, plaintext, the same statuses: for the kubelet's gRPC probes, which cannot
    // speak TLS. It answers from now on, when the gRPC port does.
    let health_task = listeners.health.map(|listener| {
        tracing::info!(addr = %listener.local_addr().map(|a| a.to_string()).unwrap_or_default(), "health listening");
        let incoming = TcpIncoming::from(listener).with_nodelay(Some(true));
        let health = tonic::transport::Server::builder()
            .timeout(Duration::from_millis(config.request_timeout_ms))
            .concurrency_limit_per_connection(config.concurrency_per_connection_max)
            .add_service(health_service.clone())
            .serve_with_incoming_shutdown(incoming, stopped(stop_receiver.clone()));
        tokio::spawn(async move {
            if let Err(error) = health.await {
                tracing::error!(%error, "the health port stopped");
            }
        })
    });

    let grpc_addr = listeners.grpc.local_addr().context("reading the gRPC address")?;
    tracing::info!(
        addr = %grpc_addr,
        services = ?names,
        tls = config.tls.is_some(),
        client_certificates = config.tls.as_ref().is_some_and(|files| files.client_ca_path.is_some()),
        "gRPC listening"
    );
    // `serve_with_incoming*` ignores the builder's `tcp_nodelay`: the incoming stream sets it.
    // Without it, a reply's trailers wait behind Nagle's algorithm for the client's delayed
    // acknowledgement of its message, 40 ms on Linux, on every call with a larger answer.
    let incoming = TcpIncoming::from(listeners.grpc).with_nodelay(Some(true));
    let router = tonic::transport::Server::builder()
        .timeout(Duration::from_millis(config.request_timeout_ms))
        .concurrency_limit_per_connection(config.concurrency_per_connection_max)
        // Outermost: the span, the trace context and the `traceparent` answered cover the
        // whole call, metrics and refusals included.
        .layer(TraceLayer)
        .layer(metrics.layer())
        // Inside the metrics, so that they count an undecodable request as the caller sees it.
        .layer(UndecodableLayer)
        .add_routes(routes.routes());
    let delay = Duration::from_millis(config.shutdown_delay_ms);
    let stopping = {
        let health_reporter = health_reporter.clone();
        async move {
            shutdown.await;
            tracing::info!(
                delay_ms = delay.as_millis() as u64,
                "shutting down: every health status NOT_SERVING"
            );
            // The overall status ("") too: a probe or a balancer asking for it stops sending.
            health_reporter.set_service_status("", ServingStatus::NotServing).await;
            for name in &names {
                health_reporter.set_service_status(name, ServingStatus::NotServing).await;
            }
            // Calls are still taken while the endpoints learn it.
            tokio::time::sleep(delay).await;
            let _ = stop_sender.send(true);
        }
    };
    let server: Pin<Box<dyn Future<Output = Result<(), tonic::transport::Error>> + Send>> = match tls {
        Some(tls) => {
            tokio::spawn(tls.clone().keep_reloading(stop_receiver.clone()));
            Box::pin(router.serve_with_incoming_shutdown(crate::tls::tls_incoming(incoming, tls), stopping))
        }
        None => Box::pin(router.serve_with_incoming_shutdown(incoming, stopping)),
    };

    let grace = Duration::from_millis(config.shutdown_grace_ms);
    let result = tokio::select! {
        result = server => result.context("serving gRPC"),
        () = async { stopped(stop_receiver.clone()).await; tokio::time::sleep(grace).await } => {
            tracing::warn!(grace_ms = config.shutdown_grace_ms, "calls still in flight after the shutdown grace, stopping anyway");
            Ok(())
        }
    };
    if let Some(task) = metrics_task {
        task.abort();
    }
    if let Some(task) = health_task {
        task.abort();
    }
    result
}

/// Completes on Ctrl-C or SIGTERM.
pub async fn shutdown_signal() {
    let ctrl_c = async {
        if let Err(error) = tokio::signal::ctrl_c().await {
            tracing::error!(%error, "cannot listen for Ctrl-C");
            std::future::pending::<()>().await;
        }
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(error) => {
                tracing::error!(%error, "cannot listen for SIGTERM");
                std::future::pending::<()>().await;
            }
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {}
        () = terminate => {}
    }
}

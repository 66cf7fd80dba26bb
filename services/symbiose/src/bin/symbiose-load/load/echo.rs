//! The echo server: the ceiling of the transport. A bare tonic server answering
//! `grpc.health.v1.Health/Check` (tonic-health, a unary call with a message of a few bytes),
//! with tonic's defaults and nothing else: no authentication, no layers, no store. Its sockets
//! are `TCP_NODELAY`, as `Server::serve` makes them by default.

use std::io::Read as _;
use std::net::SocketAddr;

use anyhow::Context as _;
use tonic::transport::server::TcpIncoming;

/// Serves health on `address` (port 0: a free one), prints the address bound on its first line
/// of output, and stops when its standard input ends: the process that started it holds the
/// other end, so the echo server never outlives the run.
pub(crate) async fn serve(address: SocketAddr) -> anyhow::Result<()> {
    let listener = tokio::net::TcpListener::bind(address)
        .await
        .with_context(|| format!("--echo-server {address}: binding"))?;
    println!("{}", listener.local_addr().context("the address bound")?);
    let (_reporter, health) = tonic_health::server::health_reporter();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    std::thread::spawn(move || {
        let mut sink = [0_u8; 64];
        // Reads until the end of input (or an error), keeping nothing.
        while matches!(std::io::stdin().read(&mut sink), Ok(read) if read > 0) {}
        let _ = stop.send(());
    });
    tonic::transport::Server::builder()
        .add_service(health)
        // `serve_with_incoming` ignores the builder's `tcp_nodelay`: the incoming stream sets it.
        .serve_with_incoming_shutdown(TcpIncoming::from(listener).with_nodelay(Some(true)), async {
            let _ = stopped.await;
        })
        .await
        .context("serving the echo")
}

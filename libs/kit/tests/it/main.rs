//! Black-box tests of the service kit: real servers on loopback ports, real clients.

mod otlp;
mod power_loss;
mod tls;

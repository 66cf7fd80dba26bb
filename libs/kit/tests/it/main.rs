//! Black-box tests of the service kit: real servers on loopback ports, real clients.

mod power_loss;
mod tls;

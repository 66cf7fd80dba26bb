//! A real `nats-server` with JetStream for tests and benchmarks: its own free port on
//! loopback and its own storage directory, started and awaited with a bound, killed on drop.
//!
//! Where no `nats-server` is installed, [`NatsServer::start_or_skip`] says so plainly and lets
//! the test return (a newcomer's `cargo test --workspace` still passes); where the `CI`
//! environment variable is set, a missing server fails the test instead.

use std::fs;
use std::io::Write as _;
use std::net::{Ipv4Addr, SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// Where the Debian package installs the server.
pub const NATS_SERVER_PATH: &str = "/usr/sbin/nats-server";
/// Longest wait for a server to accept connections after it is started.
pub const NATS_START_TIMEOUT_MS: u64 = 15_000;
/// Longest wait for a server to exit after it is asked to stop.
pub const NATS_STOP_TIMEOUT_MS: u64 = 15_000;
/// The pause between two checks while waiting for a server.
const POLL_INTERVAL_MS: u64 = 10;
/// Free ports tried, at most, before starting fails.
const PORT_ATTEMPTS_MAX: usize = 5;

/// A `nats-server -js` of its own. Dropping it kills the process and removes its directory.
#[derive(Debug)]
pub struct NatsServer {
    binary: PathBuf,
    port: u16,
    dir: tempfile::TempDir,
    child: Option<Child>,
}

impl NatsServer {
    /// A started server, or `None` after printing that `test` was skipped because no
    /// `nats-server` is installed. Panics if it is missing where `CI` is set, or if it does not
    /// start.
    pub fn start_or_skip(test: &str) -> Option<NatsServer> {
        let Some(binary) = find_binary() else {
            if std::env::var_os("CI").is_some_and(|value| !value.is_empty()) {
                panic!(
                    "{test}: nats-server is not installed (on PATH or at {NATS_SERVER_PATH}), and CI is set"
                );
            }
            // Written to the process's stderr, not through the test harness's capture, so that
            // it shows in a passing run.
            let _ = writeln!(
                std::io::stderr(),
                "SKIPPED {test}: nats-server is not installed (looked on PATH and at {NATS_SERVER_PATH}); \
                 install it with `apt-get install nats-server` to run this test"
            );
            return None;
        };
        Some(NatsServer::start_with(binary).unwrap_or_else(|error| panic!("{test}: {error}")))
    }

    /// Starts a server, failing if none is installed.
    pub fn start() -> Result<NatsServer, String> {
        let binary = find_binary().ok_or_else(|| {
            format!(
                "nats-server is not installed (on PATH or at {NATS_SERVER_PATH}): apt-get install nats-server"
            )
        })?;
        NatsServer::start_with(binary)
    }

    fn start_with(binary: PathBuf) -> Result<NatsServer, String> {
        let mut dir = tempfile::tempdir().map_err(|error| format!("temporary directory: {error}"))?;
        let mut last_error = String::new();
        for _ in 0..PORT_ATTEMPTS_MAX {
            let port = free_port()?;
            let mut server = NatsServer { binary: binary.clone(), port, dir, child: None };
            match server.spawn_and_wait() {
                Ok(()) => return Ok(server),
                Err(error) => {
                    last_error = error;
                    dir = server.take_dir();
                }
            }
        }
        Err(format!("nats-server did not start after {PORT_ATTEMPTS_MAX} ports, last: {last_error}"))
    }

    /// `nats://127.0.0.1:<port>`.
    pub fn url(&self) -> String {
        format!("nats://127.0.0.1:{}", self.port)
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// The JetStream storage directory.
    pub fn store_dir(&self) -> PathBuf {
        self.dir.path().join("jetstream")
    }

    /// Kills the server at once (SIGKILL), as a crash would, and waits for it to exit.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Asks the server to shut down cleanly (`--signal quit`: it flushes its store) and waits
    /// for it to exit, killing it if it takes longer than [`NATS_STOP_TIMEOUT_MS`].
    pub fn stop(&mut self) {
        let Some(mut child) = self.child.take() else { return };
        let _ = Command::new(&self.binary)
            .arg("--signal")
            .arg(format!("quit={}", child.id()))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
        let deadline = Instant::now() + Duration::from_millis(NATS_STOP_TIMEOUT_MS);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(POLL_INTERVAL_MS));
        }
        let _ = child.kill();
        let _ = child.wait();
    }

    /// Starts the server again on the same port with the same storage, after
    /// [`NatsServer::kill`] or [`NatsServer::stop`].
    pub fn restart(&mut self) -> Result<(), String> {
        assert!(self.child.is_none(), "restart a stopped server");
        self.spawn_and_wait()
    }

    fn spawn_and_wait(&mut self) -> Result<(), String> {
        let log_path = self.dir.path().join("nats-server.log");
        // The log is appended to across restarts: only what this run writes counts.
        let log_start = fs::metadata(&log_path).map_or(0, |metadata| metadata.len());
        let child = Command::new(&self.binary)
            .arg("-js")
            .arg("-sd")
            .arg(self.store_dir())
            .arg("-a")
            .arg("127.0.0.1")
            .arg("-p")
            .arg(self.port.to_string())
            .arg("-l")
            .arg(&log_path)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .map_err(|error| format!("starting {}: {error}", self.binary.display()))?;
        self.child = Some(child);
        let address = SocketAddr::from((Ipv4Addr::LOCALHOST, self.port));
        let deadline = Instant::now() + Duration::from_millis(NATS_START_TIMEOUT_MS);
        loop {
            let child = self.child.as_mut().expect("spawned above");
            if let Ok(Some(status)) = child.try_wait() {
                self.child = None;
                return Err(format!("nats-server exited with {status}: {}", log_tail(&log_path)));
            }
            if TcpStream::connect_timeout(&address, Duration::from_millis(100)).is_ok()
                && ready(&log_path, log_start)
            {
                return Ok(());
            }
            if Instant::now() >= deadline {
                self.kill();
                return Err(format!(
                    "nats-server did not accept connections on {address} within {NATS_START_TIMEOUT_MS} ms: {}",
                    log_tail(&log_path)
                ));
            }
            std::thread::sleep(Duration::from_millis(POLL_INTERVAL_MS));
        }
    }

    fn take_dir(mut self) -> tempfile::TempDir {
        self.kill();
        let placeholder = tempfile::tempdir().expect("temporary directory");
        std::mem::replace(&mut self.dir, placeholder)
    }
}

impl Drop for NatsServer {
    fn drop(&mut self) {
        self.kill();
    }
}

/// `nats-server` on `PATH`, else at [`NATS_SERVER_PATH`].
pub fn find_binary() -> Option<PathBuf> {
    let on_path = std::env::var_os("PATH")
        .into_iter()
        .flat_map(|path| std::env::split_paths(&path).collect::<Vec<_>>())
        .map(|dir| dir.join("nats-server"))
        .find(|candidate| candidate.is_file());
    on_path.or_else(|| Some(PathBuf::from(NATS_SERVER_PATH)).filter(|path| path.is_file()))
}

/// A port nothing listens on now (the server takes it a moment later).
fn free_port() -> Result<u16, String> {
    let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0))
        .map_err(|error| format!("finding a free port: {error}"))?;
    listener
        .local_addr()
        .map(|address| address.port())
        .map_err(|error| format!("finding a free port: {error}"))
}

/// Whether the server's log says it is ready: it accepts clients only once JetStream is up,
/// but the log line is the server's own word for it.
fn ready(log_path: &Path, log_start: u64) -> bool {
    let log = fs::read(log_path).unwrap_or_default();
    let start = usize::try_from(log_start).unwrap_or(usize::MAX).min(log.len());
    String::from_utf8_lossy(&log[start..]).contains("Server is ready")
}

fn log_tail(log_path: &Path) -> String {
    let log = fs::read_to_string(log_path).unwrap_or_default();
    let lines: Vec<&str> = log.lines().collect();
    lines[lines.len().saturating_sub(10)..].join("\n")
}

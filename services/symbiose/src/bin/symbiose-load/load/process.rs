//! The processes a run starts (the standalone server, the echo server) and what `/proc` says
//! of a process: the CPU time it used and its resident memory.

use std::fs;
use std::io::{BufRead as _, BufReader};
use std::net::{SocketAddr, TcpListener};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use anyhow::Context as _;
use tonic::transport::{Channel, Endpoint};
use tonic_health::pb::HealthCheckRequest;
use tonic_health::pb::health_check_response::ServingStatus;
use tonic_health::pb::health_client::HealthClient;

/// Longest wait for the standalone server to answer health after its start, in milliseconds:
/// a first start makes the signing key and opens an empty store, which takes well under this.
const SERVER_START_WAIT_MS: u64 = 60_000;
/// Longest wait for the echo server to print its address, in milliseconds.
const ECHO_START_WAIT_MS: u64 = 10_000;
/// Pause between two looks at a starting server, in milliseconds.
const START_POLL_MS: u64 = 50;
/// Longest time to connect to a server, in milliseconds.
pub(crate) const CONNECT_TIMEOUT_MS: u64 = 5_000;
/// Longest a call may take before the client gives up on it, in milliseconds.
pub(crate) const CALL_TIMEOUT_MS: u64 = 30_000;
/// Bytes of the server's log shown when it fails to start.
const LOG_TAIL_BYTES: usize = 4_000;

/// A child process, killed when dropped: a run that fails half-way leaves nothing behind.
#[derive(Debug)]
pub(crate) struct ChildProcess {
    child: Child,
    name: &'static str,
}

impl ChildProcess {
    pub(crate) fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Kills the process with SIGKILL and waits for it.
    pub(crate) fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// An error naming the child if it has exited.
    fn check_running(&mut self) -> anyhow::Result<()> {
        match self.child.try_wait().with_context(|| format!("waiting for the {}", self.name))? {
            Some(status) => anyhow::bail!("the {} exited with {status}", self.name),
            None => Ok(()),
        }
    }
}

impl Drop for ChildProcess {
    fn drop(&mut self) {
        // The server's data directory is a temporary one, removed after it: nothing to keep.
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The standalone server started on the embedded store in `data_dir`, on free loopback ports.
#[derive(Debug)]
pub(crate) struct StartedServer {
    pub(crate) process: ChildProcess,
    pub(crate) address: SocketAddr,
    pub(crate) operator_token: String,
    pub(crate) binary: PathBuf,
}

/// Starts `binary` as the standalone server with its data in `data_dir` (its log in
/// `data_dir/server.log`), rate limits too high to be reached, on the embedded store, and
/// waits until it serves.
pub(crate) async fn start_server(binary: &Path, data_dir: &Path) -> anyhow::Result<StartedServer> {
    start_server_on(binary, data_dir, None).await
}

/// Starts `binary` as [`start_server`] does, on the PostgreSQL database at `postgres` if given.
pub(crate) async fn start_server_on(
    binary: &Path,
    data_dir: &Path,
    postgres: Option<&str>,
) -> anyhow::Result<StartedServer> {
    start_server_with(binary, data_dir, postgres, &[], Duration::from_millis(SERVER_START_WAIT_MS)).await
}

/// Starts `binary` as [`start_server_on`] does, with the variables `env` on top, waiting at
/// most `wait` for it to serve.
pub(crate) async fn start_server_with(
    binary: &Path,
    data_dir: &Path,
    postgres: Option<&str>,
    env: &[(&str, &str)],
    wait: Duration,
) -> anyhow::Result<StartedServer> {
    anyhow::ensure!(
        binary.is_file(),
        "no symbiose binary at {}: build it beside symbiose-load (cargo build --release -p symbiose \
         --bin symbiose --bin symbiose-load), or call a running server with --target and --token-file",
        binary.display()
    );
    let address = free_loopback_address()?;
    let log_path = data_dir.join("server.log");
    let log = fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(&log_path)
        .with_context(|| format!("creating {}", log_path.display()))?;
    let mut command = Command::new(binary);
    match postgres {
        Some(url) => {
            command.env(symbiose_kit::config::STORE, "postgres").env(symbiose_kit::config::POSTGRES_URL, url)
        }
        None => command.env(symbiose_kit::config::STORE, "embedded"),
    };
    let child = command
        .arg("serve")
        .env(symbiose_kit::config::LISTEN_ADDR, address.to_string())
        .env(symbiose_kit::config::DATA_DIR, data_dir.join("data"))
        .env(symbiose_kit::config::METRICS_ADDR, "off")
        .env(symbiose_kit::config::WEB_ADDR, "off")
        .env(symbiose_kit::config::NATS_URL, "")
        // The largest the configuration allows: the run measures the service, not the limits.
        .env(symbiose_kit::config::RATE_LIMIT_PER_SECOND, "100000")
        .env(symbiose_kit::config::RATE_LIMIT_BURST, "1000000")
        .envs(env.iter().copied())
        .stdin(Stdio::null())
        .stdout(log.try_clone().context("sharing the server's log")?)
        .stderr(log)
        .spawn()
        .with_context(|| format!("starting {}", binary.display()))?;
    let mut process = ChildProcess { child, name: "symbiose server" };
    let deadline = Instant::now() + wait;
    loop {
        if let Err(error) = process.check_running() {
            return Err(error.context(log_tail(&log_path)));
        }
        if serving(address).await {
            break;
        }
        if Instant::now() >= deadline {
            return Err(anyhow::anyhow!("the server did not serve within {} ms", wait.as_millis())
                .context(log_tail(&log_path)));
        }
        tokio::time::sleep(Duration::from_millis(START_POLL_MS)).await;
    }
    let token_path = data_dir.join("data").join(symbiose_kit::auth::OPERATOR_TOKEN_FILE);
    let operator_token = fs::read_to_string(&token_path)
        .with_context(|| format!("reading the operator token at {}", token_path.display()))?
        .trim()
        .to_owned();
    Ok(StartedServer { process, address, operator_token, binary: binary.to_owned() })
}

/// The echo server: this binary again, in its `--echo-server` mode, as a process of its own.
#[derive(Debug)]
pub(crate) struct EchoServer {
    pub(crate) process: ChildProcess,
    pub(crate) address: SocketAddr,
}

/// Starts this executable with `--echo-server 127.0.0.1:0` and reads the address it bound from
/// its first line. Its standard input stays open while the run goes on: it stops at its end.
pub(crate) async fn start_echo() -> anyhow::Result<EchoServer> {
    let executable = std::env::current_exe().context("finding this executable")?;
    let mut child = Command::new(&executable)
        .args(["--echo-server", "127.0.0.1:0"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .with_context(|| format!("starting the echo server {}", executable.display()))?;
    let stdout = child.stdout.take().context("the echo server's output")?;
    let process = ChildProcess { child, name: "echo server" };
    // Read on a thread of its own, so that the wait is bounded even if the child never writes.
    let (sender, receiver) = mpsc::sync_channel(1);
    std::thread::spawn(move || {
        let mut line = String::new();
        let read = BufReader::new(stdout).read_line(&mut line).map(|_| line);
        let _ = sender.send(read);
    });
    let line = receiver
        .recv_timeout(Duration::from_millis(ECHO_START_WAIT_MS))
        .context("the echo server did not say its address in time")?
        .context("reading the echo server's address")?;
    let address: SocketAddr = line
        .trim()
        .parse()
        .with_context(|| format!("the echo server said {:?}, not an address", line.trim()))?;
    anyhow::ensure!(serving(address).await, "the echo server at {address} does not answer health");
    Ok(EchoServer { process, address })
}

/// A connection of its own to `address`, without TLS.
pub(crate) async fn connect(address: &str) -> anyhow::Result<Channel> {
    let url = if address.contains("://") { address.to_owned() } else { format!("http://{address}") };
    Endpoint::from_shared(url.clone())
        .with_context(|| format!("--target {address:?} is not an address"))?
        .tcp_nodelay(true)
        .connect_timeout(Duration::from_millis(CONNECT_TIMEOUT_MS))
        .timeout(Duration::from_millis(CALL_TIMEOUT_MS))
        .connect()
        .await
        .with_context(|| format!("connecting to {url}"))
}

/// CPU time a process used so far, user and system, and its resident memory, from `/proc`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct Usage {
    pub(crate) cpu_s: f64,
    pub(crate) rss_bytes: u64,
}

/// What `/proc/<pid>` says of `pid` now; `None` when it cannot be read (no such process, or
/// not Linux).
pub(crate) fn usage(pid: u32) -> Option<Usage> {
    let stat = fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name, in parentheses, may hold spaces: fields are counted after it.
    let fields: Vec<&str> = stat.rsplit_once(')')?.1.split_whitespace().collect();
    // utime and stime are the 14th and 15th fields of the line, the 12th and 13th after the name.
    let ticks: u64 = fields.get(11)?.parse::<u64>().ok()? + fields.get(12)?.parse::<u64>().ok()?;
    let rss_kib = status_kib(pid, "VmRSS:")?;
    Some(Usage { cpu_s: ticks as f64 / clock_ticks_per_second(), rss_bytes: rss_kib * 1024 })
}

/// CPU time every process of the machine used so far (all but idle and I/O wait), from the
/// first line of `/proc/stat`, in seconds.
pub(crate) fn machine_cpu_s() -> Option<f64> {
    let stat = fs::read_to_string("/proc/stat").ok()?;
    let line = stat.lines().find(|line| line.starts_with("cpu "))?;
    let ticks: Vec<u64> = line.split_whitespace().skip(1).map_while(|field| field.parse().ok()).collect();
    // user, nice, system, idle, iowait, irq, softirq, steal: idle and iowait are not work.
    let busy: u64 = ticks
        .iter()
        .take(8)
        .enumerate()
        .filter(|(index, _)| *index != 3 && *index != 4)
        .map(|(_, tick)| tick)
        .sum();
    Some(busy as f64 / clock_ticks_per_second())
}

/// The peak resident memory of `pid` since it started (`VmHWM`), in bytes.
pub(crate) fn peak_rss_bytes(pid: u32) -> Option<u64> {
    Some(status_kib(pid, "VmHWM:")? * 1024)
}

/// The value in KiB of the line of `/proc/<pid>/status` that starts with `field`.
fn status_kib(pid: u32, field: &str) -> Option<u64> {
    let status = fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    status
        .lines()
        .find_map(|line| line.strip_prefix(field))?
        .trim()
        .trim_end_matches("kB")
        .trim()
        .parse()
        .ok()
}

/// The cores of this machine.
pub(crate) fn cores() -> usize {
    std::thread::available_parallelism().map_or(1, usize::from)
}

/// The unit of `/proc/<pid>/stat`'s times: `getconf CLK_TCK`, which is 100 on every Linux
/// this runs on, read once.
fn clock_ticks_per_second() -> f64 {
    static TICKS: std::sync::OnceLock<f64> = std::sync::OnceLock::new();
    *TICKS.get_or_init(|| {
        Command::new("getconf")
            .arg("CLK_TCK")
            .output()
            .ok()
            .and_then(|output| String::from_utf8(output.stdout).ok())
            .and_then(|text| text.trim().parse::<f64>().ok())
            .filter(|ticks| *ticks > 0.0)
            .unwrap_or(100.0)
    })
}

/// Whether health answers SERVING at `address`.
async fn serving(address: SocketAddr) -> bool {
    let Ok(channel) = Endpoint::from_shared(format!("http://{address}"))
        .map(|endpoint| endpoint.connect_timeout(Duration::from_millis(CONNECT_TIMEOUT_MS)))
    else {
        return false;
    };
    let Ok(channel) = channel.connect().await else {
        return false;
    };
    let answer = HealthClient::new(channel).check(HealthCheckRequest { service: String::new() }).await;
    answer.is_ok_and(|response| response.into_inner().status == ServingStatus::Serving as i32)
}

/// A loopback address no one listens on now. Another process could take it before the server
/// binds it; the server would then fail to start, saying so.
fn free_loopback_address() -> anyhow::Result<SocketAddr> {
    let listener = TcpListener::bind("127.0.0.1:0").context("finding a free port")?;
    listener.local_addr().context("finding a free port")
}

fn log_tail(path: &Path) -> String {
    let log = fs::read_to_string(path).unwrap_or_default();
    let start = log.len().saturating_sub(LOG_TAIL_BYTES);
    let start = (start..log.len()).find(|index| log.is_char_boundary(*index)).unwrap_or(log.len());
    format!("the server's log ({}) ends with:\n{}", path.display(), &log[start..])
}

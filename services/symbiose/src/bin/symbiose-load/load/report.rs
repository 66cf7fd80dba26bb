//! The report of a run: a table per number of clients, each workload's calls against the echo
//! of the same clients, then the targets, each said met or missed.

use std::time::Duration;

use super::workload::{Call, Measured, Workload};

/// What one number of clients measured: the count, the echo, every workload.
pub(crate) type Phases = (usize, Measured, Vec<Measured>);

/// The number of clients the targets are set at.
pub(crate) const TARGET_CLIENTS: usize = 64;
/// Durable `CreateListing` calls a second, as a share of the echo's at [`TARGET_CLIENTS`].
const CREATE_SHARE_MIN: f64 = 0.5;
/// `SearchCatalog` and `FindMatches` calls a second, as a share of the echo's.
const QUERY_SHARE_MIN: f64 = 0.8;
/// The p99 latency every call must stay under at [`TARGET_CLIENTS`], in milliseconds.
const P99_MS_MAX: f64 = 10.0;

/// The table of one number of clients: `echo` first, then every workload measured.
pub(crate) fn table(echo: &Measured, measured: &[Measured]) -> String {
    let mut out = String::new();
    out.push_str(&format!(
        "  {:<15} {:<16} {:>8} {:>7} {:>7} {:>7} {:>8} {:>6} {:>7} {:>8} {:>6} {:>6}\n",
        "workload",
        "call",
        "calls/s",
        "x echo",
        "p50 ms",
        "p99 ms",
        "p999 ms",
        "errors",
        "server",
        "srv RSS",
        "load",
        "others"
    ));
    out.push_str(&format!(
        "  {:<15} {:<16} {:>8} {:>7} {:>7} {:>7} {:>8} {:>6} {:>7} {:>8} {:>6} {:>6}\n",
        "", "", "", "", "", "", "", "", "cores", "MiB", "cores", "cores"
    ));
    let echo_per_second = echo.per_second();
    for phase in std::iter::once(echo).chain(measured) {
        let rows: Vec<(String, f64, u64, crate::load::histogram::Histogram)> = phase
            .calls
            .iter()
            .map(|figures| {
                let per_second = figures.latencies.count() as f64 / phase.seconds;
                (figures.call.to_string(), per_second, figures.errors, figures.latencies.clone())
            })
            .chain(
                (phase.calls.len() > 1)
                    .then(|| ("all".to_owned(), phase.per_second(), phase.errors(), phase.latencies())),
            )
            .collect();
        for (row, (call, per_second, errors, latencies)) in rows.iter().enumerate() {
            let last = row + 1 == rows.len();
            let workload = if row == 0 { phase.workload.to_string() } else { String::new() };
            let (server_cores, server_rss) = match (last, phase.server) {
                (true, Some((cores, rss_bytes))) => {
                    (format!("{cores:.2}"), format!("{:.0}", rss_bytes as f64 / (1024.0 * 1024.0)))
                }
                _ => (String::new(), String::new()),
            };
            let shown = |cores: Option<f64>| match (last, cores) {
                (true, Some(cores)) => format!("{cores:.2}"),
                _ => String::new(),
            };
            out.push_str(&format!(
                "  {:<15} {:<16} {:>8.0} {:>7.2} {:>7.2} {:>7.2} {:>8.2} {:>6} {:>7} {:>8} {:>6} {:>6}\n",
                workload,
                call,
                per_second,
                per_second / echo_per_second,
                ms(latencies.quantile(0.50)),
                ms(latencies.quantile(0.99)),
                ms(latencies.quantile(0.999)),
                errors,
                server_cores,
                server_rss,
                shown(phase.load_cores),
                shown(phase.others_cores),
            ));
        }
    }
    for phase in std::iter::once(echo).chain(measured) {
        if let Some(error) = &phase.first_error {
            out.push_str(&format!("  {} first error: {error}\n", phase.workload));
        }
    }
    out
}

/// The targets, judged on the phases of `clients` clients.
pub(crate) fn targets(clients: usize, echo: &Measured, measured: &[Measured]) -> String {
    let mut out = String::new();
    if clients == TARGET_CLIENTS {
        out.push_str(&format!("targets at {clients} clients:\n"));
    } else {
        out.push_str(&format!(
            "targets (set at {TARGET_CLIENTS} clients, judged here at {clients}, the most this run measured):\n"
        ));
    }
    let echo_per_second = echo.per_second();
    let shares = [
        (Workload::Create, Call::CreateListing, "durable", CREATE_SHARE_MIN),
        (Workload::Search, Call::SearchCatalog, "query", QUERY_SHARE_MIN),
        (Workload::Find, Call::FindMatches, "query", QUERY_SHARE_MIN),
    ];
    for (workload, call, kind, share_min) in shares {
        let Some(figures) = measured.iter().find(|phase| phase.workload == workload).and_then(|phase| {
            phase.call(call).map(|figures| figures.latencies.count() as f64 / phase.seconds)
        }) else {
            out.push_str(&format!("  {call} ({kind}) >= {share_min:.2} x echo: not measured\n"));
            continue;
        };
        let share = figures / echo_per_second;
        out.push_str(&format!(
            "  {:<30} {share:>5.2} x echo ({figures:.0} / {echo_per_second:.0} calls/s)  {}\n",
            format!("{call} ({kind}) >= {share_min:.2} x echo:"),
            verdict(share >= share_min)
        ));
    }
    let mut slow = Vec::new();
    let mut worst: Option<(f64, String)> = None;
    for phase in measured {
        for figures in &phase.calls {
            let p99_ms = ms(figures.latencies.quantile(0.99));
            let name = format!("{} {}", phase.workload, figures.call);
            if p99_ms >= P99_MS_MAX {
                slow.push(format!("{name} {p99_ms:.1} ms"));
            }
            if worst.as_ref().is_none_or(|(worst_ms, _)| p99_ms > *worst_ms) {
                worst = Some((p99_ms, name));
            }
        }
    }
    let worst = worst
        .map_or_else(|| "nothing measured".to_owned(), |(p99_ms, name)| format!("{name} {p99_ms:.2} ms"));
    out.push_str(&format!(
        "  {:<30} worst {worst}  {}\n",
        format!("p99 < {P99_MS_MAX:.0} ms, every call:"),
        verdict(slow.is_empty())
    ));
    if !slow.is_empty() {
        out.push_str(&format!("    over: {}\n", slow.join(", ")));
    }
    out
}

fn verdict(met: bool) -> &'static str {
    if met { "met" } else { "MISSED" }
}

fn ms(duration: Duration) -> f64 {
    duration.as_secs_f64() * 1e3
}

/// CreateListing and SearchCatalog calls a second by number of replicas, at the most clients
/// measured, each beside the one-replica figure of the same run.
pub(crate) fn replicas(by_replicas: &[(usize, Vec<Phases>)]) -> String {
    let mut out = String::from(
        "replicas over PostgreSQL (calls/s at the most clients measured, x the one-replica figure):\n",
    );
    let rate = |results: &[Phases], workload: Workload, call: Call| {
        let (_, _, measured) = results.iter().max_by_key(|(count, _, _)| *count)?;
        let phase = measured.iter().find(|phase| phase.workload == workload)?;
        phase.call(call).map(|figures| figures.latencies.count() as f64 / phase.seconds)
    };
    let calls = [(Workload::Create, Call::CreateListing), (Workload::Search, Call::SearchCatalog)];
    let baseline: Vec<Option<f64>> = calls
        .iter()
        .map(|(workload, call)| by_replicas.first().and_then(|(_, results)| rate(results, *workload, *call)))
        .collect();
    for (replicas, results) in by_replicas {
        out.push_str(&format!("  {replicas} replica(s):"));
        for ((workload, call), base) in calls.iter().zip(&baseline) {
            match (rate(results, *workload, *call), base) {
                (Some(rate), Some(base)) if *base > 0.0 => {
                    out.push_str(&format!("  {call} {rate:.0} ({:.2} x)", rate / base));
                }
                _ => out.push_str(&format!("  {call} not measured")),
            }
        }
        out.push('\n');
    }
    out
}

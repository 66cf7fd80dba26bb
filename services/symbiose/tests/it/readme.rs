//! The README, run as written: every command of its walk-throughs (the `sh` blocks from "A
//! first session" to "A demo marketplace"), in the README's order, in one shell, against a real
//! server started as `cargo run --release` starts it (data in `./data`, the operator's token
//! taken from there), each command's output compared with what the README shows under it.
//!
//! How the README is read:
//! - a line starting with `$ ` is a command (continued by a trailing `\`); the lines after it,
//!   up to the next command or the end of the block, are what it prints;
//! - in what it prints, `...` inside a word matches any characters but spaces (`0199...` is an
//!   id, `eyJ...` a token), a word `...` any words, a line `...` any lines; a note after two
//!   spaces and `# ` is not output; runs of spaces count as one (ids are longer than `0199...`,
//!   so columns shift);
//! - a command shown with nothing under it must print nothing;
//! - every command must exit with 0, or 1 where the answer is "no" (the client's exit codes);
//!   2, an error, fails, unless what the README shows under it is that error (`error: ...`);
//! - a command that only reads is run again, for up to 15 s, while what it prints differs: the
//!   views follow the log a moment after a write, and a person would look again.
//!
//! A README that drifts from what the product does fails here, naming the README's line.

use std::io::{BufRead as _, BufReader, Write as _};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use symbiose_feed::testing::NatsServer;

use crate::{BINARY, ServerProcess};

/// The section the walk-throughs start at, and the one after the last.
const FIRST_SECTION: &str = "## A first session";
const END_SECTION: &str = "### With grpcurl";
/// The section that runs each service as its own process, the script that starts them (the
/// block after this sentence), and the section after it.
const SCALE_SECTION: &str = "## Running at scale";
const SCALE_SCRIPT_AFTER: &str = "On one machine, with a";
const SCALE_END_SECTION: &str = "### The container image";
/// The five services' binaries, as the README names them under target/release.
const SERVICE_BINARIES: [(&str, &str); 5] = [
    ("symbiose-listings", env!("CARGO_BIN_EXE_symbiose-listings")),
    ("symbiose-matching", env!("CARGO_BIN_EXE_symbiose-matching")),
    ("symbiose-logistics", env!("CARGO_BIN_EXE_symbiose-logistics")),
    ("symbiose-settlement", env!("CARGO_BIN_EXE_symbiose-settlement")),
    ("symbiose-passports", env!("CARGO_BIN_EXE_symbiose-passports")),
];
/// Longest one command may run.
const COMMAND_TIMEOUT_S: u64 = 300;
/// How long a reading command is run again while it differs from the README.
const LOOK_AGAIN_S: u64 = 15;
/// Lines of output waiting to be read, at most.
const LINES_QUEUED_MAX: usize = 100_000;

/// A command of the README and what it shows under it.
#[derive(Debug)]
struct Step {
    /// The README's line of the command, from 1.
    line: usize,
    command: String,
    shown: Vec<String>,
}

/// The commands of the walk-throughs, in order.
fn steps(readme: &str) -> Vec<Step> {
    steps_between(readme, FIRST_SECTION, END_SECTION)
}

/// The commands of the `sh` blocks from the heading `first` to the heading `end`, in order.
fn steps_between(readme: &str, first: &str, end: &str) -> Vec<Step> {
    let mut steps: Vec<Step> = Vec::new();
    let mut in_walkthrough = false;
    let mut in_block = false;
    let mut continued = false;
    for (number, line) in readme.lines().enumerate() {
        if line.starts_with("## ") || line.starts_with("### ") {
            if line == first {
                in_walkthrough = true;
            } else if line == end {
                in_walkthrough = false;
            }
        }
        if !in_walkthrough {
            continue;
        }
        if !in_block {
            in_block = line == "```sh";
            continue;
        }
        if line == "```" {
            in_block = false;
            continue;
        }
        if continued {
            let step = steps.last_mut().expect("a command being continued");
            step.command.push('\n');
            step.command.push_str(line);
            continued = line.ends_with('\\');
        } else if let Some(command) = line.strip_prefix("$ ") {
            steps.push(Step { line: number + 1, command: command.to_owned(), shown: Vec::new() });
            continued = line.ends_with('\\');
        } else if let Some(step) = steps.last_mut() {
            step.shown.push(line.to_owned());
        }
    }
    steps
}

/// A line as compared: without a note, its words.
fn words(line: &str) -> Vec<&str> {
    let line = line.split_once("  # ").map_or(line, |(output, _)| output);
    line.split_whitespace().collect()
}

/// Whether `word` of the README matches `actual`: `...` stands for any characters but spaces.
fn word_matches(word: &str, actual: &str) -> bool {
    let parts: Vec<&str> = word.split("...").collect();
    if parts.len() == 1 {
        return word == actual;
    }
    let (first, last) = (parts[0], parts[parts.len() - 1]);
    if !actual.starts_with(first) || actual.len() < first.len() + last.len() || !actual.ends_with(last) {
        return false;
    }
    let mut rest = &actual[first.len()..actual.len() - last.len()];
    for middle in &parts[1..parts.len() - 1] {
        match rest.find(middle) {
            Some(at) => rest = &rest[at + middle.len()..],
            None => return false,
        }
    }
    true
}

/// Whether the words of a README line match those of an actual one (`...` alone: any words).
fn line_matches(shown: &[&str], actual: &[&str]) -> bool {
    match shown.split_first() {
        None => actual.is_empty(),
        Some((&"...", rest)) => (0..=actual.len()).any(|skip| line_matches(rest, &actual[skip..])),
        Some((word, rest)) => {
            actual.first().is_some_and(|first| word_matches(word, first)) && line_matches(rest, &actual[1..])
        }
    }
}

/// Whether the README's lines match the actual output (a line `...`: any lines).
fn output_matches(shown: &[Vec<&str>], actual: &[Vec<&str>]) -> bool {
    match shown.split_first() {
        None => actual.is_empty(),
        Some((line, rest)) if line.as_slice() == ["..."] => {
            (0..=actual.len()).any(|skip| output_matches(rest, &actual[skip..]))
        }
        Some((line, rest)) => {
            actual.first().is_some_and(|first| line_matches(line, first))
                && output_matches(rest, &actual[1..])
        }
    }
}

/// What a step printed and how it exited.
#[derive(Debug)]
struct Ran {
    output: Vec<String>,
    status: i32,
}

const MARK: &str = "@@readme-step@@";

/// One `bash`, fed the README's commands one at a time, so that variables set by one command
/// are there for the next, as in a person's terminal.
struct Shell {
    child: std::process::Child,
    stdin: std::process::ChildStdin,
    lines: std::sync::mpsc::Receiver<String>,
}

impl Shell {
    fn start(dir: &Path, env: &[(&str, String)]) -> Shell {
        let mut child = Command::new("bash")
            .args(["--noprofile", "--norc"])
            .current_dir(dir)
            .env_remove("SYMBIOSE_TOKEN")
            .env_remove("SYMBIOSE_DATA_DIR")
            .envs(env.iter().map(|(name, value)| (*name, value.as_str())))
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("start bash");
        let stdin = child.stdin.take().expect("bash's stdin");
        let stdout = child.stdout.take().expect("bash's stdout");
        let (sender, lines) = std::sync::mpsc::sync_channel(LINES_QUEUED_MAX);
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if sender.send(line).is_err() {
                    break;
                }
            }
        });
        let mut shell = Shell { child, stdin, lines };
        shell.send("exec 2>&1");
        shell
    }

    fn send(&mut self, text: &str) {
        writeln!(self.stdin, "{text}").expect("write to bash");
        self.stdin.flush().expect("flush bash's stdin");
    }

    /// Runs `command`; what it printed, or `None` if it did not finish in time.
    fn run(&mut self, command: &str) -> Option<Ran> {
        self.send(&format!("echo '{MARK} start'\n{command}\necho \"{MARK} end $?\""));
        let deadline = Instant::now() + Duration::from_secs(COMMAND_TIMEOUT_S);
        let mut output = Vec::new();
        let mut started = false;
        loop {
            let line = self.lines.recv_timeout(deadline.saturating_duration_since(Instant::now())).ok()?;
            if let Some(rest) = line.strip_prefix(MARK) {
                match rest.split_whitespace().collect::<Vec<_>>().as_slice() {
                    ["start"] => started = true,
                    ["end", status] => return Some(Ran { output, status: status.parse().unwrap_or(-1) }),
                    _ => {}
                }
            } else if started {
                output.push(line);
            }
        }
    }
}

impl Drop for Shell {
    fn drop(&mut self) {
        // What the README started in the background (the services at scale) stops with it.
        let _ = writeln!(self.stdin, "kill $(jobs -p) 2>/dev/null; wait; exit");
        let _ = self.stdin.flush();
        let deadline = Instant::now() + Duration::from_secs(COMMAND_TIMEOUT_S.min(30));
        while Instant::now() < deadline && matches!(self.child.try_wait(), Ok(None)) {
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Whether a command only reads: such a command is run again, as a person looks again, while
/// what it shows differs from the README (views follow the log a moment after a write).
fn only_reads(command: &str) -> bool {
    const READS: [&str; 10] = [
        " list",
        " show",
        " search",
        " find",
        " balances",
        " transfers",
        " statement",
        " annex-vii",
        " health",
        "echo ",
    ];
    !command.contains("=$(") && READS.iter().any(|read| command.contains(read))
}

#[test]
fn the_readme_runs_as_written() {
    let readme = std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("../../README.md"))
        .expect("read the README");
    let steps = steps(&readme);
    assert!(
        steps.len() >= 40,
        "the walk-throughs hold {} commands: the README was not read right",
        steps.len()
    );

    let server = ServerProcess::start();
    // The session's directory is the repository's root as the README has it: the client at
    // target/release/symbiose, the server's data in ./data.
    let root = server.data_dir.path();
    std::fs::create_dir_all(root.join("target/release")).expect("target/release");
    std::os::unix::fs::symlink(BINARY, root.join("target/release/symbiose")).expect("link the client");
    let env = [
        ("SYMBIOSE_SERVER", server.url.clone()),
        ("XDG_CONFIG_HOME", root.join("config").display().to_string()),
        ("HOME", root.display().to_string()),
    ];
    let mut shell = Shell::start(root, &env);
    let started = Instant::now();
    let (failures, finished) = run_steps(&mut shell, &steps);
    assert!(
        failures.is_empty(),
        "{} commands differ from the README:\n\n{}",
        failures.len(),
        failures.join("\n\n")
    );
    // The QR code the walk-through saved, read as a phone does: the passport's Digital Link.
    let web_url = server.web_url.as_deref().expect("the server serves its web port");
    let qr = std::fs::read(root.join("qr.png")).expect("the walk-through saved qr.png");
    assert_eq!(read_qr(&qr), [format!("{web_url}/01/03012345678902/10/LOT-2026-17")]);
    let first_deal =
        steps.iter().position(|step| step.command.contains(" deal list")).expect("a deal listed");
    println!(
        "the README's {} commands ran as written in {:.1} s; the deal was agreed and listed {:.1} s after the first",
        steps.len(),
        started.elapsed().as_secs_f64(),
        finished[first_deal].duration_since(started).as_secs_f64()
    );
}

/// Runs each step in `shell` and compares what it prints with the README; the differences,
/// and when each step finished.
fn run_steps(shell: &mut Shell, steps: &[Step]) -> (Vec<String>, Vec<Instant>) {
    let mut failures = Vec::new();
    let mut finished = Vec::with_capacity(steps.len());
    for step in steps {
        let shown: Vec<Vec<&str>> =
            step.shown.iter().map(|line| words(line)).filter(|line| !line.is_empty()).collect();
        let looked_until = Instant::now() + Duration::from_secs(LOOK_AGAIN_S);
        let ran = loop {
            let ran = shell
                .run(&step.command)
                .unwrap_or_else(|| panic!("README line {}: `{}` did not finish", step.line, step.command));
            let actual: Vec<Vec<&str>> =
                ran.output.iter().map(|line| words(line)).filter(|line| !line.is_empty()).collect();
            // An error (exit 2) only where the README shows one.
            let shows_error = shown.first().and_then(|line| line.first()) == Some(&"error:");
            let matches = (ran.status < 2 || shows_error) && output_matches(&shown, &actual);
            if matches || !only_reads(&step.command) || Instant::now() > looked_until {
                break (ran, matches);
            }
            std::thread::sleep(Duration::from_millis(200));
        };
        finished.push(Instant::now());
        if !ran.1 {
            failures.push(format!(
                "README line {}: $ {}\n  exit {}\n  shown:\n    {}\n  printed:\n    {}",
                step.line,
                step.command,
                ran.0.status,
                step.shown.join("\n    "),
                ran.0.output.join("\n    ")
            ));
        }
    }
    (failures, finished)
}

#[test]
fn the_readme_matcher_takes_placeholders_and_nothing_else() {
    let shown = |text: &str| -> Vec<Vec<String>> {
        text.lines().map(|line| words(line).into_iter().map(str::to_owned).collect()).collect()
    };
    let check = |readme: &str, printed: &str| {
        let (readme, printed) = (shown(readme), shown(printed));
        let readme: Vec<Vec<&str>> =
            readme.iter().map(|line| line.iter().map(String::as_str).collect()).collect();
        let printed: Vec<Vec<&str>> =
            printed.iter().map(|line| line.iter().map(String::as_str).collect()).collect();
        output_matches(&readme, &printed)
    };
    assert!(check("0199...  # the id", "0199aa8e-1f2b-7c3d-8e4f-5a6b7c8d9e0f"));
    assert!(check("accepted by: 0199..., 0199...", "accepted by: 0199a, 0199b"));
    assert!(check("a\n...\nz", "a\nb\nc\nz"));
    assert!(check("quote 8e3f...  90.00 EUR  ...", "quote 8e3f12  90.00 EUR  carrier x until y"));
    assert!(!check("0199...", "0200abc"));
    assert!(!check("90.00 EUR", "91.00 EUR"));
    assert!(!check("", "something printed"));
    assert!(!check("a\nb", "a"));
    let parsed = steps(
        "## A first session\n```sh\n$ echo a \\\n  b\na b\n$ true\n```\n### With grpcurl\n```sh\n$ no\n```\n",
    );
    assert_eq!(parsed.len(), 2);
    assert_eq!(parsed[0].command, "echo a \\\n  b");
    assert_eq!(parsed[0].shown, vec!["a b".to_owned()]);
    assert!(parsed[1].shown.is_empty());
}

/// The script block that starts the four services, as the README has it.
fn scale_script(readme: &str) -> String {
    let section = &readme[readme.find(SCALE_SECTION).expect("the README's Running at scale")..];
    let after = &section[section.find(SCALE_SCRIPT_AFTER).expect("the sentence before the script")..];
    let start = after.find("```sh\n").expect("the script's block") + "```sh\n".len();
    let end = after[start..].find("```").expect("the end of the script's block");
    after[start..start + end].to_owned()
}

#[test]
fn the_readme_runs_at_scale_as_written() {
    let Some(nats) = NatsServer::start_or_skip("the_readme_runs_at_scale_as_written") else {
        return;
    };
    let readme = std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("../../README.md"))
        .expect("read the README");
    let script = scale_script(&readme);
    let mut steps = steps_between(&readme, SCALE_SECTION, SCALE_END_SECTION);
    assert!(
        script.contains("symbiose-settlement &") && script.contains("symbiose-passports &"),
        "the script starts the services:\n{script}"
    );
    assert!(steps.len() >= 3, "the section shows {} commands against the services", steps.len());

    // The README's addresses, moved to ports free here, and its NATS to the test's.
    let mut ports: Vec<(String, String)> = Vec::new();
    for readme_port in
        (1..=5).map(|service| format!("127.0.0.1:700{service}")).chain(["127.0.0.1:7080".to_owned()])
    {
        // Each free when chosen, and none chosen twice.
        let port = std::iter::repeat_with(crate::alone::free_port_below_ephemeral)
            .find(|port| ports.iter().all(|(_, taken)| taken != port))
            .expect("a free port");
        ports.push((readme_port, port));
    }
    let here = |text: &str| {
        let mut text = text.replace("nats://127.0.0.1:4222", &nats.url());
        for (readme_port, port) in &ports {
            text = text.replace(readme_port.as_str(), port);
        }
        text
    };
    // Built already: the test runs the binaries cargo built for it.
    let script: String = script
        .lines()
        .filter(|line| line.trim() != "cargo build --release")
        .map(|line| here(line) + "\n")
        .collect();
    for step in &mut steps {
        step.command = here(&step.command);
        step.shown = step.shown.iter().map(|line| here(line)).collect();
    }

    let root = tempfile::tempdir().expect("a directory for the session");
    std::fs::create_dir_all(root.path().join("target/release")).expect("target/release");
    std::os::unix::fs::symlink(BINARY, root.path().join("target/release/symbiose")).expect("link the client");
    for (name, binary) in SERVICE_BINARIES {
        std::os::unix::fs::symlink(binary, root.path().join("target/release").join(name))
            .expect("link a service");
    }
    let env = [
        ("XDG_CONFIG_HOME", root.path().join("config").display().to_string()),
        ("HOME", root.path().display().to_string()),
        ("RUST_LOG", "warn".to_owned()),
    ];
    let mut shell = Shell::start(root.path(), &env);
    // What the services log goes to a file, not between the client's outputs.
    let started = shell.run(&format!("{{\n{script}}} >services.log 2>&1")).expect("the README's script runs");
    assert!(started.status < 2, "the README's script failed:\n{}", started.output.join("\n"));
    let (failures, _) = run_steps(&mut shell, &steps);
    assert!(
        failures.is_empty(),
        "{} commands differ from the README:\n\n{}",
        failures.len(),
        failures.join("\n\n")
    );
    println!("the README's {} commands at scale ran as written against five processes", steps.len());
}

/// The texts of the QR codes in a PNG image, read as a phone's camera does.
fn read_qr(png_bytes: &[u8]) -> Vec<String> {
    let mut decoder = png::Decoder::new(std::io::Cursor::new(png_bytes));
    decoder.set_transformations(png::Transformations::EXPAND | png::Transformations::STRIP_16);
    let mut reader = decoder.read_info().expect("a PNG");
    let mut buffer = vec![0; reader.output_buffer_size().expect("a size")];
    let info = reader.next_frame(&mut buffer).expect("a frame");
    let (width, height, channels) = (info.width as usize, info.height as usize, info.color_type.samples());
    let mut image =
        rqrr::PreparedImage::prepare_from_greyscale(width, height, |x, y| buffer[(y * width + x) * channels]);
    image.detect_grids().into_iter().filter_map(|grid| grid.decode().ok().map(|(_, text)| text)).collect()
}

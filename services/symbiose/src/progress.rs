//! The progress of a long client command, on standard error: a bar on a terminal (a
//! [`Spinner`] for one call whose end only the server knows), and plain lines elsewhere (a
//! log, a pipe, a test): one when a phase starts and one at each tenth of the work, so a log
//! stays short whatever the size of the job. Standard output is left to the command's result.

use std::io::IsTerminal as _;
use std::time::Duration;

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

/// Plain lines printed over the whole job, besides one per phase.
const PLAIN_LINES_MAX: u64 = 10;

/// The progress of a job of `total` steps, in named phases.
#[derive(Debug)]
pub struct Progress {
    /// The bar, on a terminal; `None` for plain lines.
    bar: Option<ProgressBar>,
    total: u64,
    done: u64,
    phase: &'static str,
    /// The step at which the next plain line is printed.
    next_line_at: u64,
}

impl Progress {
    /// A bar if standard error is a terminal, plain lines otherwise.
    pub fn new(total: u64) -> Progress {
        Progress::with_bar(total, std::io::stderr().is_terminal())
    }

    /// A bar, or plain lines, for a job of `total` steps.
    pub fn with_bar(total: u64, bar: bool) -> Progress {
        let bar = bar.then(|| {
            let style = ProgressStyle::with_template("{msg:<16} [{bar:40}] {pos}/{len} ({elapsed})")
                .unwrap_or_else(|_| ProgressStyle::default_bar())
                .progress_chars("=> ");
            ProgressBar::with_draw_target(Some(total), ProgressDrawTarget::stderr()).with_style(style)
        });
        Progress { bar, total, done: 0, phase: "", next_line_at: 0 }
    }

    /// Starts the phase `name` (a few words, lower case).
    pub fn phase(&mut self, name: &'static str) {
        self.phase = name;
        match &self.bar {
            Some(bar) => bar.set_message(name),
            None => eprintln!("{name}..."),
        }
    }

    /// Counts `steps` more steps done.
    pub fn advance(&mut self, steps: u64) {
        self.done = (self.done + steps).min(self.total);
        match &self.bar {
            Some(bar) => bar.set_position(self.done),
            None if self.done >= self.next_line_at && self.total > 0 => {
                eprintln!("  {}: {}/{} steps", self.phase, self.done, self.total);
                let tenth = self.total.div_ceil(PLAIN_LINES_MAX).max(1);
                // The last line is the one at the total; none after it.
                self.next_line_at = if self.done == self.total {
                    u64::MAX
                } else {
                    ((self.done / tenth + 1) * tenth).min(self.total)
                };
            }
            None => {}
        }
    }

    /// Clears the bar, so that what follows (the result) is not mixed with it.
    pub fn finish(self) {
        if let Some(bar) = self.bar {
            bar.finish_and_clear();
        }
    }
}

/// Progress of one long call whose end only the server knows: a spinner on a terminal,
/// a plain line on standard error otherwise. Finished by [`Spinner::done`].
#[derive(Debug)]
pub struct Spinner {
    spinner: Option<indicatif::ProgressBar>,
}

/// How often the spinner turns, in milliseconds.
const SPINNER_TICK_MS: u64 = 100;

impl Spinner {
    pub fn start(what: &str) -> Spinner {
        if !std::io::stderr().is_terminal() {
            eprintln!("{what}...");
            return Spinner { spinner: None };
        }
        let spinner = indicatif::ProgressBar::new_spinner();
        spinner.set_message(format!("{what}..."));
        spinner.enable_steady_tick(Duration::from_millis(SPINNER_TICK_MS));
        Spinner { spinner: Some(spinner) }
    }

    pub fn done(self) {
        if let Some(spinner) = self.spinner {
            spinner.finish_and_clear();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_lines_come_at_each_tenth_and_the_count_stops_at_the_total() {
        let mut progress = Progress::with_bar(95, false);
        progress.phase("listings");
        let mut lines = 0;
        for _ in 0..100 {
            let before = progress.next_line_at;
            progress.advance(1);
            lines += usize::from(progress.next_line_at != before);
        }
        assert_eq!(progress.done, 95);
        // At the first step, at 10, 20, ... 90, and at 95.
        assert_eq!(lines, PLAIN_LINES_MAX as usize + 1);
        assert_eq!(progress.next_line_at, u64::MAX, "nothing printed past the total");
    }
}

//! The live view of a run: on a terminal, an `indicatif` tree of phases and agent calls
//! (status, elapsed time, tokens, a cached badge); otherwise plain lines on stderr.

use std::collections::HashMap;
use std::time::Duration;

use booflow_engine::RunEvent;
use booflow_types::{CallStatus, LogLevel, RunOutcome, RunStatus};
use indicatif::{MultiProgress, ProgressBar, ProgressStyle};

use super::term::{esay, safe, safe_echo};

/// How a call ended, as the tree shows it.
struct CallEnd<'a> {
    status: CallStatus,
    cached: bool,
    usage: &'a booflow_types::Usage,
    duration_ms: u64,
    error: Option<&'a str>,
}

pub struct Progress {
    tty: bool,
    multi: MultiProgress,
    /// Last line of each phase group, so new calls are inserted under their phase.
    phase_tail: HashMap<String, ProgressBar>,
    /// Phase header lines, finished when the run ends.
    headers: Vec<ProgressBar>,
    calls: HashMap<String, (ProgressBar, String)>,
    /// An error log line held back one event: the run's own error is logged just before
    /// it ends, and [`Progress::finish`] prints that error once, not twice.
    held_error: Option<String>,
}

fn running_style() -> ProgressStyle {
    ProgressStyle::with_template("  {spinner:.cyan} {prefix} {msg:.dim} {elapsed:.dim}")
        .unwrap_or_else(|_| ProgressStyle::default_spinner())
}

fn done_style() -> ProgressStyle {
    ProgressStyle::with_template("  {prefix} {msg}")
        .unwrap_or_else(|_| ProgressStyle::default_spinner())
}

fn tokens(usage: &booflow_types::Usage) -> String {
    if usage.output_tokens == 0 && usage.input_tokens == 0 {
        String::new()
    } else {
        format!(" {}→{} tok", usage.input_tokens, usage.output_tokens)
    }
}

impl Progress {
    pub fn new(tty: bool, run_id: &str, workflow: &str) -> Self {
        let multi = MultiProgress::new();
        if tty {
            let _ = multi.println(safe(&format!("▶ {workflow}  (run {run_id})")));
        } else {
            esay!("run {run_id}: {workflow}");
        }
        Self {
            tty,
            multi,
            phase_tail: HashMap::new(),
            headers: Vec::new(),
            calls: HashMap::new(),
            held_error: None,
        }
    }

    fn phase_line(&mut self, title: &str) -> ProgressBar {
        if let Some(bar) = self.phase_tail.get(title) {
            return bar.clone();
        }
        let header = self.multi.add(ProgressBar::new_spinner());
        header.set_style(
            ProgressStyle::with_template("{msg:.bold}")
                .unwrap_or_else(|_| ProgressStyle::default_spinner()),
        );
        // Left unfinished until the run ends: indicatif may drop a bar finished before its
        // first draw.
        header.set_message(safe(&format!("◆ {title}")).into_owned());
        header.tick();
        self.phase_tail.insert(title.to_string(), header.clone());
        self.headers.push(header.clone());
        header
    }

    /// Draws one event of the run.
    pub fn show(&mut self, event: &RunEvent) {
        if let Some(held) = self.held_error.take() {
            self.log(LogLevel::Error, &held);
        }
        match event {
            RunEvent::Phase { title, .. } => {
                if self.tty {
                    self.phase_line(title);
                } else {
                    esay!("◆ {title}");
                }
            }
            RunEvent::CallStarted {
                call_id,
                label,
                phase,
                agent,
                ..
            } => {
                let name = label.clone().unwrap_or_else(|| call_id.clone());
                self.call_started(call_id, name, phase.as_deref(), agent);
            }
            RunEvent::CallRunning { call_id, .. } => {
                if let Some((bar, _)) = self.calls.get(call_id) {
                    bar.set_message("running");
                    // Only a call that waits on an agent spins: indicatif ticks each bar
                    // on a thread of its own, and a replayed fan-out of 1000 calls would
                    // start 1000 threads that show nothing.
                    bar.enable_steady_tick(Duration::from_millis(120));
                }
            }
            RunEvent::CallFinished {
                call_id,
                status,
                cached,
                usage,
                duration_ms,
                error,
                ..
            } => {
                let end = CallEnd {
                    status: *status,
                    cached: *cached,
                    usage,
                    duration_ms: *duration_ms,
                    error: error.as_deref(),
                };
                self.call_finished(call_id, &end);
            }
            RunEvent::Log {
                level: LogLevel::Error,
                message,
                ..
            } => self.held_error = Some(message.clone()),
            RunEvent::Log { level, message, .. } => self.log(*level, message),
            RunEvent::QuestionAsked { question, .. } => {
                let name = question.label.as_deref().unwrap_or(&question.question);
                let line = format!("? {} {name}: {}", question.question_id, question.question);
                self.line(&line);
            }
            RunEvent::QuestionAnswered { question, .. } => {
                let what = match (&question.answer, &question.error) {
                    (Some(answer), _) => format!(
                        "answered {answer} ({})",
                        question.answered_by.as_deref().unwrap_or("?")
                    ),
                    (None, Some(error)) => format!("failed: {error}"),
                    (None, None) => "closed".to_string(),
                };
                self.line(&format!("  {} {what}", question.question_id));
            }
            RunEvent::RunPaused { paused, .. } => {
                self.line(if *paused { "⏸ paused" } else { "▶ resumed" })
            }
            RunEvent::RunStarted { .. }
            | RunEvent::RunRunning { .. }
            | RunEvent::RunFinished { .. } => {}
        }
    }

    /// A line of the run's own (a question, a pause) above the tree.
    fn line(&self, line: &str) {
        let line = safe_echo(line);
        if self.tty {
            let _ = self.multi.println(format!("  {line}"));
        } else {
            esay!("  {line}");
        }
    }

    /// Stops drawing the tree (an inline prompt owns the terminal), or draws it again.
    pub fn hide(&self, hidden: bool) {
        if !self.tty {
            return;
        }
        let target = match hidden {
            true => indicatif::ProgressDrawTarget::hidden(),
            false => indicatif::ProgressDrawTarget::stderr(),
        };
        self.multi.set_draw_target(target);
    }

    /// A new call: a line under its phase (on a terminal) or a plain line.
    fn call_started(&mut self, call_id: &str, name: String, phase: Option<&str>, agent: &str) {
        if !self.tty {
            esay!("  → {call_id} {name} ({agent})");
            return;
        }
        let bar = match phase {
            Some(title) => {
                let tail = self.phase_line(title);
                let bar = self.multi.insert_after(&tail, ProgressBar::new_spinner());
                self.phase_tail.insert(title.to_string(), bar.clone());
                bar
            }
            None => self.multi.add(ProgressBar::new_spinner()),
        };
        bar.set_style(running_style());
        bar.set_prefix(safe(&name).into_owned());
        bar.set_message(safe(&format!("queued · {agent}")).into_owned());
        self.calls.insert(call_id.to_string(), (bar, name));
    }

    fn call_finished(&mut self, call_id: &str, end: &CallEnd<'_>) {
        let mark = match end.status {
            CallStatus::Completed => "✓",
            CallStatus::Cancelled | CallStatus::Skipped => "⊘",
            _ => "✗",
        };
        let badge = if end.cached { " [cached]" } else { "" };
        let secs = end.duration_ms as f64 / 1000.0;
        let detail = match end.error {
            Some(e) if end.status != CallStatus::Completed => {
                format!(" — {}", e.lines().next().unwrap_or_default())
            }
            _ => String::new(),
        };
        let status = end.status;
        let summary = format!("{status} {secs:.1}s{}{badge}{detail}", tokens(end.usage));
        match self.calls.get(call_id) {
            Some((bar, name)) if self.tty => {
                bar.set_style(done_style());
                bar.set_prefix(safe(&format!("{mark} {name}")).into_owned());
                bar.finish_with_message(safe(&summary).into_owned());
            }
            _ => esay!("  {mark} {call_id} {summary}"),
        }
    }

    fn log(&self, level: LogLevel, message: &str) {
        let message = safe_echo(message);
        let line = if level == LogLevel::Info {
            format!("  │ {message}")
        } else {
            format!("  │ {level}: {message}")
        };
        if self.tty {
            let _ = self.multi.println(line);
        } else {
            eprintln!("{line}");
        }
    }

    pub fn finish(&mut self, outcome: &RunOutcome) {
        if let Some(held) = self.held_error.take()
            && outcome.error.as_ref() != Some(&held)
        {
            self.log(LogLevel::Error, &held);
        }
        for (bar, _) in self.calls.values() {
            if !bar.is_finished() {
                bar.abandon();
            }
        }
        for header in &self.headers {
            header.abandon();
        }
        let a = &outcome.agents;
        let line = format!(
            "{} {} — {} agent calls ({} live, {} cached, {} failed), {}→{} tokens",
            if outcome.status == RunStatus::Completed {
                "✓"
            } else {
                "✗"
            },
            outcome.status,
            a.total,
            a.live,
            a.cached,
            a.failed,
            outcome.usage.input_tokens,
            outcome.usage.output_tokens
        );
        // Every bar is finished now, so this lands below the tree.
        esay!("{line}, spent {}", outcome.cost);
        if let Some(error) = &outcome.error {
            esay!("error: {error}");
        }
    }
}

//! A person in the loop (docs/DESIGN.md §6): `booflow answer`, `booflow pause`, `booflow
//! resume`, the `--answers FILE.json` of `booflow run`, and the inline prompt a run on a
//! terminal shows for an `ask()` question.

use std::collections::BTreeMap;
use std::path::Path;
use std::process::ExitCode;

use anyhow::Context as _;
use booflow_engine::{AnswerError, Engine, PauseOutcome, ResumeOutcome};
use booflow_types::{QuestionRecord, QuestionStatus};
use serde_json::Value;

use super::term::{esay, say};

/// Who answers from this shell: `cli:<user>@<host>`.
pub fn answered_by() -> String {
    let user = std::env::var("USER").unwrap_or_else(|_| "someone".into());
    let host = std::fs::read_to_string("/etc/hostname")
        .map(|h| h.trim().to_string())
        .unwrap_or_else(|_| "localhost".into());
    format!("cli:{user}@{host}")
}

/// An answer typed as text: a choice as it is; otherwise JSON when it parses, else the
/// text as a string (as `--arg` values are read).
pub fn parse_answer(question: Option<&QuestionRecord>, raw: &str) -> Value {
    if question.is_some_and(|q| q.choices.is_some()) {
        return Value::String(raw.to_string());
    }
    serde_json::from_str(raw).unwrap_or_else(|_| Value::String(raw.to_string()))
}

/// `booflow answer RUN_ID [QUESTION_ID] VALUE`.
pub async fn answer(engine: &Engine, run_id: &str, rest: &[String]) -> anyhow::Result<ExitCode> {
    let (question_id, raw) = match rest {
        [value] => (None, value.as_str()),
        [question, value] => (Some(question.as_str()), value.as_str()),
        _ => anyhow::bail!(
            "booflow answer RUN_ID [QUESTION_ID] VALUE: expected 1 or 2 values after the run id"
        ),
    };
    let questions = engine.questions(run_id).await?;
    let target = match question_id {
        Some(id) => questions.iter().find(|q| q.question_id == id),
        None => questions.iter().find(|q| q.status == QuestionStatus::Open),
    };
    let value = parse_answer(target, raw);
    match engine
        .answer(run_id, question_id, value, &answered_by())
        .await
    {
        Ok(q) => {
            say!(
                "answered {} of {run_id}: {}",
                q.question_id,
                q.answer.unwrap_or_default()
            );
            Ok(ExitCode::SUCCESS)
        }
        Err(AnswerError::Journal(e)) => Err(e),
        Err(e) => {
            esay!("error: {e}");
            Ok(ExitCode::FAILURE)
        }
    }
}

/// `booflow pause RUN_ID`.
pub async fn pause(engine: &Engine, run_id: &str) -> anyhow::Result<ExitCode> {
    match engine.pause(run_id, true).await? {
        PauseOutcome::Done => {
            say!("pausing {run_id}: calls in flight finish, no new one starts");
            Ok(ExitCode::SUCCESS)
        }
        PauseOutcome::NotRunning(status) => {
            esay!("error: run {run_id} is {status}; only a run in progress can be paused");
            Ok(ExitCode::FAILURE)
        }
        PauseOutcome::Unknown => {
            esay!("error: no run {run_id} in {}", engine.database());
            Ok(ExitCode::FAILURE)
        }
    }
}

/// `booflow resume RUN_ID`: a paused run goes on; a failed or interrupted one is queued
/// again under its id for the servers (as `POST /api/runs/{id}/resume`).
pub async fn resume(engine: &Engine, run_id: &str) -> anyhow::Result<ExitCode> {
    let status = engine.run(run_id).await?.map(|r| r.status);
    if status == Some(booflow_types::RunStatus::Paused) {
        return match engine.pause(run_id, false).await? {
            PauseOutcome::Done => {
                say!("resuming {run_id}");
                Ok(ExitCode::SUCCESS)
            }
            PauseOutcome::NotRunning(status) => {
                esay!("error: run {run_id} is {status}");
                Ok(ExitCode::FAILURE)
            }
            PauseOutcome::Unknown => unreachable!("the run was just read"),
        };
    }
    match engine.resume(run_id).await? {
        ResumeOutcome::Queued => {
            say!("{run_id} queued again; a server or worker sharing this journal continues it");
            Ok(ExitCode::SUCCESS)
        }
        ResumeOutcome::NotResumable(status) => {
            esay!(
                "error: run {run_id} is {status}; a paused, failed or interrupted run can be resumed"
            );
            Ok(ExitCode::FAILURE)
        }
        ResumeOutcome::Unknown => {
            esay!("error: no run {run_id} in {}", engine.database());
            Ok(ExitCode::FAILURE)
        }
    }
}

/// `--answers FILE.json`: an object of answers by question label.
pub fn answers_file(path: &Path) -> anyhow::Result<BTreeMap<String, Value>> {
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("--answers {}: cannot read it", path.display()))?;
    let value: Value = serde_json::from_str(&text)
        .with_context(|| format!("--answers {}: not valid JSON", path.display()))?;
    match value {
        Value::Object(map) => Ok(map.into_iter().collect()),
        _ => anyhow::bail!(
            "--answers {}: expected a JSON object of answers by question label, e.g. {{\"approve\": \"yes\"}}",
            path.display()
        ),
    }
}

/// Asks `question` on the terminal (arrow keys for choices) until the engine takes an
/// answer, someone else answers it, or the person gives up (Esc / Ctrl-C). Blocking: call
/// it off the async runtime.
pub fn prompt(q: &QuestionRecord) -> Option<String> {
    use dialoguer::theme::ColorfulTheme;
    let theme = ColorfulTheme::default();
    let title = match &q.label {
        Some(label) => format!("{label}: {}", q.question),
        None => q.question.clone(),
    };
    let title = super::term::safe(&title).into_owned();
    match &q.choices {
        Some(choices) => {
            let default = q
                .default
                .as_ref()
                .and_then(Value::as_str)
                .and_then(|d| choices.iter().position(|c| c == d))
                .unwrap_or(0);
            dialoguer::Select::with_theme(&theme)
                .with_prompt(title)
                .items(choices)
                .default(default)
                .interact_opt()
                .ok()
                .flatten()
                .map(|i| choices[i].clone())
        }
        None => {
            let mut input = dialoguer::Input::<String>::with_theme(&theme).with_prompt(title);
            if let Some(default) = &q.default {
                let text = match default {
                    Value::String(s) => s.clone(),
                    other => other.to_string(),
                };
                input = input.default(text);
            }
            input.interact_text().ok()
        }
    }
}

/// Answers an open question from the terminal: prompts (off the runtime), and asks again
/// while the answer is refused; stops when someone else answered first.
pub async fn answer_inline(engine: &Engine, run_id: &str, q: QuestionRecord) {
    loop {
        let shown = q.clone();
        let Ok(Some(raw)) = tokio::task::spawn_blocking(move || prompt(&shown)).await else {
            esay!(
                "  no answer given; answer later with: booflow answer {run_id} {} VALUE",
                q.question_id
            );
            return;
        };
        let value = parse_answer(Some(&q), &raw);
        match engine
            .answer(run_id, Some(&q.question_id), value, &answered_by())
            .await
        {
            Ok(_) => return,
            Err(AnswerError::Invalid(message)) => esay!("  {message}"),
            Err(AnswerError::NotOpen { .. }) | Err(AnswerError::NotActive { .. }) => return,
            Err(e) => {
                esay!("  error: {e}");
                return;
            }
        }
    }
}

//! `ask(question, opts)` (docs/DESIGN.md §1): a question for a person, journaled before
//! anyone sees it, answered through the journal by whoever can write it (`booflow answer`,
//! the API, the pane, the owner's own terminal) and read back by the run loop's poll.
//!
//! Answers belong to the journal, not to the content cache: a resumed run (the same run
//! id, or `--resume RUN_ID`) replays the answers its journal holds, found by the question's
//! key (its text, choices, schema and default, and its occurrence number), and asks only the
//! questions left open; a fresh run of the same workflow asks again, because a person's
//! decision is about that run, not about its inputs.

use std::collections::{BTreeMap, HashMap};
use std::time::Duration;

use booflow_host_api::ask::{MAX_QUESTION_BYTES, question_hash};
use booflow_host_api::{AskOptions, ErrorName, HostEvent, keys};
use booflow_types::{QuestionRecord, QuestionStatus};
use serde_json::Value;

use super::dispatch::AgentStart;
use super::driver::{Internal, RunLoop};
use crate::events::RunEvent;
use crate::now_rfc3339;

/// Who may answer a run's questions besides a person, and what happens when nobody can
/// (docs/DESIGN.md §6 `booflow run --yes`, `--answers`). Stored with a queued run.
#[derive(Debug, Clone, Default, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct AnswerPolicy {
    /// `--yes`: a question with a `default` takes it at once.
    #[serde(default)]
    pub defaults: bool,
    /// `--answers FILE.json`: answers by `label` (or by the question's text).
    #[serde(default)]
    pub preset: BTreeMap<String, Value>,
    /// Nobody is there to answer (a foreground run without a terminal): a question the
    /// two above do not answer fails at once, naming them. Otherwise it waits (`waiting`).
    #[serde(default)]
    pub unattended: bool,
}

/// Who waits for a question's answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Waiter {
    /// The script's `ask()`: the guest's request id.
    Guest(u64),
    /// The run itself, before it makes more than `WORKFLOW_CONFIRM_ABOVE` agent calls.
    Confirm,
}

/// A question waiting for its answer.
struct Open {
    waiter: Waiter,
    timer: Option<tokio::task::AbortHandle>,
}

/// The run's questions so far.
#[derive(Default)]
pub(super) struct Asks {
    pub policy: AnswerPolicy,
    /// The run whose answers replay (`--resume RUN_ID`).
    pub resume_from: Option<String>,
    /// The `seq` of the last question journaled (an earlier owner's included).
    pub last_seq: u32,
    occurrences: HashMap<String, u32>,
    open: HashMap<String, Open>,
    /// `WORKFLOW_CONFIRM_ABOVE`: asked once; `Some(true)` once a person said yes.
    confirm_asked: bool,
    confirmed: Option<bool>,
    /// Calls held back until the confirmation is answered.
    held: Vec<AgentStart>,
}

impl Asks {
    /// The questions of a run answered by `policy`, replaying the answers of
    /// `resume_from`, after the `last_seq` questions an earlier copy of it asked.
    pub fn new(policy: AnswerPolicy, resume_from: Option<String>, last_seq: u32) -> Self {
        Self {
            policy,
            resume_from,
            last_seq,
            ..Self::default()
        }
    }
}

/// The message of a question nobody can answer (docs/DESIGN.md §6).
fn unattended_message(q: &QuestionRecord) -> String {
    let name = q.label.as_deref().unwrap_or(&q.question);
    format!(
        "ask('{name}') cannot be answered: this booflow run has no terminal to ask on. Pass --yes to take each question's default, --answers FILE.json to answer by label ({{\"{name}\": …}}), or run it on a server (booflow run --detach) and answer with booflow answer RUN_ID VALUE"
    )
}

/// Checks an answer against a question's `choices` and `schema` (the same JSON Schema
/// library as `agent()` schemas).
///
/// # Errors
/// The validation message: which choices there are, or what the schema refused.
pub(crate) fn check_answer(q: &QuestionRecord, answer: &Value) -> Result<(), String> {
    if let Some(choices) = &q.choices {
        let opts = AskOptions {
            choices: Some(choices.clone()),
            ..AskOptions::default()
        };
        opts.check_choice(answer)?;
    }
    if let Some(schema) = &q.schema {
        crate::schema::validate(schema, answer).map_err(|errors| {
            format!("the answer does not match the question's schema:\n{errors}")
        })?;
    }
    Ok(())
}

impl RunLoop {
    /// `ask(question, opts)`: checks it, then replays a journaled answer or journals the
    /// question and answers it by policy, or leaves it open for a person.
    pub(super) async fn ask(&mut self, id: u64, question: String, opts: Value) {
        let opts = match AskOptions::from_js(&opts) {
            Ok(opts) => opts,
            Err(e) => return self.reply(self.reject(id, ErrorName::WorkflowInputError, e.0)),
        };
        self.ask_checked(Waiter::Guest(id), question, opts).await;
    }

    /// A question whose options passed their check: its size and schema, then a replay of
    /// a journaled answer, or a new row answered by policy or left open.
    pub(super) async fn ask_checked(&mut self, waiter: Waiter, question: String, opts: AskOptions) {
        if question.len() > MAX_QUESTION_BYTES {
            let message = format!(
                "ask() question is {} bytes; the limit is {MAX_QUESTION_BYTES}",
                question.len()
            );
            return self.refuse(waiter, message);
        }
        if let Some(schema) = &opts.schema
            && let Err(e) = crate::schema::compile(schema)
        {
            let message = format!("ask() option 'schema' is refused: {e}");
            return self.refuse(waiter, message);
        }
        let hash = question_hash(&question, &opts);
        let occurrence = self.asks.occurrences.entry(hash.clone()).or_insert(0);
        *occurrence += 1;
        let key = keys::content_key(&hash, *occurrence);
        match self.known_question(&key).await {
            Ok(Some(q)) if q.status == QuestionStatus::Answered => {
                return self.answered(waiter, &q);
            }
            // Asked before this copy of the run and still open (or failed, when resumed
            // after it failed): asked again, on its own row.
            Ok(Some(q)) => return self.reopen(waiter, q, &opts).await,
            Ok(None) => {}
            Err(e) => return self.journal_failed(self.engine.journal_failure("a question", &e)),
        }
        if let Some(old) = self.asks.resume_from.clone()
            && let Ok(Some(q)) = self.engine.journal.question_by_key(&old, &key).await
            && q.status == QuestionStatus::Answered
        {
            let by = format!(
                "replayed from {old} ({})",
                q.answered_by.as_deref().unwrap_or("a person")
            );
            let record = self.question_row(key, question, &opts, Some((q.answer, by)));
            if let Err(e) = self
                .engine
                .journal
                .insert_question(&self.fence, &record)
                .await
            {
                return self.journal_failed(self.engine.journal_failure("a question", &e));
            }
            return self.answered(waiter, &record);
        }
        let record = self.question_row(key, question, &opts, None);
        if let Err(e) = self
            .engine
            .journal
            .insert_question(&self.fence, &record)
            .await
        {
            return self.journal_failed(self.engine.journal_failure("a question", &e));
        }
        self.wait_for_answer(waiter, record).await;
    }

    /// This run's own question with `key`, if an earlier copy asked it.
    async fn known_question(&self, key: &str) -> anyhow::Result<Option<QuestionRecord>> {
        if self.asks.last_seq == 0 {
            return Ok(None);
        }
        self.engine.journal.question_by_key(&self.run_id, key).await
    }

    /// A new question's row: open, or answered already (`answer`: a replayed answer and
    /// who gave it).
    fn question_row(
        &mut self,
        key: String,
        question: String,
        opts: &AskOptions,
        answer: Option<(Option<Value>, String)>,
    ) -> QuestionRecord {
        self.asks.last_seq += 1;
        let seq = self.asks.last_seq;
        let now = now_rfc3339();
        let (status, answer, answered_by, answered_at) = match answer {
            Some((value, by)) => (QuestionStatus::Answered, value, Some(by), Some(now.clone())),
            None => (QuestionStatus::Open, None, None, None),
        };
        QuestionRecord {
            question_id: format!("q{seq:04}"),
            seq,
            question_key: key,
            label: opts.label.clone(),
            question,
            choices: opts.choices.clone(),
            schema: opts.schema.clone(),
            default: opts.default.clone(),
            timeout_ms: opts.timeout_ms,
            status,
            answer,
            answered_by,
            asked_at: now,
            answered_at,
            error: None,
        }
    }

    /// An open (or failed) question of an earlier copy of this run: open again, and asked.
    async fn reopen(&mut self, waiter: Waiter, mut q: QuestionRecord, opts: &AskOptions) {
        if q.status == QuestionStatus::Failed {
            let reopened = self
                .engine
                .journal
                .reopen_question(&self.fence, &q.question_id);
            if let Err(e) = reopened.await {
                return self.journal_failed(self.engine.journal_failure("a question", &e));
            }
            q.status = QuestionStatus::Open;
            q.error = None;
        }
        q.timeout_ms = opts.timeout_ms;
        self.wait_for_answer(waiter, q).await;
    }

    /// Announces an open question, answers it from the policy when it can, and otherwise
    /// leaves it open (with its timeout) or fails it when nobody can answer.
    async fn wait_for_answer(&mut self, waiter: Waiter, q: QuestionRecord) {
        self.engine.emit(RunEvent::QuestionAsked {
            run_id: self.run_id.clone(),
            question: q.clone(),
        });
        let name = q.label.clone().unwrap_or_else(|| q.question.clone());
        let preset = self.asks.policy.preset.get(&name).cloned();
        let by_policy = match (preset, &q.default) {
            (Some(answer), _) => Some((answer, "answers-file")),
            (None, Some(default)) if self.asks.policy.defaults => {
                Some((default.clone(), "default (--yes)"))
            }
            _ => None,
        };
        if let Some((answer, by)) = by_policy {
            if let Err(message) = check_answer(&q, &answer) {
                let message = format!("ask('{name}'): the answer from {by} is refused: {message}");
                return self.fail_question(waiter, &q, message).await;
            }
            return self.take_answer(waiter, &q, answer, by).await;
        }
        if self.asks.policy.unattended {
            return self.fail_question(waiter, &q, unattended_message(&q)).await;
        }
        let timer = q.timeout_ms.map(|ms| {
            let internal = self.internal.clone();
            let qid = q.question_id.clone();
            tokio::spawn(async move {
                tokio::time::sleep(Duration::from_millis(ms)).await;
                let _ = internal.send(Internal::AskTimeout(qid));
            })
            .abort_handle()
        });
        self.asks
            .open
            .insert(q.question_id.clone(), Open { waiter, timer });
    }

    /// The question was settled by someone else before this run's own write landed: keep
    /// it open (no timer) and take their answer from the journal now.
    async fn taken_elsewhere(&mut self, waiter: Waiter, q: &QuestionRecord) {
        let open = Open {
            waiter,
            timer: None,
        };
        self.asks.open.insert(q.question_id.clone(), open);
        self.poll_answers().await;
    }

    /// Writes an answer the run gives itself (policy, timeout); when someone else answered
    /// first, theirs is taken at the next poll.
    async fn take_answer(&mut self, waiter: Waiter, q: &QuestionRecord, answer: Value, by: &str) {
        let journal = &self.engine.journal;
        match journal
            .answer_question(&self.run_id, &q.question_id, &answer, by, &now_rfc3339())
            .await
        {
            Ok(true) => {
                let answered = QuestionRecord {
                    status: QuestionStatus::Answered,
                    answer: Some(answer),
                    answered_by: Some(by.to_string()),
                    answered_at: Some(now_rfc3339()),
                    ..q.clone()
                };
                self.announce_answer(&answered);
                self.answered(waiter, &answered);
            }
            Ok(false) => self.taken_elsewhere(waiter, q).await,
            Err(e) => self.journal_failed(self.engine.journal_failure("an answer", &e)),
        }
    }

    /// Fails a question: journaled `failed`, and the script's `ask()` rejects.
    async fn fail_question(&mut self, waiter: Waiter, q: &QuestionRecord, message: String) {
        let journal = &self.engine.journal;
        match journal
            .fail_question(&self.fence, &q.question_id, &message, &now_rfc3339())
            .await
        {
            Ok(true) => {
                let failed = QuestionRecord {
                    status: QuestionStatus::Failed,
                    error: Some(message.clone()),
                    ..q.clone()
                };
                self.announce_answer(&failed);
                self.refuse(waiter, message);
            }
            Ok(false) => self.taken_elsewhere(waiter, q).await,
            Err(e) => self.journal_failed(self.engine.journal_failure("a question", &e)),
        }
    }

    /// A question's `timeoutMs` passed: its default, or a rejection.
    pub(super) async fn ask_timed_out(&mut self, question_id: String) {
        let Some(open) = self.asks.open.remove(&question_id) else {
            return;
        };
        let q = match self
            .engine
            .journal
            .question(&self.run_id, &question_id)
            .await
        {
            Ok(Some(q)) => q,
            Ok(None) => return,
            Err(e) => return self.journal_failed(self.engine.journal_failure("a question", &e)),
        };
        if q.status != QuestionStatus::Open {
            self.asks.open.insert(question_id, open);
            return self.poll_answers().await;
        }
        let name = q.label.clone().unwrap_or_else(|| q.question.clone());
        match q.default.clone() {
            Some(default) => {
                let by = "default (timeout)";
                self.take_answer(open.waiter, &q, default, by).await
            }
            None => {
                let ms = q.timeout_ms.unwrap_or_default();
                let message = format!(
                    "ask('{name}'): nobody answered within its timeoutMs of {ms} ms, and it has no default"
                );
                self.fail_question(open.waiter, &q, message).await;
            }
        }
    }

    /// Reads the answers given to the open questions (by this process or another one).
    pub(super) async fn poll_answers(&mut self) {
        if self.asks.open.is_empty() {
            return;
        }
        let Ok(rows) = self.engine.journal.questions(&self.run_id).await else {
            return;
        };
        for q in rows {
            if q.status == QuestionStatus::Open {
                continue;
            }
            let Some(open) = self.asks.open.remove(&q.question_id) else {
                continue;
            };
            if let Some(timer) = open.timer {
                timer.abort();
            }
            self.announce_answer(&q);
            match q.status {
                QuestionStatus::Answered => self.answered(open.waiter, &q),
                _ => {
                    let message = q
                        .error
                        .clone()
                        .unwrap_or_else(|| "the question failed".into());
                    self.refuse(open.waiter, message);
                }
            }
        }
    }

    fn announce_answer(&self, q: &QuestionRecord) {
        self.engine.emit(RunEvent::QuestionAnswered {
            run_id: self.run_id.clone(),
            question: q.clone(),
        });
    }

    /// Hands the question's answer to whoever waits: the script's `ask()` resolves, or the
    /// run's confirmation goes on (`"yes"`) or stops (anything else).
    fn answered(&self, waiter: Waiter, q: &QuestionRecord) {
        let value = q.answer.clone().unwrap_or(Value::Null);
        match waiter {
            Waiter::Guest(id) => self.reply(HostEvent::Resolve {
                id,
                value,
                budget_spent: self.budget.spent(),
            }),
            Waiter::Confirm => {
                let go_on = value.as_str() == Some("yes");
                let _ = self.internal.send(Internal::Confirmed(go_on, None));
            }
        }
    }

    /// The question failed: the script's `ask()` rejects, or the confirmation is a no.
    fn refuse(&self, waiter: Waiter, message: String) {
        match waiter {
            Waiter::Guest(id) => {
                self.reply(self.reject(id, ErrorName::WorkflowInputError, message))
            }
            Waiter::Confirm => {
                let _ = self
                    .internal
                    .send(Internal::Confirmed(false, Some(message)));
            }
        }
    }

    /// Stops the questions' timers (the run ends).
    pub(super) fn drop_questions(&mut self) {
        for (_, open) in self.asks.open.drain() {
            if let Some(timer) = open.timer {
                timer.abort();
            }
        }
    }

    /// `WORKFLOW_CONFIRM_ABOVE=N` (docs/DESIGN.md §6): the calls of a burst that would make
    /// the run's call count pass N wait for a person's yes, asked once as a question
    /// (`label: 'confirm'`, choices yes/no, default yes, so `--yes` goes on); the rest of
    /// the burst is returned to dispatch now.
    pub(super) async fn hold_for_confirmation(
        &mut self,
        mut calls: Vec<AgentStart>,
    ) -> Vec<AgentStart> {
        let limit = self.engine.settings.confirm_above as usize;
        match self.asks.confirmed {
            _ if limit == 0 => return calls,
            Some(true) => return calls,
            Some(false) => {
                for call in calls {
                    self.decline(call.id);
                }
                return Vec::new();
            }
            None => {}
        }
        let room = limit.saturating_sub(self.counts.total as usize);
        if calls.len() <= room && self.asks.held.is_empty() {
            return calls;
        }
        let held = calls.split_off(room.min(calls.len()));
        self.asks.held.extend(held);
        if !self.asks.confirm_asked {
            self.asks.confirm_asked = true;
            let made = self.counts.total + calls.len() as u32;
            let question = format!(
                "This run has made {made} agent calls (WORKFLOW_CONFIRM_ABOVE={limit}). Make more?"
            );
            let opts = AskOptions {
                choices: Some(vec!["yes".into(), "no".into()]),
                default: Some(Value::String("yes".into())),
                label: Some("confirm".into()),
                ..AskOptions::default()
            };
            self.ask_checked(Waiter::Confirm, question, opts).await;
        }
        calls
    }

    /// The confirmation was answered: the held calls go on, or are refused.
    pub(super) async fn confirmed(&mut self, yes: bool, why: Option<String>) {
        self.asks.confirmed = Some(yes);
        if let Some(why) = why {
            self.log(booflow_types::LogLevel::Warn, why).await;
        }
        let held = std::mem::take(&mut self.asks.held);
        if yes {
            return self.agents(held).await;
        }
        for call in held {
            self.decline(call.id);
        }
    }

    fn decline(&self, id: u64) {
        let limit = self.engine.settings.confirm_above;
        let message = format!(
            "no more agent calls: a person did not confirm more than {limit} (WORKFLOW_CONFIRM_ABOVE)"
        );
        self.reply(self.reject(id, ErrorName::WorkflowBudgetExceededError, message));
    }
}

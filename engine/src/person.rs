//! What a person does to a run in progress, from any process sharing the journal: answer
//! its `ask()` questions, pause it and resume it (docs/DESIGN.md §1, §6). Each is one
//! journal write; the run's owner reads it at its next poll (at once when it is this
//! process).

use booflow_types::{QuestionRecord, QuestionStatus, RunStatus};
use serde_json::Value;

use crate::{Engine, now_rfc3339};

/// Why [`Engine::answer`] refused an answer.
#[derive(Debug, thiserror::Error)]
pub enum AnswerError {
    #[error("no run {0} in the journal")]
    UnknownRun(String),
    /// The run is not going on (its status), so nobody would read the answer.
    #[error("run {run_id} is {status}: only a running, waiting or paused run takes answers")]
    NotActive { run_id: String, status: RunStatus },
    #[error("run {0} has no open question")]
    NoOpenQuestion(String),
    /// Several questions are open: the answer must name one.
    #[error("run {run_id} has {} open questions ({}): name the one you answer", .open.len(), .open.join(", "))]
    Ambiguous { run_id: String, open: Vec<String> },
    #[error("run {run_id} has no question {question_id}")]
    UnknownQuestion { run_id: String, question_id: String },
    /// Answered already (or failed): the first answer stands.
    #[error("question {question_id} is {status} already")]
    NotOpen {
        question_id: String,
        status: QuestionStatus,
    },
    /// The answer breaks the question's `choices` or `schema`; the validation message.
    #[error("{0}")]
    Invalid(String),
    #[error(transparent)]
    Journal(#[from] anyhow::Error),
}

/// What [`Engine::pause`] did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PauseOutcome {
    /// The flag is set (or cleared); the run's owner follows at its next poll.
    Done,
    /// Only a queued, running, waiting or paused run can be paused or resumed.
    NotRunning(RunStatus),
    Unknown,
}

impl Engine {
    /// A run's `ask()` questions in the order they were asked.
    pub async fn questions(&self, run_id: &str) -> anyhow::Result<Vec<QuestionRecord>> {
        self.journal.questions(run_id).await
    }

    /// Answers an open question of a run: `question_id`, or the only open one. The answer
    /// is checked against the question's `choices` and `schema` first. `by` says who
    /// answered (`cli:<user>@<host>`, `api`, `pane`). Returns the answered row.
    ///
    /// # Errors
    /// [`AnswerError`]: an unknown run or question, a run not in progress, no or several
    /// open questions, a question answered already, an answer the question refuses.
    pub async fn answer(
        &self,
        run_id: &str,
        question_id: Option<&str>,
        answer: Value,
        by: &str,
    ) -> Result<QuestionRecord, AnswerError> {
        let run = self
            .run(run_id)
            .await?
            .ok_or_else(|| AnswerError::UnknownRun(run_id.to_string()))?;
        if !run.status.is_active() {
            return Err(AnswerError::NotActive {
                run_id: run_id.to_string(),
                status: run.status,
            });
        }
        let questions = self.journal.questions(run_id).await?;
        let question = match question_id {
            Some(id) => questions
                .into_iter()
                .find(|q| q.question_id == id)
                .ok_or_else(|| AnswerError::UnknownQuestion {
                    run_id: run_id.to_string(),
                    question_id: id.to_string(),
                })?,
            None => {
                let mut open: Vec<QuestionRecord> = questions
                    .into_iter()
                    .filter(|q| q.status == QuestionStatus::Open)
                    .collect();
                match open.len() {
                    0 => return Err(AnswerError::NoOpenQuestion(run_id.to_string())),
                    1 => open.remove(0),
                    _ => {
                        return Err(AnswerError::Ambiguous {
                            run_id: run_id.to_string(),
                            open: open.into_iter().map(|q| q.question_id).collect(),
                        });
                    }
                }
            }
        };
        if question.status != QuestionStatus::Open {
            return Err(AnswerError::NotOpen {
                question_id: question.question_id,
                status: question.status,
            });
        }
        crate::run::check_answer(&question, &answer).map_err(AnswerError::Invalid)?;
        let at = now_rfc3339();
        let taken = self
            .journal
            .answer_question(run_id, &question.question_id, &answer, by, &at)
            .await?;
        if !taken {
            let now = self.journal.question(run_id, &question.question_id).await?;
            return Err(AnswerError::NotOpen {
                question_id: question.question_id,
                status: now.map_or(QuestionStatus::Answered, |q| q.status),
            });
        }
        self.nudge(run_id);
        Ok(QuestionRecord {
            status: QuestionStatus::Answered,
            answer: Some(answer),
            answered_by: Some(by.to_string()),
            answered_at: Some(at),
            ..question
        })
    }

    /// Pauses (`paused: true`) or resumes a run in progress, through the journal's pause
    /// flag, which its owner follows (docs/DESIGN.md §6): paused, no new agent call starts,
    /// calls in flight finish, the script's timers are held.
    ///
    /// # Errors
    /// The journal cannot be read or written.
    pub async fn pause(&self, run_id: &str, paused: bool) -> anyhow::Result<PauseOutcome> {
        let Some(run) = self.run(run_id).await? else {
            return Ok(PauseOutcome::Unknown);
        };
        if run.status.is_finished() {
            return Ok(PauseOutcome::NotRunning(run.status));
        }
        if !self.journal.set_paused(run_id, paused).await? {
            let status = self.run(run_id).await?.map_or(run.status, |r| r.status);
            return Ok(PauseOutcome::NotRunning(status));
        }
        self.nudge(run_id);
        Ok(PauseOutcome::Done)
    }

    /// Wakes the run loop of `run_id` when this process executes it.
    fn nudge(&self, run_id: &str) {
        if let Some(run) = self.active.lock().unwrap().get(run_id) {
            run.control.nudge();
        }
    }
}

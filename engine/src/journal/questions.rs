//! The `questions` table: one row per `ask()` (docs/DESIGN.md §1, §3). The run's owner
//! writes a question (fenced, like every write of its run); anyone sharing the journal may
//! answer an open one (`booflow answer`, the API, the pane), in one conditional statement,
//! so of two answers at once exactly one is taken. The owner reads answers back when it
//! polls, and a resumed run finds earlier answers by the question's key.

use booflow_types::{QuestionRecord, QuestionStatus};
use sqlx::Row;
use sqlx::any::AnyRow;

use super::leases::{Fence, fence_sql};
use super::{Journal, big, from_json_text, opt_uint, parsed, to_json_text, uint};

const COLUMNS: &str = "question_id, seq, question_key, label, question, choices, json_schema,
    default_value, timeout_ms, status, answer, answered_by, asked_at, answered_at, error";

fn question_from_row(r: &AnyRow) -> anyhow::Result<QuestionRecord> {
    let text = |column: &str| -> anyhow::Result<Option<String>> { Ok(r.try_get(column)?) };
    Ok(QuestionRecord {
        question_id: r.try_get("question_id")?,
        seq: uint(r, "seq").min(u32::MAX as u64) as u32,
        question_key: r.try_get("question_key")?,
        label: r.try_get("label")?,
        question: r.try_get("question")?,
        choices: text("choices")?.and_then(|t| serde_json::from_str(&t).ok()),
        schema: from_json_text(text("json_schema")?),
        default: from_json_text(text("default_value")?),
        timeout_ms: opt_uint(r, "timeout_ms"),
        status: parsed(r, "status")?,
        answer: from_json_text(text("answer")?),
        answered_by: r.try_get("answered_by")?,
        asked_at: r.try_get("asked_at")?,
        answered_at: r.try_get("answered_at")?,
        error: r.try_get("error")?,
    })
}

impl Journal {
    /// Journals a question as the owner asks it (any status: a replayed answer is written
    /// whole); refused once the run's epoch moved on.
    pub(crate) async fn insert_question(
        &self,
        fence: &Fence,
        q: &QuestionRecord,
    ) -> anyhow::Result<()> {
        let sql = format!(
            "INSERT INTO questions (run_id, {COLUMNS})
             SELECT $1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16
             WHERE {}",
            fence_sql(1, 17)
        );
        let choices = q
            .choices
            .as_ref()
            .map(|c| serde_json::to_string(c).unwrap_or_default());
        let done = sqlx::query(&sql)
            .bind(&fence.run_id)
            .bind(&q.question_id)
            .bind(q.seq as i64)
            .bind(&q.question_key)
            .bind(&q.label)
            .bind(&q.question)
            .bind(choices)
            .bind(to_json_text(&q.schema))
            .bind(to_json_text(&q.default))
            .bind(q.timeout_ms.map(big))
            .bind(q.status.as_str())
            .bind(to_json_text(&q.answer))
            .bind(&q.answered_by)
            .bind(&q.asked_at)
            .bind(&q.answered_at)
            .bind(&q.error)
            .bind(fence.epoch)
            .execute(&self.pool)
            .await?;
        fence.applied(done.rows_affected())
    }

    /// Answers an open question: true when this answer was taken, false when the question
    /// is not open (answered a moment ago by someone else, failed, or unknown).
    pub(crate) async fn answer_question(
        &self,
        run_id: &str,
        question_id: &str,
        answer: &serde_json::Value,
        by: &str,
        at: &str,
    ) -> anyhow::Result<bool> {
        let done = sqlx::query(
            "UPDATE questions SET status = $1, answer = $2, answered_by = $3, answered_at = $4
             WHERE run_id = $5 AND question_id = $6 AND status = $7",
        )
        .bind(QuestionStatus::Answered.as_str())
        .bind(answer.to_string())
        .bind(by)
        .bind(at)
        .bind(run_id)
        .bind(question_id)
        .bind(QuestionStatus::Open.as_str())
        .execute(&self.pool)
        .await?;
        let taken = done.rows_affected() > 0;
        if taken {
            self.notify(super::RUNS_CHANNEL, run_id).await;
        }
        Ok(taken)
    }

    /// Fails an open question (nobody can answer it, or its timeout passed without a
    /// default); false when it was answered first.
    pub(crate) async fn fail_question(
        &self,
        fence: &Fence,
        question_id: &str,
        error: &str,
        at: &str,
    ) -> anyhow::Result<bool> {
        let sql = format!(
            "UPDATE questions SET status = $1, error = $2, answered_at = $3
             WHERE run_id = $4 AND question_id = $5 AND status = $6 AND {}",
            fence_sql(4, 7)
        );
        let done = sqlx::query(&sql)
            .bind(QuestionStatus::Failed.as_str())
            .bind(error)
            .bind(at)
            .bind(&fence.run_id)
            .bind(question_id)
            .bind(QuestionStatus::Open.as_str())
            .bind(fence.epoch)
            .execute(&self.pool)
            .await?;
        Ok(done.rows_affected() > 0)
    }

    /// Opens a failed question again (its run was resumed after it failed).
    pub(crate) async fn reopen_question(
        &self,
        fence: &Fence,
        question_id: &str,
    ) -> anyhow::Result<()> {
        let sql = format!(
            "UPDATE questions SET status = $1, error = NULL, answered_at = NULL
             WHERE run_id = $2 AND question_id = $3 AND {}",
            fence_sql(2, 4)
        );
        let done = sqlx::query(&sql)
            .bind(QuestionStatus::Open.as_str())
            .bind(&fence.run_id)
            .bind(question_id)
            .bind(fence.epoch)
            .execute(&self.pool)
            .await?;
        fence.applied(done.rows_affected())
    }

    /// A run's questions in the order they were asked.
    pub(crate) async fn questions(&self, run_id: &str) -> anyhow::Result<Vec<QuestionRecord>> {
        let rows = sqlx::query(&format!(
            "SELECT {COLUMNS} FROM questions WHERE run_id = $1 ORDER BY seq"
        ))
        .bind(run_id)
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(question_from_row).collect()
    }

    /// One question of a run, if it exists.
    pub(crate) async fn question(
        &self,
        run_id: &str,
        question_id: &str,
    ) -> anyhow::Result<Option<QuestionRecord>> {
        let row = sqlx::query(&format!(
            "SELECT {COLUMNS} FROM questions WHERE run_id = $1 AND question_id = $2"
        ))
        .bind(run_id)
        .bind(question_id)
        .fetch_optional(&self.pool)
        .await?;
        row.as_ref().map(question_from_row).transpose()
    }

    /// The question of a run with this key, if it was asked.
    pub(crate) async fn question_by_key(
        &self,
        run_id: &str,
        key: &str,
    ) -> anyhow::Result<Option<QuestionRecord>> {
        let row = sqlx::query(&format!(
            "SELECT {COLUMNS} FROM questions WHERE run_id = $1 AND question_key = $2"
        ))
        .bind(run_id)
        .bind(key)
        .fetch_optional(&self.pool)
        .await?;
        row.as_ref().map(question_from_row).transpose()
    }

    /// The highest question `seq` of a run (0 with none).
    pub(crate) async fn last_question_seq(&self, run_id: &str) -> anyhow::Result<u32> {
        let row = sqlx::query(
            "SELECT CAST(COALESCE(MAX(seq), 0) AS BIGINT) AS n FROM questions WHERE run_id = $1",
        )
        .bind(run_id)
        .fetch_one(&self.pool)
        .await?;
        Ok(uint(&row, "n").min(u32::MAX as u64) as u32)
    }

    /// Sets or clears a run's pause flag (`booflow pause` / `resume`, docs/DESIGN.md §6);
    /// false when the run is not queued or running.
    pub(crate) async fn set_paused(&self, run_id: &str, paused: bool) -> anyhow::Result<bool> {
        let done = sqlx::query(
            "UPDATE runs SET paused = $1 WHERE run_id = $2 AND status IN ('queued', 'running')",
        )
        .bind(paused as i64)
        .bind(run_id)
        .execute(&self.pool)
        .await?;
        let changed = done.rows_affected() > 0;
        if changed {
            self.notify(super::RUNS_CHANNEL, run_id).await;
        }
        Ok(changed)
    }

    /// Whether a run's pause flag is set.
    pub(crate) async fn paused(&self, run_id: &str) -> anyhow::Result<bool> {
        let row = sqlx::query("SELECT paused FROM runs WHERE run_id = $1")
            .bind(run_id)
            .fetch_optional(&self.pool)
            .await?;
        Ok(row.is_some_and(|r| uint(&r, "paused") != 0))
    }
}

//! The shapes booflow shows the world, in one place (docs/DESIGN.md §6): the typed states
//! of runs and calls ([`status`]), the journal's records as read back ([`records`]), the
//! CLI `--json` objects and REST bodies ([`wire`]) and the WebSocket frames ([`frames`]).
//!
//! The CLI, the server and the engine's journal readers all use these types, and the
//! pane's TypeScript declarations (`web/types/`) are generated from them
//! ([`export_typescript`]), so a renamed field fails the pane's type check instead of the
//! pane. Nothing here depends on another booflow crate.

pub mod frames;
pub mod records;
pub mod status;
pub mod wire;

pub use frames::{CallReport, Frame, Step, StepKind, StepStatus, StepUpdate};
pub use records::{CallRecord, CallTotals, LogRecord, QuestionRecord, RunRecord, Usage};
pub use status::{CallStatus, LogLevel, QuestionStatus, RunStatus, SandboxKind, Source};
pub use wire::{
    ActiveRuns, AgentCounts, AgentOrigin, AgentRow, AnswerQuestion, ApiErrorBody, CallSummary,
    CliTraceRow, CostTotals, Health, LogsPage, OwnerInfo, Phase, PoolStatus, RunAccepted,
    RunDetail, RunOutcome, RunResumed, RunShow, RunSummary, RunsPage, StartRun, TraceRow,
    TracesPage, UsageTotals, WorkflowInfo,
};

use ts_rs::TS;

/// Writes the TypeScript declarations of every wire type into `dir` (one `<Type>.ts` per
/// type, importing each other), for the pane's JSDoc types.
///
/// # Errors
/// The file that could not be written.
pub fn export_typescript(dir: &std::path::Path) -> Result<(), String> {
    let config = ts_rs::Config::new().with_out_dir(dir);
    let results = [
        Frame::export_all(&config),
        RunDetail::export_all(&config),
        RunsPage::export_all(&config),
        TracesPage::export_all(&config),
        LogsPage::export_all(&config),
        WorkflowInfo::export_all(&config),
        StartRun::export_all(&config),
        RunAccepted::export_all(&config),
        RunResumed::export_all(&config),
        AnswerQuestion::export_all(&config),
        Health::export_all(&config),
        ApiErrorBody::export_all(&config),
        RunShow::export_all(&config),
        AgentRow::export_all(&config),
        CliTraceRow::export_all(&config),
    ];
    for result in results {
        result.map_err(|e| {
            format!(
                "cannot write the TypeScript declarations into {}: {e}",
                dir.display()
            )
        })?;
    }
    Ok(())
}

//! Pausing a running run (docs/DESIGN.md §6 `booflow pause` / `booflow resume`): the
//! journal's pause flag, read by the run loop's poll, closes the run's gate. While it is
//! closed no new agent call starts (a call waits `pending` at the gate, after its slot and
//! budget reservation), calls in flight finish and are journaled, and the script's timers
//! that fire are held until the run resumes. The flag outlives the run's owner, so a run
//! adopted by another server (or this one after a restart) stays paused.

use booflow_host_api::HostEvent;
use booflow_types::LogLevel;

use super::driver::RunLoop;
use crate::events::RunEvent;

impl RunLoop {
    /// The journal says the run is `paused` (or not): closes or opens the gate, says so in
    /// the log, and hands held timers to the script on resume.
    pub(super) async fn pause_changed(&mut self, paused: bool) {
        if !self.control.set_paused(paused) {
            return;
        }
        let message = match paused {
            true => "paused: no new agent call starts until the run is resumed (booflow resume)",
            false => "resumed",
        };
        self.log(LogLevel::Info, message.into()).await;
        self.engine.emit(RunEvent::RunPaused {
            run_id: self.run_id.clone(),
            paused,
        });
        if !paused {
            for id in std::mem::take(&mut self.held_timers) {
                self.reply(HostEvent::Timer { id });
            }
        }
    }
}

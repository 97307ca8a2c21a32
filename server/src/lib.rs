//! `booflow serve`: the REST + WebSocket API and the Orchestrator pane (DESIGN.md §6).
//!
//! Not built yet: this crate holds the place in the workspace so the layout of DESIGN.md §8
//! stays visible. The server will run workflows as background jobs on `booflow-engine`.

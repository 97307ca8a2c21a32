//! Resolves `workflow(nameOrRef)` for the engine through discovery (docs/DESIGN.md §1, §5).

use std::path::{Path, PathBuf};

use booflow_engine::ScriptLoader;
use booflow_host_api::{PreparedScript, WorkflowTarget};
use booflow_workflows::{WorkflowEntry, discover, load_confined, project_root};

/// Finds workflows the way `booflow run` does: project, then global, then catalog.
pub struct DiscoveryLoader {
    pub cwd: PathBuf,
    pub home: Option<PathBuf>,
}

impl ScriptLoader for DiscoveryLoader {
    /// JavaScript and `.wasm` workflows alike: the engine decides who may nest which (a
    /// JavaScript parent compiles its child in its own runtime, so only JavaScript; a
    /// `.wasm` parent runs its child in a sandbox of its own, docs/DESIGN.md §1, §2).
    fn load(&self, target: &WorkflowTarget, from_file: &str) -> Result<PreparedScript, String> {
        self.find(target, from_file)
    }
}

impl DiscoveryLoader {
    fn find(&self, target: &WorkflowTarget, from_file: &str) -> Result<PreparedScript, String> {
        match target {
            WorkflowTarget::Name(name) => {
                let found = discover(&self.cwd, self.home.as_deref());
                found
                    .find(name)
                    .map(WorkflowEntry::prepared)
                    .ok_or_else(|| {
                        let names: Vec<&str> =
                            found.workflows.iter().map(|w| w.name.as_str()).collect();
                        format!(
                            "workflow('{name}'): no such workflow; known: {}",
                            names.join(", ")
                        )
                    })
            }
            WorkflowTarget::Path { script_path } => {
                let base = Path::new(from_file)
                    .parent()
                    .map(Path::to_path_buf)
                    .unwrap_or_default();
                let path = if Path::new(script_path).is_absolute() {
                    PathBuf::from(script_path)
                } else {
                    base.join(script_path)
                };
                let path = if path.is_absolute() {
                    path
                } else {
                    self.cwd.join(path)
                };
                // Only scripts of this project or the global workflows directory: the
                // sandbox must not reach other files through the loader.
                let mut roots = vec![project_root(&self.cwd)];
                if let Some(home) = &self.home {
                    roots.push(home.join(".boocode").join("workflows"));
                }
                load_confined(&path, &roots)
                    .map(|entry| entry.prepared())
                    .map_err(|e| format!("workflow({{scriptPath: '{script_path}'}}): {e}"))
            }
        }
    }
}

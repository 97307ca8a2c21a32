//! `isolation: 'worktree'` (docs/DESIGN.md §4): a call runs in a fresh git worktree based on the
//! project's current `HEAD`, under `.boocode/worktrees/<run>/<call>` on branch
//! `booflow/<run>/<call>`. Afterwards an unchanged worktree is removed; a changed one is
//! kept and reported with its branch and diff.

use std::path::{Path, PathBuf};

use tokio::process::Command;

/// A worktree made for one call.
#[derive(Debug)]
pub struct Worktree {
    pub path: PathBuf,
    pub branch: String,
    project: PathBuf,
}

/// A worktree kept because the agent changed something.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct Kept {
    pub branch: String,
    /// `git diff --stat` against the base, changes and new files included.
    pub stat: String,
    /// The unified diff, cut at 256 KiB.
    pub diff: String,
}

const MAX_DIFF_BYTES: usize = 256 * 1024;

/// `booflow worktrees clean`: removes every kept worktree under
/// `<project>/.boocode/worktrees/<run>/<call>` and its `booflow/<run>/<call>` branch.
/// Returns the removed paths. Errors: git refusing a removal (the message names the path).
pub async fn clean(project: &Path) -> Result<Vec<PathBuf>, String> {
    let root = project.join(".boocode/worktrees");
    let mut removed = Vec::new();
    let Ok(runs) = std::fs::read_dir(&root) else {
        return Ok(removed);
    };
    for run in runs.flatten() {
        let Ok(calls) = std::fs::read_dir(run.path()) else {
            continue;
        };
        for call in calls.flatten() {
            let path = call.path();
            let branch = format!(
                "booflow/{}/{}",
                run.file_name().to_string_lossy(),
                call.file_name().to_string_lossy()
            );
            let path_text = path.to_string_lossy().into_owned();
            git(project, &["worktree", "remove", "--force", &path_text])
                .await
                .map_err(|e| format!("{}: {e}", path.display()))?;
            // The branch may be gone already (removed by hand); that is fine.
            let _ = git(project, &["branch", "-D", &branch]).await;
            removed.push(path);
        }
        let _ = std::fs::remove_dir(run.path());
    }
    Ok(removed)
}

async fn git(dir: &Path, args: &[&str]) -> Result<String, String> {
    let output = Command::new("git")
        .arg("-C")
        .arg(dir)
        .args(args)
        .output()
        .await
        .map_err(|e| format!("cannot run git: {e}"))?;
    if output.status.success() {
        Ok(String::from_utf8_lossy(&output.stdout).into_owned())
    } else {
        Err(format!(
            "git {} failed: {}",
            args.join(" "),
            String::from_utf8_lossy(&output.stderr).trim()
        ))
    }
}

impl Worktree {
    /// Creates the worktree from the project's `HEAD` now (not a stale base); one left by
    /// an earlier owner of the same run and call is replaced.
    ///
    /// # Errors
    /// The project is not a git repository with a commit, or git refuses.
    pub async fn create(project: &Path, run_id: &str, call_id: &str) -> Result<Self, String> {
        git(project, &["rev-parse", "--verify", "HEAD"])
            .await
            .map_err(|_| {
                format!(
                    "isolation: 'worktree' needs a git repository with at least one commit at {}",
                    project.display()
                )
            })?;
        let path = project
            .join(".boocode/worktrees")
            .join(run_id)
            .join(call_id);
        let branch = format!("booflow/{run_id}/{call_id}");
        let path_text = path.to_string_lossy().into_owned();
        // A call of a resumed run that an earlier owner had started left its worktree:
        // the call starts over from HEAD, so the old tree and branch go first.
        if path.exists() {
            let _ = git(project, &["worktree", "remove", "--force", &path_text]).await;
            let _ = git(project, &["branch", "-D", &branch]).await;
        }
        git(
            project,
            &[
                "worktree", "add", "--quiet", "-b", &branch, &path_text, "HEAD",
            ],
        )
        .await?;
        Ok(Self {
            path,
            branch,
            project: project.to_path_buf(),
        })
    }

    /// Puts the tree back to `HEAD`: drops every change and untracked file (a retried call
    /// starts from what the first attempt saw, not from its half-done edits).
    ///
    /// # Errors
    /// git's message when it refuses.
    pub async fn reset(&self) -> Result<(), String> {
        git(&self.path, &["reset", "-q", "--hard"]).await?;
        git(&self.path, &["clean", "-q", "-fd"]).await?;
        Ok(())
    }

    /// Ends the worktree after its call: removed (with its branch) when the call changed
    /// nothing; otherwise kept, and its branch, `git diff --stat` and diff (cut at 256 KiB)
    /// returned for the journal.
    ///
    /// # Errors
    /// git's message when it refuses.
    pub async fn finish(self) -> Result<Option<Kept>, String> {
        // Stage everything (new files too) so the diff shows the whole change.
        git(&self.path, &["add", "--all"]).await?;
        let stat = git(&self.path, &["diff", "--cached", "--stat", "HEAD"]).await?;
        if stat.trim().is_empty() {
            let path_text = self.path.to_string_lossy().into_owned();
            git(
                &self.project,
                &["worktree", "remove", "--force", &path_text],
            )
            .await?;
            git(&self.project, &["branch", "-D", &self.branch]).await?;
            return Ok(None);
        }
        let mut diff = git(&self.path, &["diff", "--cached", "HEAD"]).await?;
        if diff.len() > MAX_DIFF_BYTES {
            let mut cut = MAX_DIFF_BYTES;
            while !diff.is_char_boundary(cut) {
                cut -= 1;
            }
            diff.truncate(cut);
            diff.push_str("\n… (diff cut at 256 KiB)\n");
        }
        Ok(Some(Kept {
            branch: self.branch,
            stat: stat.trim_end().to_string(),
            diff,
        }))
    }
}

//! Finding workflows (docs/DESIGN.md §5): project `.boocode/workflows/*.js` walking up from the
//! current directory, global `~/.boocode/workflows/*.js`, and the embedded catalog.
//!
//! Rules chosen where the brief is open:
//! - A workflow is named by its `meta.name` (as Claude Code does), not its file name; a
//!   file whose stem differs from its `meta.name` gets a warning.
//! - Project directories are the current directory and its ancestors up to and including
//!   the repository root (the nearest ancestor with a `.git` entry). Outside a repository
//!   the walk stops at the nearest ancestor with a `.boocode` directory (or at the current
//!   directory if there is none), so unrelated directories higher up are never scanned.
//! - The home directory's `.boocode` is the *global* scope, never a project one, even when
//!   the walk passes through home.
//! - Nearer shadows farther: a nearer project directory shadows a farther one, project
//!   shadows global, global shadows catalog. Two files with the same `meta.name` in one
//!   directory (or twice in the catalog) are a [`Problem`]; the first by file name wins.
//! - Workflows are `.js` scripts and `.wasm` modules (docs/DESIGN.md §2; a module's meta is
//!   its `booflow.meta` section, see [`crate::module`]); both kinds share one namespace.
//! - Files whose name starts with `.` (editor temporaries) and entries that are neither
//!   `.js` nor `.wasm` are ignored. Unreadable or invalid files are [`Problem`]s and are
//!   skipped, never fatal.

use std::collections::BTreeMap;
use std::fmt;
use std::fs;
use std::io;
use std::path::{Path, PathBuf};

use booflow_host_api::limits::MAX_SCRIPT_BYTES;
use booflow_types::WorkflowInfo;

use crate::{MetaError, ParsedScript, parse_script, too_large};

/// Where a workflow was found (docs/DESIGN.md §5); ordered nearest first.
pub use booflow_types::Source;

/// One runnable workflow.
#[derive(Debug, Clone, PartialEq)]
pub struct WorkflowEntry {
    /// The workflow's name: its `meta.name`.
    pub name: String,
    /// Where it was found.
    pub source: Source,
    /// The file it came from; for the catalog, the catalog path
    /// (`catalog/workflows/hello.js`).
    pub path: PathBuf,
    /// The parsed script: meta, warnings and body (empty for a `.wasm` module).
    pub script: ParsedScript,
    /// The full source text (empty for a `.wasm` module).
    pub text: String,
    /// Set for a `.wasm` workflow: the module file and its hash.
    pub module: Option<booflow_host_api::ModuleRef>,
}

impl WorkflowEntry {
    /// The script the engine runs, with the path its errors name.
    pub fn prepared(&self) -> booflow_host_api::PreparedScript {
        booflow_host_api::PreparedScript {
            file: self.path.display().to_string(),
            body: self.script.body.clone(),
            module: self.module.clone(),
        }
    }

    /// The titles of `meta.phases`, in order.
    pub fn phase_titles(&self) -> Vec<String> {
        self.script
            .meta
            .phases
            .iter()
            .map(|p| p.title.clone())
            .collect()
    }

    /// The entry as `booflow list --json` and `GET /api/workflows` show it.
    pub fn info(&self) -> WorkflowInfo {
        let meta = &self.script.meta;
        WorkflowInfo {
            name: self.name.clone(),
            description: meta.description.clone(),
            when_to_use: meta.when_to_use.clone(),
            phases: meta.phases.clone(),
            source: self.source,
            args: meta.args.clone(),
            path: self.path.to_string_lossy().into_owned(),
        }
    }
}

/// A file that could not be used, with the reason. Displays as `path:line:column: message`
/// (or `path: message` when the problem has no position).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    /// The offending file or directory.
    pub path: PathBuf,
    /// 1-based line of the problem in the file, when it has one.
    pub line: Option<usize>,
    /// 1-based column of the problem in the file, when it has one.
    pub column: Option<usize>,
    /// The reason, without the location.
    pub message: String,
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.path.display())?;
        if let (Some(line), Some(column)) = (self.line, self.column) {
            write!(f, ":{line}:{column}")?;
        }
        write!(f, ": {}", self.message)
    }
}

impl Problem {
    fn new(path: &Path, message: impl Into<String>) -> Self {
        Problem {
            path: path.to_path_buf(),
            line: None,
            column: None,
            message: message.into(),
        }
    }
}

/// Everything [`discover`] found.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Discovery {
    /// Visible workflows, sorted by name; shadowed ones are not included.
    pub workflows: Vec<WorkflowEntry>,
    /// Files and directories that were skipped, with reasons, in scan order.
    pub problems: Vec<Problem>,
}

impl Discovery {
    /// The visible workflow called `name` (its `meta.name`).
    pub fn find(&self, name: &str) -> Option<&WorkflowEntry> {
        self.workflows.iter().find(|w| w.name == name)
    }
}

/// Why [`load_path`] could not load a file.
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    /// The file could not be read (missing, a directory, permissions, …).
    #[error("cannot read {}: {source}", path.display())]
    Read {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        #[source]
        source: io::Error,
    },
    /// The file is not UTF-8 text.
    #[error("{} is not valid UTF-8", path.display())]
    NotUtf8 {
        /// The file.
        path: PathBuf,
    },
    /// The script is too large or its meta is invalid.
    #[error(transparent)]
    Meta(#[from] MetaError),
    /// A `.wasm` module that is not a runnable workflow (malformed, a forbidden import, no
    /// or an invalid `booflow.meta`).
    #[error("{}: {source}", path.display())]
    Module {
        /// The file.
        path: PathBuf,
        /// What is wrong with it.
        #[source]
        source: crate::module::ModuleError,
    },
    /// A nested `workflow({scriptPath})` named a file outside the project and the global
    /// workflows directory (see [`load_confined`]).
    #[error(
        "{} is outside the project and the global workflows directory; workflow({{scriptPath}}) loads only scripts inside them",
        path.display()
    )]
    Outside {
        /// The path as the script gave it, resolved against the calling file.
        path: PathBuf,
    },
}

impl LoadError {
    fn into_problem(self, path: &Path) -> Problem {
        match self {
            LoadError::Read { source, .. } => Problem::new(path, format!("cannot read: {source}")),
            LoadError::NotUtf8 { .. } => Problem::new(path, "not valid UTF-8"),
            LoadError::Outside { .. } => Problem::new(path, self.to_string()),
            LoadError::Module { source, .. } => Problem::new(path, source.to_string()),
            LoadError::Meta(e) => Problem {
                path: path.to_path_buf(),
                line: Some(e.line),
                column: Some(e.column),
                message: e.message,
            },
        }
    }
}

/// The user's home directory, whose `.boocode/workflows` is the global scope; pass it to
/// [`discover`]. Tests pass their own directory instead.
pub fn default_home() -> Option<PathBuf> {
    dirs::home_dir()
}

/// Lists the workflows visible from `cwd` (docs/DESIGN.md §5): project ones (see the module
/// docs for the walk), then global ones under `home` (skipped when `None`), then the
/// catalog, each scope shadowing the later ones by name. Never fails: unreadable or invalid
/// files are returned as [`Discovery::problems`].
pub fn discover(cwd: &Path, home: Option<&Path>) -> Discovery {
    let cwd = absolute(cwd);
    let home = home.map(absolute);
    let mut problems = Vec::new();
    let mut visible: BTreeMap<String, WorkflowEntry> = BTreeMap::new();
    let mut add = |found: Vec<WorkflowEntry>| {
        for entry in found {
            // Earlier scopes are nearer, so the first entry of a name wins.
            visible.entry(entry.name.clone()).or_insert(entry);
        }
    };
    for dir in project_dirs(&cwd, home.as_deref()) {
        add(scan_dir(
            &workflows_dir(&dir),
            Source::Project,
            &mut problems,
        ));
    }
    if let Some(home) = &home {
        add(scan_dir(
            &workflows_dir(home),
            Source::Global,
            &mut problems,
        ));
    }
    add(catalog(&mut problems));
    Discovery {
        workflows: visible.into_values().collect(),
        problems,
    }
}

/// Loads one script by path, for `booflow run ./some/file.js`; the entry's source is
/// [`Source::Project`] and its path is `path` as given.
///
/// # Errors
/// [`LoadError`] when the file cannot be read, is not a regular file, is not UTF-8,
/// exceeds the 512 KiB script cap (never reading more than that), or has an invalid meta.
pub fn load_path(path: &Path) -> Result<WorkflowEntry, LoadError> {
    if path.extension().is_some_and(|e| e == "wasm") {
        return load_module(path);
    }
    let text = read_script(path)?;
    let file = path.display().to_string();
    let script = parse_script(&text, &file)?;
    let stem = path.file_stem().map(|s| s.to_string_lossy().into_owned());
    Ok(entry(
        script,
        text,
        Source::Project,
        path.to_path_buf(),
        stem.as_deref(),
    ))
}

/// Loads the script a nested `workflow({scriptPath})` names, for a workflow running in
/// the sandbox: only a regular file inside one of `roots` (the project and the global
/// workflows directory), checked on the path as written *and* after symlinks are
/// resolved, and its errors never quote the file's content, so a script cannot use the
/// loader to read or run files elsewhere on the machine (docs/DESIGN.md §1).
///
/// # Errors
/// [`LoadError::Outside`] for a path outside every root, else as [`load_path`], with any
/// excerpt of the file's text left out of the message.
pub fn load_confined(path: &Path, roots: &[PathBuf]) -> Result<WorkflowEntry, LoadError> {
    let outside = || LoadError::Outside {
        path: path.to_path_buf(),
    };
    let inside = |p: &Path| roots.iter().any(|root| p.starts_with(root));
    // First on the path as written, so nothing outside is even probed.
    if !inside(&lexical(path)) {
        return Err(outside());
    }
    let real = fs::canonicalize(path).map_err(|source| LoadError::Read {
        path: path.to_path_buf(),
        source,
    })?;
    let real_roots: Vec<PathBuf> = roots
        .iter()
        .filter_map(|r| fs::canonicalize(r).ok())
        .collect();
    if !real_roots.iter().any(|root| real.starts_with(root)) {
        return Err(outside());
    }
    load_path(&real).map_err(|e| match e {
        LoadError::Meta(meta) => LoadError::Meta(meta.without_excerpts()),
        other => other,
    })
}

/// `path` with `.` and `..` resolved by name alone (no file system access).
fn lexical(path: &Path) -> PathBuf {
    use std::path::Component;
    let mut out = PathBuf::new();
    for part in path.components() {
        match part {
            Component::ParentDir => {
                out.pop();
            }
            Component::CurDir => {}
            other => out.push(other.as_os_str()),
        }
    }
    out
}

/// Reads a script file without trusting what sits at `path`: it must be a regular file
/// (a FIFO, a device such as `/dev/zero` or a directory is refused without blocking on
/// it), and at most [`MAX_SCRIPT_BYTES`] + 1 bytes are ever read, whatever its size claims.
///
/// # Errors
/// [`LoadError::Read`] (missing, permissions, not a regular file), [`LoadError::Meta`]
/// for an oversized file (at 1:1), [`LoadError::NotUtf8`].
pub fn read_script(path: &Path) -> Result<String, LoadError> {
    let read_err = |source| LoadError::Read {
        path: path.to_path_buf(),
        source,
    };
    let mut options = fs::OpenOptions::new();
    options.read(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt as _;
        // Opening a FIFO for reading blocks until a writer appears; non-blocking opens
        // return at once, and the type check below refuses it.
        options.custom_flags(libc::O_NONBLOCK);
    }
    let file = options.open(path).map_err(read_err)?;
    let meta = file.metadata().map_err(read_err)?;
    if !meta.is_file() {
        return Err(read_err(io::Error::new(
            io::ErrorKind::InvalidInput,
            "not a regular file",
        )));
    }
    let mut bytes = Vec::new();
    io::Read::read_to_end(
        &mut io::Read::take(file, MAX_SCRIPT_BYTES as u64 + 1),
        &mut bytes,
    )
    .map_err(read_err)?;
    if bytes.len() > MAX_SCRIPT_BYTES {
        // The size on disk, when it can be told, says by how much.
        let size = meta.len().max(bytes.len() as u64);
        return Err(LoadError::Meta(MetaError {
            file: path.display().to_string(),
            line: 1,
            column: 1,
            message: too_large(size),
        }));
    }
    String::from_utf8(bytes).map_err(|_| LoadError::NotUtf8 {
        path: path.to_path_buf(),
    })
}

/// The project root for `cwd`: the nearest ancestor (itself included) with a `.boocode`
/// directory, else the nearest with a `.git` entry, else `cwd`. Two refinements keep it
/// consistent with [`discover`]: the `.boocode` search does not go above the repository
/// root, and the home directory's `.boocode` (the global scope) does not count.
pub fn project_root(cwd: &Path) -> PathBuf {
    project_root_in(
        &absolute(cwd),
        default_home().as_deref().map(absolute).as_deref(),
    )
}

fn project_root_in(cwd: &Path, home: Option<&Path>) -> PathBuf {
    let ancestors: Vec<&Path> = cwd.ancestors().collect();
    let git = ancestors.iter().position(|d| is_git_root(d));
    let bound = git.unwrap_or(ancestors.len() - 1);
    if let Some(dir) = ancestors[..=bound]
        .iter()
        .find(|d| has_project_boocode(d, home))
    {
        return dir.to_path_buf();
    }
    git.map_or_else(|| cwd.to_path_buf(), |i| ancestors[i].to_path_buf())
}

/// Directories whose `.boocode/workflows` are project scopes, nearest first.
fn project_dirs(cwd: &Path, home: Option<&Path>) -> Vec<PathBuf> {
    let ancestors: Vec<&Path> = cwd.ancestors().collect();
    let last = ancestors
        .iter()
        .position(|d| is_git_root(d))
        .unwrap_or_else(|| {
            ancestors
                .iter()
                .position(|d| has_project_boocode(d, home))
                .unwrap_or(0)
        });
    ancestors[..=last]
        .iter()
        .filter(|d| Some(**d) != home)
        .map(|d| d.to_path_buf())
        .collect()
}

/// `.git` is a directory in a normal clone and a file in worktrees and submodules.
fn is_git_root(dir: &Path) -> bool {
    dir.join(".git").exists()
}

fn has_project_boocode(dir: &Path, home: Option<&Path>) -> bool {
    Some(dir) != home && dir.join(".boocode").is_dir()
}

fn workflows_dir(dir: &Path) -> PathBuf {
    dir.join(".boocode").join("workflows")
}

/// Canonical when possible (so ancestors and the home comparison are reliable), else made
/// absolute against the process's current directory.
fn absolute(path: &Path) -> PathBuf {
    fs::canonicalize(path)
        .or_else(|_| std::path::absolute(path))
        .unwrap_or_else(|_| path.to_path_buf())
}

/// The valid scripts of one directory, sorted by file name; everything else is a problem.
fn scan_dir(dir: &Path, source: Source, problems: &mut Vec<Problem>) -> Vec<WorkflowEntry> {
    let entries = match fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Vec::new(),
        Err(e) => {
            problems.push(Problem::new(dir, format!("cannot read the directory: {e}")));
            return Vec::new();
        }
    };
    let mut files: Vec<PathBuf> = entries
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| is_script_file(p))
        .collect();
    files.sort();
    let mut found: Vec<WorkflowEntry> = Vec::new();
    for path in files {
        let loaded = load_path(&path).map(|mut e| {
            e.source = source;
            e
        });
        match loaded {
            Ok(entry) => push_unique(&mut found, entry, problems),
            Err(e) => problems.push(e.into_problem(&path)),
        }
    }
    found
}

fn is_script_file(path: &Path) -> bool {
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy())
        .unwrap_or_default();
    // `is_file` follows symlinks: a FIFO or device named `x.js` is not a script.
    !name.starts_with('.')
        && path.extension().is_some_and(|e| e == "js" || e == "wasm")
        && path.is_file()
}

fn catalog(problems: &mut Vec<Problem>) -> Vec<WorkflowEntry> {
    let mut found = Vec::new();
    for script in booflow_catalog::scripts() {
        let path = PathBuf::from(script.path);
        match parse_script(script.source, script.path) {
            Ok(parsed) => {
                let text = script.source.to_string();
                let e = entry(parsed, text, Source::Catalog, path, Some(script.name));
                push_unique(&mut found, e, problems);
            }
            Err(e) => problems.push(LoadError::Meta(e).into_problem(&path)),
        }
    }
    found
}

/// Adds `entry` unless a file in the same scope already claimed its name.
fn push_unique(found: &mut Vec<WorkflowEntry>, entry: WorkflowEntry, problems: &mut Vec<Problem>) {
    if let Some(first) = found.iter().find(|e| e.name == entry.name) {
        problems.push(Problem::new(
            &entry.path,
            format!(
                "duplicate workflow name '{}': {} already defines it; this file is skipped",
                entry.name,
                first.path.display()
            ),
        ));
    } else {
        found.push(entry);
    }
}

fn entry(
    mut script: ParsedScript,
    text: String,
    source: Source,
    path: PathBuf,
    stem: Option<&str>,
) -> WorkflowEntry {
    let name = script.meta.name.clone();
    if let Some(stem) = stem.filter(|s| *s != name) {
        script.warnings.push(format!(
            "meta.name '{name}' differs from the file name '{stem}'; the workflow is \
             listed as '{name}'"
        ));
    }
    WorkflowEntry {
        name,
        source,
        path,
        script,
        text,
        module: None,
    }
}

/// Loads a `.wasm` workflow: checks its imports and reads its meta from the `booflow.meta`
/// section (docs/DESIGN.md §2), without instantiating it.
fn load_module(path: &Path) -> Result<WorkflowEntry, LoadError> {
    let module_err = |source| LoadError::Module {
        path: path.to_path_buf(),
        source,
    };
    let bytes = crate::module::read_module(path)
        .map_err(|source| LoadError::Read {
            path: path.to_path_buf(),
            source,
        })?
        .map_err(module_err)?;
    let checked = crate::module::check_module(&bytes).map_err(module_err)?;
    let script = ParsedScript {
        meta: checked.meta,
        warnings: checked.warnings,
        body: String::new(),
        meta_span: 0..0,
    };
    let stem = path.file_stem().map(|s| s.to_string_lossy().into_owned());
    let mut entry = entry(
        script,
        String::new(),
        Source::Project,
        path.to_path_buf(),
        stem.as_deref(),
    );
    entry.module = Some(booflow_host_api::ModuleRef {
        path: path.display().to_string(),
        sha256: checked.sha256,
    });
    Ok(entry)
}

#[cfg(test)]
mod tests;

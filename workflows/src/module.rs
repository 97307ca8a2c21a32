//! `.wasm` workflows (docs/DESIGN.md §2, §5): a `wasm32-wasip1` module built with the Rust
//! SDK (`booflow-sdk`). Its meta is the JSON of its `booflow.meta` custom section, read
//! without instantiating the module, and its imports are checked against the sandbox's
//! allowlist before anything runs.

use std::io;
use std::path::Path;

use serde_json::Value;
use sha2::{Digest, Sha256};

use crate::{InvalidMeta, Meta};

/// The custom section holding a module's meta as UTF-8 JSON (`booflow_sdk::meta!` writes it).
pub const META_SECTION: &str = "booflow.meta";

/// A module may be at most this large (64 MiB), checked before it is read in full.
pub const MAX_MODULE_BYTES: u64 = 64 << 20;

/// The host imports a module may use, all in the `booflow` module: the same three the
/// JavaScript runtime uses (docs/DESIGN.md §2).
pub const BOOFLOW_IMPORTS: [&str; 3] = ["send", "wait", "recv"];

/// The WASI preview 1 module name.
pub const WASI_MODULE: &str = "wasi_snapshot_preview1";

/// The WASI preview 1 functions a module may import: what Rust's standard library needs to
/// start, print, exit and seed its hash maps, nothing that reaches files, sockets or
/// processes. In the sandbox there are no arguments and no environment, stdout and stderr
/// are discarded, `random_get` is a fixed seeded stream and the clocks stand still at the
/// epoch, so a module run twice does the same thing (docs/DESIGN.md §2).
pub const ALLOWED_WASI: [&str; 13] = [
    "args_get",
    "args_sizes_get",
    "environ_get",
    "environ_sizes_get",
    "clock_res_get",
    "clock_time_get",
    "fd_write",
    "fd_close",
    "fd_fdstat_get",
    "fd_seek",
    "proc_exit",
    "random_get",
    "sched_yield",
];

/// Why a `.wasm` file is not a runnable workflow.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ModuleError {
    /// The bytes are not a WebAssembly module.
    #[error("not a WebAssembly module: {0}")]
    Malformed(String),
    /// The module imports something the sandbox does not provide.
    #[error(
        "imports {module}::{name}, which the sandbox does not provide; a .wasm workflow may \
         import only booflow::{{send, wait, recv}} and the WASI functions {}",
        ALLOWED_WASI.join(", ")
    )]
    ForbiddenImport {
        /// The import's module, e.g. `wasi_snapshot_preview1` or `env`.
        module: String,
        /// The imported item.
        name: String,
    },
    /// There is no `booflow.meta` section.
    #[error(
        "has no `{META_SECTION}` custom section: declare the workflow's meta with \
         booflow_sdk::meta!(…) (docs/DESIGN.md §2)"
    )]
    NoMeta,
    /// The section is not JSON.
    #[error("its `{META_SECTION}` section is not JSON: {0}")]
    MetaJson(String),
    /// The meta breaks a rule of docs/DESIGN.md §1.
    #[error("{0}")]
    Meta(InvalidMeta),
    /// The file is larger than [`MAX_MODULE_BYTES`].
    #[error("is {0} bytes; a .wasm workflow may be at most {MAX_MODULE_BYTES} bytes")]
    TooLarge(u64),
}

/// A checked module: its meta, the warnings of the meta check, and its hash.
#[derive(Debug, Clone, PartialEq)]
pub struct CheckedModule {
    /// The validated meta of `booflow.meta`.
    pub meta: Meta,
    /// Unknown meta keys and the like, for `booflow validate`.
    pub warnings: Vec<String>,
    /// Hex SHA-256 of the module's bytes.
    pub sha256: String,
}

/// Hex SHA-256 of a module's bytes, the key its compiled form is cached by.
pub fn module_hash(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

/// Checks the imports of a module against [`BOOFLOW_IMPORTS`] and [`ALLOWED_WASI`].
///
/// # Errors
/// [`ModuleError::ForbiddenImport`] naming the first import outside the allowlist, or
/// [`ModuleError::Malformed`].
pub fn check_imports(bytes: &[u8]) -> Result<(), ModuleError> {
    for payload in wasmparser::Parser::new(0).parse_all(bytes) {
        let payload = payload.map_err(|e| ModuleError::Malformed(e.to_string()))?;
        if let wasmparser::Payload::ImportSection(reader) = payload {
            for import in reader.into_imports() {
                let import = import.map_err(|e| ModuleError::Malformed(e.to_string()))?;
                let allowed = match import.module {
                    "booflow" => BOOFLOW_IMPORTS.contains(&import.name),
                    WASI_MODULE => ALLOWED_WASI.contains(&import.name),
                    _ => false,
                };
                if !allowed {
                    return Err(ModuleError::ForbiddenImport {
                        module: import.module.to_string(),
                        name: import.name.to_string(),
                    });
                }
            }
        }
    }
    Ok(())
}

/// Reads a module's `booflow.meta` section as JSON, without instantiating it.
///
/// # Errors
/// [`ModuleError::NoMeta`], [`ModuleError::MetaJson`] or [`ModuleError::Malformed`].
pub fn read_meta(bytes: &[u8]) -> Result<Value, ModuleError> {
    for payload in wasmparser::Parser::new(0).parse_all(bytes) {
        let payload = payload.map_err(|e| ModuleError::Malformed(e.to_string()))?;
        if let wasmparser::Payload::CustomSection(section) = payload
            && section.name() == META_SECTION
        {
            return serde_json::from_slice(section.data())
                .map_err(|e| ModuleError::MetaJson(e.to_string()));
        }
    }
    Err(ModuleError::NoMeta)
}

/// Checks a module as `booflow validate` and discovery do: its imports, then its meta.
///
/// # Errors
/// The first [`ModuleError`] found.
pub fn check_module(bytes: &[u8]) -> Result<CheckedModule, ModuleError> {
    if !bytes.starts_with(b"\0asm") {
        return Err(ModuleError::Malformed(
            "the file does not start with the wasm magic number".into(),
        ));
    }
    check_imports(bytes)?;
    let (meta, warnings) = Meta::from_value(read_meta(bytes)?).map_err(ModuleError::Meta)?;
    Ok(CheckedModule {
        meta,
        warnings,
        sha256: module_hash(bytes),
    })
}

/// Reads a module file, refusing one larger than [`MAX_MODULE_BYTES`] before reading it.
///
/// # Errors
/// The I/O error, or `Ok(Err(TooLarge))` for an oversized file.
pub fn read_module(path: &Path) -> io::Result<Result<Vec<u8>, ModuleError>> {
    let size = std::fs::metadata(path)?.len();
    if size > MAX_MODULE_BYTES {
        return Ok(Err(ModuleError::TooLarge(size)));
    }
    std::fs::read(path).map(Ok)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A module with the given imports (all `() -> ()` functions) and custom sections.
    fn module(imports: &[(&str, &str)], sections: &[(&str, &[u8])]) -> Vec<u8> {
        use wasm_encoder::{CustomSection, EntityType, ImportSection, Module, TypeSection};
        let mut m = Module::new();
        let mut types = TypeSection::new();
        types.ty().function([], []);
        m.section(&types);
        let mut section = ImportSection::new();
        for (module, name) in imports {
            section.import(module, name, EntityType::Function(0));
        }
        m.section(&section);
        for (name, data) in sections {
            m.section(&CustomSection {
                name: (*name).into(),
                data: (*data).into(),
            });
        }
        m.finish()
    }

    const META: &[u8] =
        br#"{"name":"rusty","description":"a Rust workflow","phases":[{"title":"Go"}]}"#;

    #[test]
    fn a_module_with_booflow_and_allowed_wasi_imports_passes() {
        let bytes = module(
            &[("booflow", "send"), (WASI_MODULE, "fd_write")],
            &[(META_SECTION, META)],
        );
        let checked = check_module(&bytes).unwrap();
        assert_eq!(checked.meta.name, "rusty");
        assert_eq!(checked.meta.phases[0].title, "Go");
        assert_eq!(checked.sha256, module_hash(&bytes));
    }

    #[test]
    fn a_forbidden_import_is_named() {
        let bytes = module(&[(WASI_MODULE, "path_open")], &[(META_SECTION, META)]);
        let err = check_module(&bytes).unwrap_err();
        assert!(
            err.to_string()
                .starts_with("imports wasi_snapshot_preview1::path_open, which the sandbox"),
            "{err}"
        );
        let bytes = module(&[("env", "socket")], &[(META_SECTION, META)]);
        assert_eq!(
            check_module(&bytes).unwrap_err(),
            ModuleError::ForbiddenImport {
                module: "env".into(),
                name: "socket".into()
            }
        );
    }

    #[test]
    fn meta_must_be_present_json_and_valid() {
        assert_eq!(check_module(&module(&[], &[])), Err(ModuleError::NoMeta));
        let bad = module(&[], &[(META_SECTION, b"{name:")]);
        assert!(matches!(check_module(&bad), Err(ModuleError::MetaJson(_))));
        let invalid = module(&[], &[(META_SECTION, br#"{"name":"x"}"#)]);
        assert_eq!(
            check_module(&invalid).unwrap_err().to_string(),
            "meta.description is required (a non-empty string)"
        );
        assert!(matches!(
            check_module(b"not wasm"),
            Err(ModuleError::Malformed(_))
        ));
    }
}

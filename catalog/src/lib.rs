//! The built-in workflow catalog (docs/DESIGN.md §5), embedded in the binary so a fresh install
//! has workflows to run. Each script lives in `catalog/workflows/<name>.js` in the Claude
//! Code Workflow format; `booflow list` shows them with `source = "catalog"`. A project or
//! global workflow of the same name shadows a catalog one.

/// One embedded script.
#[derive(Debug, Clone, Copy)]
pub struct CatalogScript {
    /// The workflow name (the file stem; `meta.name` must match it).
    pub name: &'static str,
    /// Path shown to users, relative to the repository: `catalog/workflows/<name>.js`.
    pub path: &'static str,
    /// The script text.
    pub source: &'static str,
}

macro_rules! script {
    ($name:literal) => {
        CatalogScript {
            name: $name,
            path: concat!("catalog/workflows/", $name, ".js"),
            source: include_str!(concat!("../workflows/", $name, ".js")),
        }
    };
}

static SCRIPTS: &[CatalogScript] = &[
    script!("arena"),
    script!("bounty-hunt"),
    script!("deep-research"),
    script!("han"),
    script!("hello"),
    script!("multi-review"),
    script!("plan-verify"),
];

/// Every catalog script, sorted by name.
pub fn scripts() -> &'static [CatalogScript] {
    SCRIPTS
}

/// The catalog script called `name`.
pub fn get(name: &str) -> Option<&'static CatalogScript> {
    SCRIPTS.iter().find(|s| s.name == name)
}

#[cfg(test)]
mod tests {
    #[test]
    fn every_script_declares_its_own_name() {
        for script in super::scripts() {
            assert!(
                script.source.contains(&format!("name: '{}'", script.name)),
                "{} must declare name: '{}'",
                script.path,
                script.name
            );
        }
    }
}

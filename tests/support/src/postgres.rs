//! A PostgreSQL database of its own for one test: created on a real server, dropped with
//! the value, so tests run in parallel without seeing each other's runs.
//!
//! The server is `BOOFLOW_TEST_PG` (default `postgres://postgres@127.0.0.1:5432`, trust
//! auth, as on the CI machines); `.ci/run` checks with `pg_isready` that it is up. A test
//! that needs PostgreSQL fails, with this message, when it is not: it is never skipped.

use std::process::Command;
use std::sync::atomic::{AtomicU64, Ordering};

/// The server tests use: `BOOFLOW_TEST_PG`, or the local one.
pub fn server_url() -> String {
    std::env::var("BOOFLOW_TEST_PG").unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432".into())
}

/// A database created for one test; dropped (with `FORCE`) when this value is.
pub struct TestDatabase {
    /// `postgres://…/<name>`: what `DATABASE_URL` should be.
    pub url: String,
    name: String,
}

fn psql(sql: &str) -> Result<(), String> {
    let output = Command::new("psql")
        .arg(format!("{}/postgres", server_url()))
        .args(["-v", "ON_ERROR_STOP=1", "-qc", sql])
        .output()
        .map_err(|e| format!("cannot run psql ({e}); install postgresql-client"))?;
    if output.status.success() {
        Ok(())
    } else {
        Err(String::from_utf8_lossy(&output.stderr).into_owned())
    }
}

impl TestDatabase {
    /// Creates a fresh, empty database.
    ///
    /// # Panics
    /// When the PostgreSQL server cannot be reached: these tests need it.
    pub fn create() -> Self {
        static NEXT: AtomicU64 = AtomicU64::new(0);
        let name = format!(
            "booflow_test_{}_{}",
            std::process::id(),
            NEXT.fetch_add(1, Ordering::Relaxed)
        );
        psql(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)")).ok();
        if let Err(e) = psql(&format!("CREATE DATABASE {name}")) {
            panic!(
                "this test needs PostgreSQL at {} (BOOFLOW_TEST_PG); creating a database failed: {e}",
                server_url()
            );
        }
        Self {
            url: format!("{}/{name}", server_url()),
            name,
        }
    }
}

impl Drop for TestDatabase {
    fn drop(&mut self) {
        let _ = psql(&format!(
            "DROP DATABASE IF EXISTS {} WITH (FORCE)",
            self.name
        ));
    }
}

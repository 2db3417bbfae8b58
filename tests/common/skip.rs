//! Tests that need something outside the repository (a GPU adapter, the MLflow virtual
//! environment) skip without it on a developer's machine, saying so, but fail in CI, where
//! `scripts/setup.sh --test` installs it: a skip must never hide a failure there.

use std::io::Write;

/// Whether this is a CI run: `CI` is set to anything but "", "0" or "false" (CI services set
/// `CI=true`).
pub fn in_ci() -> bool {
    std::env::var("CI").is_ok_and(|v| !matches!(v.trim(), "" | "0" | "false" | "FALSE" | "False"))
}

/// A prerequisite is missing: outside CI prints `skipped: <why>; <how>` to stderr (the caller
/// then returns); in CI panics with the same explanation.
///
/// The line goes to the process's stderr itself, not through `eprintln!`, which the test
/// harness captures and shows only for failed tests: a skip is seen without `--nocapture`.
pub fn missing_prerequisite(why: &str, how: &str) {
    if in_ci() {
        panic!("{why}; {how} (CI is set, so this fails instead of skipping)");
    }
    let _ = writeln!(std::io::stderr(), "skipped: {why}; {how}");
}

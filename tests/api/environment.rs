//! The run itself: which optional services it had, said loudly when one was missing, and a
//! failure when a CI run lacks one (there, a test that did not run must not look like a pass).

use std::io::Write;

use crate::helpers::{PG_ENV, REDIS_ENV};

/// `CI` set to anything but empty, `0` or `false`, as CI services do.
fn in_ci() -> bool {
    std::env::var("CI").is_ok_and(|v| !matches!(v.to_ascii_lowercase().as_str(), "" | "0" | "false"))
}

#[test]
fn every_service_backed_test_runs_in_ci() {
    let services = [
        (PG_ENV, cfg!(tienda_test_postgres), "every ::postgres variant"),
        (
            REDIS_ENV,
            cfg!(tienda_test_redis),
            "the Redis tests (shared throttle, readiness)",
        ),
    ];
    let mut missing = Vec::new();
    for (variable, compiled_to_run, tests) in services {
        if !compiled_to_run || std::env::var_os(variable).is_none_or(|v| v.is_empty()) {
            // Straight to stderr, past the harness's capture: this must be seen.
            let _ = writeln!(
                std::io::stderr(),
                "\n*** WARNING: {variable} is not set: {tests} IGNORED (listed as ignored, not run). \
                 Set it, e.g. {variable}={} ***\n",
                if variable == PG_ENV {
                    "postgres://postgres@127.0.0.1:5432/test"
                } else {
                    "redis://127.0.0.1:6379"
                }
            );
            missing.push(variable);
        }
    }
    assert!(
        missing.is_empty() || !in_ci(),
        "CI is set but {missing:?} not: the tests that need them did not run"
    );
}

/// The browser checks of `/docs` need `/usr/bin/chromium`; without it they say so loudly and
/// return, which a CI run must not mistake for a pass.
#[test]
fn the_browser_checks_run_in_ci() {
    if !std::path::Path::new("/usr/bin/chromium").exists() {
        let _ = writeln!(
            std::io::stderr(),
            "\n*** WARNING: /usr/bin/chromium is missing: the browser checks of /docs are SKIPPED ***\n"
        );
        assert!(
            !in_ci(),
            "CI is set but /usr/bin/chromium is missing: the /docs browser checks did not run"
        );
    }
}

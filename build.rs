//! Tells the API tests, at compile time, which optional services they were given, so a test
//! that needs PostgreSQL or Redis is compiled as `#[ignore]` when its variable is unset and
//! `cargo test` reports it as ignored instead of passing without running (libtest can only
//! ignore a test at compile time). The variables are read again at run time, where a test whose
//! service is missing fails loudly.

/// (variable, cfg set when it is set).
const SERVICES: [(&str, &str); 2] = [
    ("TIENDA_TEST_DATABASE_URL", "tienda_test_postgres"),
    ("TIENDA_TEST_REDIS_URL", "tienda_test_redis"),
];

fn main() {
    println!("cargo::rerun-if-changed=build.rs");
    for (variable, cfg) in SERVICES {
        println!("cargo::rerun-if-env-changed={variable}");
        println!("cargo::rustc-check-cfg=cfg({cfg})");
        if std::env::var_os(variable).is_some_and(|value| !value.is_empty()) {
            println!("cargo::rustc-cfg={cfg}");
        }
    }
}

//! Builds the plugin components the tests load, once per test run: the Rust
//! crates with `cargo build --target wasm32-wasip2 --profile plugin`, the
//! Python and JavaScript examples with their own build scripts (which install
//! componentize-py and componentize-js from the registries).

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::{Mutex, OnceLock};

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

fn out_dir() -> PathBuf {
    repo().join("target/test-plugins")
}

/// The Rust test and example plugins, as (crate, artifact name).
const RUST: &[(&str, &str)] = &[
    ("postern-test-noop-std", "postern_test_noop_std"),
    ("postern-test-hostile", "postern_test_hostile"),
    ("postern-test-filing", "postern_test_filing"),
    ("postern-test-mistyped", "postern_test_mistyped"),
    ("postern-example-rbl", "postern_example_rbl"),
    ("postern-header-checks", "postern_header_checks"),
    ("postern-restrictions", "postern_restrictions"),
    ("postern-mailfilter", "postern_mailfilter"),
];

/// The `#![no_std]` ones: built apart, since with the others cargo would turn
/// on the `std` feature of dependencies they share.
const RUST_NO_STD: &[(&str, &str)] = &[
    ("postern-test-noop", "postern_test_noop"),
    ("postern-rbl", "postern_rbl"),
    ("postern-test-spin", "postern_test_spin"),
];

fn build_rust() -> Result<(), String> {
    cargo_build(RUST)?;
    cargo_build(RUST_NO_STD)
}

fn cargo_build(crates: &[(&str, &str)]) -> Result<(), String> {
    let target_dir = repo().join("target/wasm-plugins");
    let mut cmd = Command::new(env!("CARGO"));
    cmd.current_dir(repo())
        .env("CARGO_TARGET_DIR", &target_dir)
        .args([
            "build",
            "--quiet",
            "--target",
            "wasm32-wasip2",
            "--profile",
            "plugin",
        ]);
    for (krate, _) in crates {
        cmd.args(["-p", krate]);
    }
    let out = cmd.output().map_err(|e| format!("cargo: {e}"))?;
    if !out.status.success() {
        return Err(format!(
            "building the Rust plugins failed:\n{}",
            String::from_utf8_lossy(&out.stderr)
        ));
    }
    std::fs::create_dir_all(out_dir()).map_err(|e| e.to_string())?;
    for (_, artifact) in crates {
        let from = target_dir.join(format!("wasm32-wasip2/plugin/{artifact}.wasm"));
        std::fs::copy(&from, out_dir().join(format!("{artifact}.wasm")))
            .map_err(|e| format!("{}: {e}", from.display()))?;
    }
    Ok(())
}

fn build_script(example: &str) -> Result<(), String> {
    std::fs::create_dir_all(out_dir()).map_err(|e| e.to_string())?;
    let script = repo()
        .join("plugins/examples")
        .join(example)
        .join("build.sh");
    let out = Command::new("bash")
        .arg(&script)
        .arg(out_dir().join(format!("{example}.wasm")))
        .output()
        .map_err(|e| format!("{}: {e}", script.display()))?;
    if !out.status.success() {
        return Err(format!(
            "{} failed:\n{}\n{}",
            script.display(),
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ));
    }
    Ok(())
}

/// The path of a built component: a Rust artifact name (`postern_test_noop`)
/// or an example directory (`python-greylist`, `js-subject-tag`).
pub fn component(name: &str) -> PathBuf {
    type Builds = Vec<(String, Result<(), String>)>;
    static BUILT: OnceLock<Mutex<Builds>> = OnceLock::new();
    let key = if RUST.iter().chain(RUST_NO_STD).any(|(_, a)| *a == name) {
        "rust"
    } else {
        name
    };
    let built = BUILT.get_or_init(|| Mutex::new(Vec::new()));
    let mut built = built.lock().unwrap_or_else(|p| p.into_inner());
    if !built.iter().any(|(k, _)| k == key) {
        let result = if key == "rust" {
            build_rust()
        } else {
            build_script(key)
        };
        built.push((key.to_owned(), result));
    }
    if let Some((_, Err(e))) = built.iter().find(|(k, _)| k == key) {
        panic!("{e}");
    }
    out_dir().join(format!("{name}.wasm"))
}

/// Copies a component into `dir` as `file`.
pub fn install(name: &str, dir: &Path, file: &str) -> PathBuf {
    std::fs::create_dir_all(dir).expect("plugin dir");
    let to = dir.join(file);
    // Write then rename: the server's watcher must never see half a file.
    let tmp = dir.join(format!(".{file}.tmp"));
    std::fs::copy(component(name), &tmp).expect("copy component");
    std::fs::rename(&tmp, &to).expect("rename component");
    to
}

//! Builds the default plugin bundle into the binary.
//!
//! `postern run` without a configuration file must work as a stock MTA, so
//! the default plugins (restrictions, rbl, header-checks, mailfilter) are
//! compiled to components here and embedded with `include_bytes!`; the
//! configuration names them `builtin:NAME`.
//!
//! The components are built by a nested `cargo build --target wasm32-wasip2
//! --profile plugin` into `target/wasm-plugins` (the directory the tests'
//! plugin builds share), sharing the outer build's job slots. Packagers who
//! build the components separately point `POSTERN_BUNDLE_DIR` at a directory
//! holding the four `.wasm` files; `POSTERN_NO_BUNDLE=1` builds a binary
//! without them (`builtin:` plugins then fail to load, saying why).

use std::env;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::Command;

/// (name in `builtin:NAME`, crate, artifact).
const BUNDLE: &[(&str, &str, &str)] = &[
    (
        "restrictions",
        "postern-restrictions",
        "postern_restrictions",
    ),
    ("rbl", "postern-rbl", "postern_rbl"),
    (
        "header-checks",
        "postern-header-checks",
        "postern_header_checks",
    ),
    ("mailfilter", "postern-mailfilter", "postern_mailfilter"),
];

/// The bundle's crates that do not link std. They are built in a cargo
/// invocation of their own: built with the others, cargo would turn on the
/// `std` feature of dependencies they share, and std's panic handler would
/// clash with theirs.
const NO_STD: &[&str] = &["postern-rbl"];

/// Inputs of the nested build, relative to the workspace root.
const WATCHED: &[&str] = &[
    "plugins/restrictions",
    "plugins/rbl",
    "plugins/header-checks/src",
    "plugins/header-checks/Cargo.toml",
    "plugins/mailfilter",
    "plugins/regexp-table",
    "plugin-sdk/src",
    "plugin-sdk/Cargo.toml",
    "wit",
    "Cargo.lock",
    ".cargo/config.toml",
];

fn main() -> Result<(), String> {
    let manifest = PathBuf::from(env::var("CARGO_MANIFEST_DIR").map_err(|e| e.to_string())?);
    let root = manifest
        .parent()
        .ok_or("the host crate has no parent directory")?
        .to_owned();
    let out = PathBuf::from(env::var("OUT_DIR").map_err(|e| e.to_string())?);
    println!("cargo::rerun-if-env-changed=POSTERN_BUNDLE_DIR");
    println!("cargo::rerun-if-env-changed=POSTERN_NO_BUNDLE");
    for w in WATCHED {
        println!("cargo::rerun-if-changed={}", root.join(w).display());
    }

    let dir = if env::var_os("POSTERN_NO_BUNDLE").is_some_and(|v| v != "0") {
        None
    } else if let Some(dir) = env::var_os("POSTERN_BUNDLE_DIR") {
        Some(PathBuf::from(dir))
    } else {
        Some(build(&root)?)
    };
    let mut code = String::from("/// The default plugins: (`builtin:` name, component bytes).\n");
    code.push_str("pub const BUNDLE: &[(&str, &[u8])] = &[\n");
    if let Some(dir) = dir {
        for (name, _, artifact) in BUNDLE {
            let file = dir.join(format!("{artifact}.wasm"));
            if !file.is_file() {
                return Err(format!("{} is missing", file.display()));
            }
            let _ = writeln!(
                code,
                "    ({name:?}, include_bytes!({:?})),",
                file.display().to_string()
            );
        }
    }
    code.push_str("];\n");
    std::fs::write(out.join("bundle.rs"), code).map_err(|e| e.to_string())
}

/// Runs the nested cargo builds (std crates, then `no_std` ones); returns
/// where the components are.
fn build(root: &Path) -> Result<PathBuf, String> {
    add_missing_target(root);
    let target_dir = root.join("target/wasm-plugins");
    for no_std in [false, true] {
        let crates = BUNDLE
            .iter()
            .map(|(_, krate, _)| *krate)
            .filter(|k| NO_STD.contains(k) == no_std);
        cargo_build(root, &target_dir, crates)?;
    }
    Ok(target_dir.join("wasm32-wasip2/plugin"))
}

/// Adds the wasm target to the toolchain when it lacks it. rustup installs
/// the targets `rust-toolchain.toml` lists when it installs that toolchain,
/// but not when the toolchain was already there without them, and the first
/// `cargo run` would then fail here. Best effort: without rustup (or on
/// failure) the nested build reports the missing target itself.
fn add_missing_target(root: &Path) {
    let rustc = env::var("RUSTC").unwrap_or_else(|_| "rustc".into());
    let Ok(libdir) = Command::new(rustc)
        .args(["--print", "target-libdir", "--target", "wasm32-wasip2"])
        .output()
    else {
        return;
    };
    let libdir = String::from_utf8_lossy(&libdir.stdout);
    if libdir.trim().is_empty() || Path::new(libdir.trim()).is_dir() {
        return;
    }
    println!("cargo::warning=adding the wasm32-wasip2 target (rustup target add wasm32-wasip2)");
    // Cargo shows this run's warnings again whenever it reuses its output:
    // once the target is there, the next build reruns this script instead.
    println!("cargo::rerun-if-changed={}", libdir.trim());
    let added = Command::new("rustup")
        .current_dir(root)
        .args(["target", "add", "wasm32-wasip2"])
        .output();
    if let Ok(out) = added
        && !out.status.success()
    {
        println!(
            "cargo::warning=rustup target add wasm32-wasip2 failed: {}",
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
}

fn cargo_build<'a>(
    root: &Path,
    target_dir: &Path,
    crates: impl Iterator<Item = &'a str>,
) -> Result<(), String> {
    let cargo = env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let mut cmd = Command::new(cargo);
    cmd.current_dir(root)
        .args(["build", "--target", "wasm32-wasip2", "--profile", "plugin"]);
    for krate in crates {
        cmd.args(["-p", krate]);
    }
    // What the outer cargo sets for this build script must not leak into the
    // nested build: its rustflags would replace the wasm target's (stack
    // size), and clippy's wrapper would lint the plugins again.
    for var in [
        "CARGO_ENCODED_RUSTFLAGS",
        "RUSTFLAGS",
        "CARGO_BUILD_RUSTFLAGS",
        "RUSTC_WORKSPACE_WRAPPER",
        "CARGO_BUILD_TARGET",
        "CARGO_PRIMARY_PACKAGE",
        "MAKEFLAGS",
        "MFLAGS",
    ] {
        cmd.env_remove(var);
    }
    cmd.env("CARGO_TARGET_DIR", target_dir);
    // Share the outer build's job slots rather than doubling the load.
    if let Ok(flags) = env::var("CARGO_MAKEFLAGS") {
        cmd.env("MAKEFLAGS", flags);
    }
    let output = cmd
        .output()
        .map_err(|e| format!("cannot run cargo for the plugin bundle: {e}"))?;
    if !output.status.success() {
        return Err(format!(
            "building the default plugin bundle failed (is the target installed? \
             `rustup target add wasm32-wasip2`; POSTERN_NO_BUNDLE=1 skips the bundle):\n{}",
            String::from_utf8_lossy(&output.stderr)
        ));
    }
    Ok(())
}

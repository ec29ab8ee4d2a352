//! Tests that need a private Linux namespace (network, mount): the outer test re-runs its own
//! test binary under `unshare`, asking for the inner test alone by its full name, and the inner
//! test (marked `#[ignore]` with the reason, and checking the variable it is given) does the
//! work there.

use std::process::Command;

use anyhow::{Context, Result, bail};

/// Whether the tests run as root (creating a namespace needs it).
pub fn is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|o| o.stdout.starts_with(b"0\n"))
}

/// The full name in this test binary of `function` in `module` (pass `module_path!()`): the
/// module path without the crate name, then the function.
pub fn inner_test(module: &str, function: &str) -> String {
    let module = module
        .split_once("::")
        .map_or("", |(_crate, module)| module);
    format!("{module}::{function}")
}

/// Runs the inner test `inner` of the current test binary under `unshare` with `unshare_args`
/// (e.g. `["-n"]`) and `env` set to 1; fails, with its output, unless it ran and passed.
pub fn run_inner(unshare_args: &[&str], inner: &str, env: &str) -> Result<()> {
    let exe = std::env::current_exe().context("the test binary's path")?;
    let out = Command::new("unshare")
        .args(unshare_args)
        .arg("--")
        .arg(exe)
        .args([
            "--exact",
            inner,
            "--ignored",
            "--nocapture",
            "--test-threads=1",
        ])
        .env(env, "1")
        .output()
        .context("run unshare (util-linux)")?;
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    if !out.status.success() {
        bail!("inner test failed:\n{text}");
    }
    if !text.contains("1 passed") {
        bail!("the inner test did not run:\n{text}");
    }
    Ok(())
}

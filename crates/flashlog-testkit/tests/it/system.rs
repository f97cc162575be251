//! Helpers for the tests that need the real machine: root, mounts, loop devices.
//! Those tests are `#[ignore = "needs root: …"]`, so a plain `cargo test` lists
//! them as ignored; `.ci/run` (as root) runs them with `--ignored`. Once asked to
//! run, a test that cannot set up its machine fails with the reason: it never
//! reports `ok` for a test that did not run.

use std::path::{Path, PathBuf};
use std::process::Command;

/// Fails the test `test`: it cannot run here, for `reason`.
pub fn cannot_run(test: &str, reason: &str) -> ! {
    panic!("{test} cannot run: {reason} (it needs root; see the testkit README)")
}

/// Runs a command; its stderr on failure.
pub fn run(program: &str, args: &[&str]) -> Result<String, String> {
    let output = Command::new(program)
        .args(args)
        .output()
        .map_err(|err| format!("cannot run {program}: {err}"))?;
    if output.status.success() {
        Ok(String::from_utf8_lossy(&output.stdout).trim().to_string())
    } else {
        Err(format!(
            "{program} {}: {}",
            args.join(" "),
            String::from_utf8_lossy(&output.stderr).trim()
        ))
    }
}

/// Fails the test `test` unless we are root.
pub fn require_root(test: &str) {
    match run("id", &["-u"]) {
        Ok(uid) if uid == "0" => {}
        Ok(uid) => cannot_run(test, &format!("not root (uid {uid})")),
        Err(err) => cannot_run(test, &err),
    }
}

/// A mounted file system, unmounted when dropped (even when the test fails).
pub struct Mount {
    pub path: PathBuf,
}

impl Mount {
    pub fn new(args: &[&str], path: &Path) -> Result<Mount, String> {
        let target = path.to_str().ok_or("non-UTF-8 mount point")?;
        let mut all: Vec<&str> = args.to_vec();
        all.push(target);
        run("mount", &all)?;
        Ok(Mount {
            path: path.to_path_buf(),
        })
    }
}

impl Drop for Mount {
    fn drop(&mut self) {
        if let Some(path) = self.path.to_str() {
            if run("umount", &[path]).is_err() {
                let _ = run("umount", &["-l", path]);
            }
        }
    }
}

/// A loop device, detached when dropped.
pub struct Loop {
    pub device: String,
}

impl Loop {
    pub fn new(image: &Path) -> Result<Loop, String> {
        let image = image.to_str().ok_or("non-UTF-8 image path")?;
        let device = run("losetup", &["-f", "--show", image])?;
        Ok(Loop { device })
    }
}

impl Drop for Loop {
    fn drop(&mut self) {
        let _ = run("losetup", &["-d", &self.device]);
    }
}

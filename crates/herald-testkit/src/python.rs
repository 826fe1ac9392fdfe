//! Independent Python implementations as judges (`standardwebhooks`, `hmac`, …). `scripts/test`
//! installs them into a venv and exports `HERALD_TEST_PYTHON`; a missing interpreter or
//! module fails the test — it never skips it.

use std::io::Write;
use std::process::{Command, Stdio};

/// The interpreter the test suite uses.
pub fn interpreter() -> String {
    std::env::var("HERALD_TEST_PYTHON").unwrap_or_else(|_| "python3".into())
}

/// Runs `script` with `input` on stdin; answers stdout. Panics with Python's stderr when the
/// script fails (including an ImportError: run the tests through `scripts/test`).
pub fn run(script: &str, input: &[u8]) -> String {
    let mut child = Command::new(interpreter())
        .args(["-c", script])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| {
            panic!(
                "cannot start {} ({e}); run the tests with scripts/test",
                interpreter()
            )
        });
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(input)
        .expect("stdin written");
    let out = child.wait_with_output().expect("python ran");
    assert!(
        out.status.success(),
        "python failed (run the tests with scripts/test):\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

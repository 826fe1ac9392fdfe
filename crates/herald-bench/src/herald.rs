//! The `herald` binary as a child process: `herald serve --listen 127.0.0.1:0 --data <temp>`,
//! its address read from the "Herald listening on" stderr line and the default tenant's key
//! from the key file (as `crates/herald-server/tests/suite/binary.rs` does).

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use anyhow::{Context, anyhow};

/// How long Herald may take to announce itself or to stop.
const PATIENCE: Duration = Duration::from_secs(30);

pub struct Herald {
    child: Child,
    /// `http://127.0.0.1:<port>`.
    pub base: String,
    /// The default tenant's server key.
    pub key: String,
    _data: tempfile::TempDir,
}

impl Herald {
    pub fn start(binary: &Path) -> anyhow::Result<Herald> {
        Herald::start_with(binary, &[], None)
    }

    /// Starts it with extra `HERALD_…` settings in `env`. `key`: the server key to use when
    /// this process does not create the default tenant itself (a cluster's later nodes).
    pub fn start_with(
        binary: &Path,
        env: &[(String, String)],
        key: Option<&str>,
    ) -> anyhow::Result<Herald> {
        let data = tempfile::tempdir()?;
        let mut child = Command::new(binary)
            .args(["serve", "--listen", "127.0.0.1:0", "--data"])
            .arg(data.path())
            .envs(env.iter().map(|(k, v)| (k, v)))
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()?;
        let stderr = child.stderr.take().context("stderr is piped")?;
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            // Keep draining stderr for the child's whole life so it never blocks on a full pipe.
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                if let Some(addr) = line.strip_prefix("Herald listening on ") {
                    let _ = tx.send(addr.trim().to_string());
                }
            }
        });
        let base = match rx.recv_timeout(PATIENCE) {
            Ok(base) => base,
            Err(_) => {
                let _ = child.kill();
                let _ = child.wait();
                return Err(anyhow!("herald never announced its address"));
            }
        };
        let key = match key {
            Some(key) => key.to_string(),
            None => std::fs::read_to_string(data.path().join("default-tenant.key"))
                .context("reading default-tenant.key")?
                .trim()
                .to_string(),
        };
        Ok(Herald {
            child,
            base,
            key,
            _data: data,
        })
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{}", self.base, path)
    }

    /// `ws://127.0.0.1:<port>/v1/live`.
    pub fn live_url(&self) -> String {
        format!("{}/v1/live", self.base.replacen("http", "ws", 1))
    }

    /// SIGTERM, then a kill if it has not exited within [`PATIENCE`].
    pub fn stop(mut self) {
        let _ = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status();
        let deadline = std::time::Instant::now() + PATIENCE;
        while std::time::Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Herald {
    fn drop(&mut self) {
        // Never leave a Herald behind (e.g. when a scenario fails).
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

//! A running `fhirdrill serve` for tests: started on a free loopback port, stopped on drop.

use std::io::{BufRead, BufReader, Read};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};

/// A simulator process and its base URL.
pub(crate) struct Server {
    child: Child,
    stdout: Arc<Mutex<Vec<String>>>,
    /// `http://127.0.0.1:<port>`.
    pub(crate) url: String,
}

impl Server {
    /// Starts `fhirdrill serve --listen 127.0.0.1:0 <args>` and waits until it is listening.
    pub(crate) fn start(args: &[&str]) -> Self {
        Self::start_with_env(args, &[])
    }

    /// Like [`Server::start`], with extra environment variables.
    pub(crate) fn start_with_env(args: &[&str], env: &[(&str, &str)]) -> Self {
        let mut child = Command::new(env!("CARGO_BIN_EXE_fhirdrill"))
            .args(["serve", "--listen", "127.0.0.1:0"])
            .envs(env.iter().copied())
            .args(args)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("fhirdrill serve starts");
        let stdout = child.stdout.take().expect("piped stdout");
        let mut lines = BufReader::new(stdout).lines();
        let stdout = Arc::new(Mutex::new(Vec::new()));
        let url = loop {
            match lines.next() {
                Some(Ok(line)) => {
                    stdout.lock().expect("stdout lines").push(line.clone());
                    if let Some(rest) = line.split("listening on ").nth(1) {
                        break rest
                            .split_whitespace()
                            .next()
                            .unwrap_or_default()
                            .to_string();
                    }
                }
                _ => {
                    let output = child.wait_with_output().expect("serve exited");
                    panic!(
                        "serve did not start: {}",
                        String::from_utf8_lossy(&output.stderr)
                    );
                }
            }
        };
        // Keep draining stdout so the server never blocks on a full pipe.
        let sink = Arc::clone(&stdout);
        std::thread::spawn(move || {
            for line in lines.map_while(Result::ok) {
                sink.lock().expect("stdout lines").push(line);
            }
        });
        Self { child, stdout, url }
    }

    /// The FHIR base URL of the default environment.
    pub(crate) fn fhir(&self) -> String {
        format!("{}/sandbox/fhir", self.url)
    }

    /// Stops the server with Ctrl-C and returns everything it wrote (stdout, then stderr).
    pub(crate) fn stop_and_collect_output(mut self) -> String {
        let pid = self.child.id().to_string();
        let _ = Command::new("kill").args(["-INT", &pid]).status();
        let _ = self.child.wait();
        let mut stderr = String::new();
        if let Some(mut pipe) = self.child.stderr.take() {
            let _ = pipe.read_to_string(&mut stderr);
        }
        let stdout = self.stdout.lock().expect("stdout lines").join("\n");
        format!("{stdout}\n{stderr}")
    }

    /// Sends SIGINT (Ctrl-C) and returns the exit code.
    pub(crate) fn interrupt(mut self) -> Option<i32> {
        let pid = self.child.id().to_string();
        let _ = Command::new("kill").args(["-INT", &pid]).status();
        self.child.wait().ok().and_then(|s| s.code())
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

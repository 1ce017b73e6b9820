//! A running `fhirdrill serve` for tests: started on a free loopback port, stopped on drop.

use std::io::{BufRead, BufReader, Read};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};

/// The admin token every test server is started with.
pub(crate) const ADMIN_TOKEN: &str = "test-admin-token-for-fhirdrill-tests";

/// An HTTP client that sends the admin token: full access, as the harness reads ground truth.
pub(crate) fn admin_client() -> reqwest::blocking::Client {
    let mut headers = reqwest::header::HeaderMap::new();
    let value = format!("Bearer {ADMIN_TOKEN}");
    headers.insert(
        reqwest::header::AUTHORIZATION,
        reqwest::header::HeaderValue::from_str(&value).expect("a header value"),
    );
    reqwest::blocking::Client::builder()
        .default_headers(headers)
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .expect("http client")
}

/// A simulator process and its base URL.
pub(crate) struct Server {
    child: Child,
    stdout: Arc<Mutex<Vec<String>>>,
    /// `http://127.0.0.1:<port>`.
    pub(crate) url: String,
    /// The state folder (audit log, keys), removed on drop.
    pub(crate) state: tempfile::TempDir,
}

impl Server {
    /// Starts `fhirdrill serve --listen 127.0.0.1:0 <args>` and waits until it is listening.
    pub(crate) fn start(args: &[&str]) -> Self {
        Self::start_with_env(args, &[])
    }

    /// Like [`Server::start`], with extra environment variables.
    pub(crate) fn start_with_env(args: &[&str], env: &[(&str, &str)]) -> Self {
        let state = tempfile::tempdir().expect("a state folder");
        let mut command = Command::new(env!("CARGO_BIN_EXE_fhirdrill"));
        command.args(["serve", "--listen", "127.0.0.1:0"]);
        if !args.contains(&"--admin-token")
            && !env.iter().any(|(k, _)| *k == "FHIRDRILL_ADMIN_TOKEN")
        {
            command.args(["--admin-token", ADMIN_TOKEN]);
        }
        if !args.contains(&"--state-dir") {
            command.arg("--state-dir").arg(state.path());
        }
        let mut child = command
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
        Self {
            child,
            stdout,
            url,
            state,
        }
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

    /// Stops the server with Ctrl-C; returns its output and its state folder (kept).
    pub(crate) fn stop_keeping_state(mut self) -> (String, tempfile::TempDir) {
        let placeholder = tempfile::tempdir().expect("a folder");
        let state = std::mem::replace(&mut self.state, placeholder);
        (self.stop_and_collect_output(), state)
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

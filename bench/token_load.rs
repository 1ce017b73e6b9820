//! Load run of the token endpoint: SMART Backend Services `client_credentials` grants, each
//! authenticated with its own RS384 client assertion (unique `jti`), sent over keep-alive
//! connections from several threads. Prints tokens per second and latency percentiles.
//!
//! ```text
//! cargo run --release --example token_load -- http://127.0.0.1:8080 <admin token> [REQUESTS] [THREADS]
//! ```
//!
//! The assertions are signed before the clock starts (signing is the client's cost, not the
//! server's). `bench/load.sh` runs this against a fresh simulator.

use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use fhirdrill_simulator::smart::keys::{ClientAlg, ClientKey};
use fhirdrill_simulator::smart::registry::BACKEND_RS384;
use serde_json::{Value, json};

fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().collect();
    let (Some(url), Some(admin)) = (args.get(1), args.get(2)) else {
        bail!("usage: token_load BASE_URL ADMIN_TOKEN [REQUESTS] [THREADS]");
    };
    let requests: usize = args.get(3).map_or(Ok(10_000), |s| s.parse())?;
    let threads: usize = args.get(4).map_or(Ok(16), |s| s.parse())?;
    let http = reqwest::blocking::Client::new();
    let registrations: Value = http
        .get(format!("{url}/_sim/registrations"))
        .bearer_auth(admin)
        .send()?
        .error_for_status()?
        .json()?;
    let env = &registrations["environments"][0];
    let token_url = env["token_url"].as_str().context("token_url")?.to_string();
    let client = env["clients"]
        .as_array()
        .and_then(|cs| cs.iter().find(|c| c["client_id"] == BACKEND_RS384))
        .context("the built-in RS384 backend client")?;
    let pem = client["private_key_pem"].as_str().context("private key")?;
    let key = ClientKey::from_pem(ClientAlg::Rs384, pem)?;
    let assertions = sign_all(&key, &token_url, requests, threads)?;
    let started = Instant::now();
    let chunks: Vec<Vec<String>> = assertions
        .chunks(requests.div_ceil(threads).max(1))
        .map(<[String]>::to_vec)
        .collect();
    let handles: Vec<_> = chunks
        .into_iter()
        .map(|chunk| {
            let token_url = token_url.clone();
            std::thread::spawn(move || send_all(&token_url, &chunk))
        })
        .collect();
    let mut latencies = Vec::with_capacity(requests);
    let mut failures = 0;
    for handle in handles {
        let (times, failed) = handle
            .join()
            .map_err(|_| anyhow::anyhow!("a load thread panicked"))??;
        latencies.extend(times);
        failures += failed;
    }
    let elapsed = started.elapsed();
    latencies.sort();
    let pct = |p: usize| {
        latencies
            .get(latencies.len() * p / 100)
            .copied()
            .unwrap_or_default()
    };
    println!(
        "token endpoint (client_credentials, RS384 assertion): {} tokens in {:.2} s = {:.0} tokens/s; p50 {:.1} ms, p99 {:.1} ms; {failures} failed",
        latencies.len(),
        elapsed.as_secs_f64(),
        latencies.len() as f64 / elapsed.as_secs_f64(),
        pct(50).as_secs_f64() * 1000.0,
        pct(99).as_secs_f64() * 1000.0,
    );
    if failures > 0 {
        bail!("{failures} token requests failed");
    }
    Ok(())
}

/// Signs `count` assertions with distinct `jti`s, on `threads` threads.
fn sign_all(
    key: &ClientKey,
    token_url: &str,
    count: usize,
    threads: usize,
) -> anyhow::Result<Vec<String>> {
    let exp = time::OffsetDateTime::now_utc().unix_timestamp() + 290;
    std::thread::scope(|scope| {
        let per = count.div_ceil(threads.max(1));
        let handles: Vec<_> = (0..threads.max(1))
            .map(|t| {
                scope.spawn(move || {
                    (t * per..((t + 1) * per).min(count))
                        .map(|i| {
                            let claims = json!({"iss": BACKEND_RS384, "sub": BACKEND_RS384, "aud": token_url, "exp": exp, "jti": format!("load-{exp}-{i}")});
                            key.sign_assertion(&claims).map_err(anyhow::Error::from)
                        })
                        .collect::<anyhow::Result<Vec<String>>>()
                })
            })
            .collect();
        let mut out = Vec::with_capacity(count);
        for handle in handles {
            out.extend(
                handle
                    .join()
                    .map_err(|_| anyhow::anyhow!("a signing thread panicked"))??,
            );
        }
        Ok(out)
    })
}

/// Sends one token request per assertion; returns each latency and the number that failed.
fn send_all(token_url: &str, assertions: &[String]) -> anyhow::Result<(Vec<Duration>, usize)> {
    let http = reqwest::blocking::Client::new();
    let mut times = Vec::with_capacity(assertions.len());
    let mut failed = 0;
    for assertion in assertions {
        let started = Instant::now();
        let response = http
            .post(token_url)
            .form(&[
                ("grant_type", "client_credentials"),
                ("scope", "system/Patient.rs"),
                (
                    "client_assertion_type",
                    "urn:ietf:params:oauth:client-assertion-type:jwt-bearer",
                ),
                ("client_assertion", assertion.as_str()),
            ])
            .send()?;
        let ok = response.status().is_success();
        let _ = response.bytes()?;
        times.push(started.elapsed());
        if !ok {
            failed += 1;
        }
    }
    Ok((times, failed))
}

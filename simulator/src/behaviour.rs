//! Production-like behaviour: a per-client rate limit (429 with `Retry-After`) and injected
//! faults per route (added latency, 5xx with a probability), both off by default.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use rand::rngs::ChaCha8Rng;
use rand::{RngExt, SeedableRng};
use serde::Deserialize;

/// A token-bucket rate limit applied per client.
#[derive(Debug, Clone, Copy, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RateLimit {
    /// Sustained requests per second allowed per client.
    pub requests_per_second: f64,
    /// Requests a client may make at once before being limited.
    pub burst: u32,
}

/// A fault injected on requests whose path starts with `path_prefix`.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FaultRule {
    /// Applies to request paths starting with this (e.g. `/sandbox/fhir/Observation`).
    pub path_prefix: String,
    /// Latency added to every matching request, in milliseconds.
    #[serde(default)]
    pub latency_ms: u64,
    /// Probability (0 to 1) that a matching request fails with `error_status`.
    #[serde(default)]
    pub error_rate: f64,
    /// The status of injected failures (a 5xx; default 503).
    #[serde(default = "default_error_status")]
    pub error_status: u16,
}

fn default_error_status() -> u16 {
    503
}

/// What to do to one request before handling it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct FaultDecision {
    /// Latency to add.
    pub latency: Duration,
    /// Fail with this status instead of handling the request.
    pub fail_with: Option<u16>,
}

#[derive(Debug)]
struct Bucket {
    tokens: f64,
    updated: Instant,
}

/// The behaviour settings and their state.
#[derive(Debug)]
pub struct Behaviour {
    rate_limit: Option<RateLimit>,
    faults: Vec<FaultRule>,
    buckets: Mutex<HashMap<String, Bucket>>,
    dice: Mutex<ChaCha8Rng>,
}

impl Default for Behaviour {
    fn default() -> Self {
        Self::new(None, Vec::new(), 0)
    }
}

impl Behaviour {
    /// Behaviour with an optional rate limit and fault rules; `seed` makes injected failures
    /// reproducible.
    pub fn new(rate_limit: Option<RateLimit>, faults: Vec<FaultRule>, seed: u64) -> Self {
        Self {
            rate_limit,
            faults,
            buckets: Mutex::new(HashMap::new()),
            dice: Mutex::new(ChaCha8Rng::seed_from_u64(seed)),
        }
    }

    /// The configured rate limit.
    pub fn rate_limit(&self) -> Option<RateLimit> {
        self.rate_limit
    }

    /// Takes one request from `client`'s bucket; `Err(seconds)` says when to retry.
    pub fn admit(&self, client: &str, now: Instant) -> Result<(), u64> {
        let Some(limit) = self.rate_limit else {
            return Ok(());
        };
        let mut buckets = self.buckets.lock().unwrap_or_else(|p| p.into_inner());
        let bucket = buckets.entry(client.to_string()).or_insert(Bucket {
            tokens: f64::from(limit.burst),
            updated: now,
        });
        let elapsed = now.saturating_duration_since(bucket.updated).as_secs_f64();
        bucket.tokens =
            (bucket.tokens + elapsed * limit.requests_per_second).min(f64::from(limit.burst));
        bucket.updated = now;
        if bucket.tokens >= 1.0 {
            bucket.tokens -= 1.0;
            Ok(())
        } else {
            let wait = (1.0 - bucket.tokens) / limit.requests_per_second.max(f64::MIN_POSITIVE);
            Err(wait.ceil().max(1.0) as u64)
        }
    }

    /// The faults to inject on a request to `path`.
    pub fn faults_for(&self, path: &str) -> FaultDecision {
        let mut decision = FaultDecision::default();
        for rule in self
            .faults
            .iter()
            .filter(|r| path.starts_with(&r.path_prefix))
        {
            decision.latency += Duration::from_millis(rule.latency_ms);
            if decision.fail_with.is_none() && rule.error_rate > 0.0 {
                let roll: f64 = self.dice.lock().unwrap_or_else(|p| p.into_inner()).random();
                if roll < rule.error_rate {
                    decision.fail_with = Some(rule.error_status);
                }
            }
        }
        decision
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bucket_allows_burst_then_refills() {
        let b = Behaviour::new(
            Some(RateLimit {
                requests_per_second: 2.0,
                burst: 3,
            }),
            Vec::new(),
            0,
        );
        let t0 = Instant::now();
        assert!((0..3).all(|_| b.admit("c", t0).is_ok()));
        assert_eq!(b.admit("c", t0), Err(1));
        assert!(b.admit("other", t0).is_ok(), "limits are per client");
        assert!(b.admit("c", t0 + Duration::from_millis(600)).is_ok());
    }

    #[test]
    fn faults_apply_by_prefix_and_rate() {
        let rule = |rate: f64| FaultRule {
            path_prefix: "/sandbox/fhir/Observation".into(),
            latency_ms: 5,
            error_rate: rate,
            error_status: 503,
        };
        let always = Behaviour::new(None, vec![rule(1.0)], 1);
        assert_eq!(
            always.faults_for("/sandbox/fhir/Observation/1").fail_with,
            Some(503)
        );
        assert_eq!(
            always.faults_for("/sandbox/fhir/Patient/1"),
            FaultDecision::default()
        );
        let never = Behaviour::new(None, vec![rule(0.0)], 1);
        let d = never.faults_for("/sandbox/fhir/Observation");
        assert_eq!((d.latency, d.fail_with), (Duration::from_millis(5), None));
    }
}

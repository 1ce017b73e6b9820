//! Fetching and caching the JWKS a client registered by URL (`jwks_uri`), for `private_key_jwt`.
//!
//! [`JwksCache::get`] answers from the cache while a set is fresh (5 minutes) and holds the
//! `kid` asked for; otherwise it fetches, at most once per URL per 10 seconds, so an assertion
//! with an unknown `kid` cannot make the simulator hammer a client's server. A failed fetch is
//! remembered for those 10 seconds too. Concurrent callers for one URL share one fetch.
//!
//! A fetch must finish within 5 seconds, answer 200, and carry at most 256 KiB of JSON shaped
//! `{"keys":[…]}`; keys that do not parse are skipped. Only `http` and `https` URLs are fetched.
//! [`JwksCache::cached`] gives the synchronous request handlers what the async layer fetched.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use jsonwebtoken::jwk::{Jwk, JwkSet};
use serde_json::Value;

/// Default time to live of a fetched set.
pub const DEFAULT_TTL: Duration = Duration::from_secs(300);
/// Default shortest time between two fetches of one URL.
pub const DEFAULT_MIN_REFETCH_INTERVAL: Duration = Duration::from_secs(10);
/// Default limit on a whole fetch: connecting, headers and body.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(5);
/// Default cap on a response body, in bytes.
pub const DEFAULT_MAX_BODY_BYTES: usize = 256 * 1024;

/// Why a JWKS could not be had. Messages name the URL and the cause.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum JwksError {
    /// The URL does not parse.
    #[error("jwks_uri {uri:?} is not a valid URL ({reason})")]
    BadUri {
        /// The URL.
        uri: String,
        /// The parser's reason.
        reason: String,
    },
    /// The URL's scheme is not `http` or `https`.
    #[error("jwks_uri {uri:?} uses scheme {scheme:?}; only http and https are fetched")]
    UnsupportedScheme {
        /// The URL.
        uri: String,
        /// Its scheme.
        scheme: String,
    },
    /// The request failed (connection refused, TLS, reset, …).
    #[error("failed to fetch jwks from {uri}: {cause}")]
    Request {
        /// The URL.
        uri: String,
        /// The cause, as a chain of messages.
        cause: String,
    },
    /// No complete answer in time.
    #[error("failed to fetch jwks from {uri}: no complete answer within {limit:?}")]
    Timeout {
        /// The URL.
        uri: String,
        /// The time limit.
        limit: Duration,
    },
    /// A status other than 200.
    #[error("failed to fetch jwks from {uri}: http status {status}, expected 200")]
    Status {
        /// The URL.
        uri: String,
        /// The status code.
        status: u16,
    },
    /// The body is over the cap.
    #[error("failed to fetch jwks from {uri}: the body is larger than {limit} bytes")]
    TooLarge {
        /// The URL.
        uri: String,
        /// The cap.
        limit: usize,
    },
    /// The body is not JSON.
    #[error("jwks from {uri} is not JSON ({cause})")]
    BadJson {
        /// The URL.
        uri: String,
        /// The parser's reason.
        cause: String,
    },
    /// The body is JSON but not `{"keys":[…]}`.
    #[error("jwks from {uri} is not a JSON object with a \"keys\" array")]
    NotAJwks {
        /// The URL.
        uri: String,
    },
    /// Not one key in the set could be read.
    #[error("jwks from {uri} has no usable keys ({skipped} could not be read)")]
    NoUsableKeys {
        /// The URL.
        uri: String,
        /// How many entries were skipped.
        skipped: usize,
    },
    /// The fetch was abandoned before it finished (its caller went away).
    #[error("failed to fetch jwks from {uri}: the fetch was interrupted")]
    Interrupted {
        /// The URL.
        uri: String,
    },
}

/// The cache's timings and limits.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct JwksCacheSettings {
    /// Limit on a whole fetch.
    pub timeout: Duration,
    /// How long a fetched set is fresh.
    pub ttl: Duration,
    /// Shortest time between two fetches of one URL.
    pub min_refetch_interval: Duration,
    /// Cap on a response body, in bytes.
    pub max_body_bytes: usize,
}

impl Default for JwksCacheSettings {
    fn default() -> Self {
        Self {
            timeout: DEFAULT_TIMEOUT,
            ttl: DEFAULT_TTL,
            min_refetch_interval: DEFAULT_MIN_REFETCH_INTERVAL,
            max_body_bytes: DEFAULT_MAX_BODY_BYTES,
        }
    }
}

/// What is known about one URL.
#[derive(Debug)]
struct Slot {
    /// The last set fetched, and when.
    fetched: Option<(JwkSet, Instant)>,
    /// When the last fetch started.
    last_attempt: Instant,
    /// Its outcome: `Ok` when it produced `fetched`; `Interrupted` until it finishes.
    last_outcome: Result<(), JwksError>,
}

/// Fetched client JWKS by URL. See the module docs.
#[derive(Debug)]
pub struct JwksCache {
    http: reqwest::Client,
    settings: JwksCacheSettings,
    slots: Mutex<HashMap<String, Slot>>,
    fetch_locks: Mutex<HashMap<String, Arc<tokio::sync::Mutex<()>>>>,
}

impl JwksCache {
    /// A cache fetching with `http`, with the default settings.
    pub fn new(http: reqwest::Client) -> Self {
        Self::with_settings(http, JwksCacheSettings::default())
    }

    /// A cache whose fetches give up after `timeout`.
    pub fn with_timeout(http: reqwest::Client, timeout: Duration) -> Self {
        Self::with_settings(
            http,
            JwksCacheSettings {
                timeout,
                ..JwksCacheSettings::default()
            },
        )
    }

    /// A cache with explicit settings.
    pub fn with_settings(http: reqwest::Client, settings: JwksCacheSettings) -> Self {
        Self {
            http,
            settings,
            slots: Mutex::new(HashMap::new()),
            fetch_locks: Mutex::new(HashMap::new()),
        }
    }

    /// The JWKS at `uri`: the cached set if fresh and holding `needed_kid` (when given),
    /// otherwise a new fetch, unless one started less than the refetch interval ago, in which
    /// case that fetch's outcome is returned (a set, possibly without `needed_kid`, or its error).
    pub async fn get(&self, uri: &str, needed_kid: Option<&str>) -> Result<JwkSet, JwksError> {
        check_uri(uri)?;
        if let Some(set) = self.fresh_set(uri, needed_kid) {
            return Ok(set);
        }
        let fetch_lock = self.fetch_lock(uri);
        let _one_fetch_at_a_time = fetch_lock.lock().await;
        // Another caller may have fetched while this one waited; with the lock held, no fetch
        // is in progress, so the last outcome is final.
        if let Some(answer) = self.answer_from_cache(uri, needed_kid) {
            return answer;
        }
        self.record_attempt(uri);
        let result = self.fetch(uri).await;
        self.record_outcome(uri, &result);
        result
    }

    /// The fresh cached set for `uri`, if any, without fetching.
    pub fn cached(&self, uri: &str) -> Option<JwkSet> {
        self.fresh_set(uri, None)
    }

    /// Forgets `uri`, so the next [`get`](Self::get) fetches it (e.g. after a reset).
    pub fn invalidate(&self, uri: &str) {
        let mut slots = self.slots.lock().unwrap_or_else(PoisonError::into_inner);
        slots.remove(uri);
    }

    /// The cached set, if fresh and holding `needed_kid` (when given).
    fn fresh_set(&self, uri: &str, needed_kid: Option<&str>) -> Option<JwkSet> {
        let slots = self.slots.lock().unwrap_or_else(PoisonError::into_inner);
        let (set, _) = self.fresh(slots.get(uri)?)?;
        needed_kid
            .is_none_or(|kid| set.find(kid).is_some())
            .then(|| set.clone())
    }

    fn fresh<'s>(&self, slot: &'s Slot) -> Option<&'s (JwkSet, Instant)> {
        let fetched = slot.fetched.as_ref()?;
        (fetched.1.elapsed() < self.settings.ttl).then_some(fetched)
    }

    /// `Some` when the cache alone can answer: a fresh set with the key, or the outcome of a
    /// fetch too recent to repeat. Call it with the URL's fetch lock held.
    fn answer_from_cache(
        &self,
        uri: &str,
        needed_kid: Option<&str>,
    ) -> Option<Result<JwkSet, JwksError>> {
        if let Some(set) = self.fresh_set(uri, needed_kid) {
            return Some(Ok(set));
        }
        let slots = self.slots.lock().unwrap_or_else(PoisonError::into_inner);
        let slot = slots.get(uri)?;
        if slot.last_attempt.elapsed() >= self.settings.min_refetch_interval {
            return None;
        }
        match (&slot.last_outcome, self.fresh(slot)) {
            (Err(e), _) => Some(Err(e.clone())),
            (Ok(()), Some((set, _))) => Some(Ok(set.clone())),
            (Ok(()), None) => None,
        }
    }

    fn fetch_lock(&self, uri: &str) -> Arc<tokio::sync::Mutex<()>> {
        let mut locks = self
            .fetch_locks
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        Arc::clone(locks.entry(uri.to_string()).or_default())
    }

    /// Marks a fetch as started; until it finishes its outcome reads as interrupted.
    fn record_attempt(&self, uri: &str) {
        let mut slots = self.slots.lock().unwrap_or_else(PoisonError::into_inner);
        let interrupted = Err(JwksError::Interrupted {
            uri: uri.to_string(),
        });
        let now = Instant::now();
        slots
            .entry(uri.to_string())
            .and_modify(|slot| {
                slot.last_attempt = now;
                slot.last_outcome = interrupted.clone();
            })
            .or_insert_with(|| Slot {
                fetched: None,
                last_attempt: now,
                last_outcome: interrupted.clone(),
            });
    }

    fn record_outcome(&self, uri: &str, result: &Result<JwkSet, JwksError>) {
        let mut slots = self.slots.lock().unwrap_or_else(PoisonError::into_inner);
        let Some(slot) = slots.get_mut(uri) else {
            return;
        };
        match result {
            Ok(set) => {
                slot.fetched = Some((set.clone(), Instant::now()));
                slot.last_outcome = Ok(());
            }
            Err(e) => slot.last_outcome = Err(e.clone()),
        }
    }

    async fn fetch(&self, uri: &str) -> Result<JwkSet, JwksError> {
        let limit = self.settings.timeout;
        match tokio::time::timeout(limit, self.fetch_body(uri)).await {
            Ok(body) => parse_body(uri, &body?),
            Err(_) => Err(JwksError::Timeout {
                uri: uri.to_string(),
                limit,
            }),
        }
    }

    async fn fetch_body(&self, uri: &str) -> Result<Vec<u8>, JwksError> {
        let request_error = |e: reqwest::Error| self.request_error(uri, &e);
        let mut response = self
            .http
            .get(uri)
            .header(
                reqwest::header::ACCEPT,
                "application/jwk-set+json, application/json",
            )
            .timeout(self.settings.timeout)
            .send()
            .await
            .map_err(request_error)?;
        if response.status() != reqwest::StatusCode::OK {
            return Err(JwksError::Status {
                uri: uri.to_string(),
                status: response.status().as_u16(),
            });
        }
        let limit = self.settings.max_body_bytes;
        let too_large = || JwksError::TooLarge {
            uri: uri.to_string(),
            limit,
        };
        if response
            .content_length()
            .is_some_and(|len| len > limit as u64)
        {
            return Err(too_large());
        }
        let mut body = Vec::new();
        while let Some(chunk) = response.chunk().await.map_err(request_error)? {
            if body.len() + chunk.len() > limit {
                return Err(too_large());
            }
            body.extend_from_slice(&chunk);
        }
        Ok(body)
    }

    fn request_error(&self, uri: &str, e: &reqwest::Error) -> JwksError {
        if e.is_timeout() {
            return JwksError::Timeout {
                uri: uri.to_string(),
                limit: self.settings.timeout,
            };
        }
        JwksError::Request {
            uri: uri.to_string(),
            cause: error_chain(e),
        }
    }
}

/// Refuses URLs that do not parse or are not `http`/`https`.
fn check_uri(uri: &str) -> Result<(), JwksError> {
    let url = reqwest::Url::parse(uri).map_err(|e| JwksError::BadUri {
        uri: uri.to_string(),
        reason: e.to_string(),
    })?;
    match url.scheme() {
        "http" | "https" => Ok(()),
        other => Err(JwksError::UnsupportedScheme {
            uri: uri.to_string(),
            scheme: other.to_string(),
        }),
    }
}

/// An error and its sources, joined with ": ".
fn error_chain(e: &(dyn std::error::Error + 'static)) -> String {
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(cause) = source {
        let more = cause.to_string();
        if !text.contains(&more) {
            text.push_str(": ");
            text.push_str(&more);
        }
        source = cause.source();
    }
    text
}

fn parse_body(uri: &str, body: &[u8]) -> Result<JwkSet, JwksError> {
    let value: Value = serde_json::from_slice(body).map_err(|e| JwksError::BadJson {
        uri: uri.to_string(),
        cause: e.to_string(),
    })?;
    let (set, skipped) = jwk_set_from_json(&value).ok_or_else(|| JwksError::NotAJwks {
        uri: uri.to_string(),
    })?;
    if set.keys.is_empty() {
        return Err(JwksError::NoUsableKeys {
            uri: uri.to_string(),
            skipped,
        });
    }
    Ok(set)
}

/// Reads `{"keys":[…]}` leniently: entries that are not a JWK jsonwebtoken understands are
/// skipped and counted. `None` when `value` is not an object with a `keys` array.
pub fn jwk_set_from_json(value: &Value) -> Option<(JwkSet, usize)> {
    let entries = value.as_object()?.get("keys")?.as_array()?;
    let keys: Vec<Jwk> = entries
        .iter()
        .filter_map(|entry| serde_json::from_value(entry.clone()).ok())
        .collect();
    let skipped = entries.len() - keys.len();
    Some((JwkSet { keys }, skipped))
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicUsize, Ordering};

    use serde_json::json;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    use tokio::net::{TcpListener, TcpStream};

    use super::super::keys::{ClientAlg, ClientKey};
    use super::*;

    /// A local server and how many connections it has taken.
    struct Server {
        url: String,
        hits: Arc<AtomicUsize>,
    }

    impl Server {
        fn hits(&self) -> usize {
            self.hits.load(Ordering::SeqCst)
        }
    }

    /// A server answering every request with the raw HTTP `response`, then closing.
    async fn serve(response: Vec<u8>) -> Server {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}/jwks.json", listener.local_addr().unwrap());
        let hits = Arc::new(AtomicUsize::new(0));
        let counter = Arc::clone(&hits);
        tokio::spawn(async move {
            while let Ok((mut socket, _)) = listener.accept().await {
                counter.fetch_add(1, Ordering::SeqCst);
                let response = response.clone();
                tokio::spawn(async move {
                    read_request_head(&mut socket).await;
                    let _ = socket.write_all(&response).await;
                    let _ = socket.shutdown().await;
                });
            }
        });
        Server { url, hits }
    }

    async fn read_request_head(socket: &mut TcpStream) {
        let mut head = Vec::new();
        let mut chunk = [0u8; 1024];
        while !head.windows(4).any(|w| w == b"\r\n\r\n") {
            match socket.read(&mut chunk).await {
                Ok(0) | Err(_) => return,
                Ok(n) => head.extend_from_slice(&chunk[..n]),
            }
        }
    }

    /// A server that accepts connections and never answers.
    async fn serve_silence() -> String {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}/jwks.json", listener.local_addr().unwrap());
        tokio::spawn(async move {
            let mut held = Vec::new();
            while let Ok((socket, _)) = listener.accept().await {
                held.push(socket);
            }
        });
        url
    }

    fn response(status: &str, body: &[u8], with_length: bool) -> Vec<u8> {
        let length = if with_length {
            format!("content-length: {}\r\n", body.len())
        } else {
            String::new()
        };
        let head = format!(
            "HTTP/1.1 {status}\r\ncontent-type: application/json\r\n{length}connection: close\r\n\r\n"
        );
        [head.as_bytes(), body].concat()
    }

    fn key() -> ClientKey {
        ClientKey::generate(ClientAlg::Es384).unwrap()
    }

    /// A JWKS with `key` and one entry no JWK parser understands.
    fn jwks_body(key: &ClientKey) -> Vec<u8> {
        json!({"keys": [{"kty": "nope"}, key.public_jwk()]})
            .to_string()
            .into_bytes()
    }

    fn http() -> reqwest::Client {
        reqwest::Client::builder().no_proxy().build().unwrap()
    }

    fn eager(ttl: Duration) -> JwksCache {
        JwksCache::with_settings(
            http(),
            JwksCacheSettings {
                ttl,
                min_refetch_interval: Duration::ZERO,
                ..JwksCacheSettings::default()
            },
        )
    }

    #[tokio::test]
    async fn fetched_sets_are_cached() {
        let key = key();
        let server = serve(response("200 OK", &jwks_body(&key), true)).await;
        let cache = JwksCache::new(http());
        assert_eq!(cache.cached(&server.url), None);
        let set = cache.get(&server.url, Some(key.kid())).await.unwrap();
        assert_eq!(set.keys.len(), 1, "the unreadable entry is skipped");
        assert!(set.find(key.kid()).is_some());
        assert_eq!(cache.get(&server.url, None).await.unwrap(), set);
        assert_eq!(cache.get(&server.url, Some(key.kid())).await.unwrap(), set);
        assert_eq!(server.hits(), 1);
        assert_eq!(cache.cached(&server.url), Some(set));
        cache.invalidate(&server.url);
        assert_eq!(cache.cached(&server.url), None);
    }

    #[tokio::test]
    async fn an_unknown_kid_refetches_at_most_once_per_interval() {
        let key = key();
        let server = serve(response("200 OK", &jwks_body(&key), true)).await;
        let cache = JwksCache::new(http());
        cache.get(&server.url, None).await.unwrap();
        let set = cache.get(&server.url, Some("rotated-in")).await.unwrap();
        assert!(set.find("rotated-in").is_none());
        assert_eq!(server.hits(), 1, "fetched less than 10 s ago");

        let eager = eager(DEFAULT_TTL);
        eager.get(&server.url, None).await.unwrap();
        eager.get(&server.url, Some("rotated-in")).await.unwrap();
        assert_eq!(server.hits(), 3);
    }

    #[tokio::test]
    async fn stale_sets_are_refetched() {
        let key = key();
        let server = serve(response("200 OK", &jwks_body(&key), true)).await;
        let cache = eager(Duration::ZERO);
        cache.get(&server.url, None).await.unwrap();
        cache.get(&server.url, None).await.unwrap();
        assert_eq!(server.hits(), 2);
        assert_eq!(cache.cached(&server.url), None);
    }

    #[tokio::test]
    async fn concurrent_callers_share_one_fetch() {
        let key = key();
        let server = serve(response("200 OK", &jwks_body(&key), true)).await;
        let cache = JwksCache::new(http());
        let (a, b, c) = tokio::join!(
            cache.get(&server.url, Some("x")),
            cache.get(&server.url, Some("y")),
            cache.get(&server.url, None)
        );
        assert!(a.is_ok() && b.is_ok() && c.is_ok());
        assert_eq!(server.hits(), 1);
    }

    #[tokio::test]
    async fn oversized_bodies_are_refused() {
        let big = vec![b' '; DEFAULT_MAX_BODY_BYTES + 1];
        for with_length in [true, false] {
            let server = serve(response("200 OK", &big, with_length)).await;
            let err = JwksCache::new(http())
                .get(&server.url, None)
                .await
                .unwrap_err();
            assert_eq!(
                err.to_string(),
                format!(
                    "failed to fetch jwks from {}: the body is larger than 262144 bytes",
                    server.url
                )
            );
        }
    }

    #[tokio::test]
    async fn other_statuses_are_refused_and_remembered() {
        let server = serve(response("404 Not Found", b"{}", true)).await;
        let cache = JwksCache::new(http());
        let err = cache.get(&server.url, None).await.unwrap_err();
        assert_eq!(
            err.to_string(),
            format!(
                "failed to fetch jwks from {}: http status 404, expected 200",
                server.url
            )
        );
        assert_eq!(cache.get(&server.url, None).await.unwrap_err(), err);
        assert_eq!(server.hits(), 1, "a failure is not retried within 10 s");
    }

    #[tokio::test]
    async fn bodies_that_are_not_a_jwks_are_refused() {
        let cases: [(&[u8], &str); 3] = [
            (
                b"not json",
                "is not JSON (expected ident at line 1 column 2)",
            ),
            (
                b"{\"nokeys\": []}",
                "is not a JSON object with a \"keys\" array",
            ),
            (
                b"{\"keys\": [{\"kty\": \"nope\"}]}",
                "has no usable keys (1 could not be read)",
            ),
        ];
        for (body, want) in cases {
            let server = serve(response("200 OK", body, true)).await;
            let err = JwksCache::new(http())
                .get(&server.url, None)
                .await
                .unwrap_err();
            assert_eq!(err.to_string(), format!("jwks from {} {want}", server.url));
        }
    }

    #[tokio::test]
    async fn silent_servers_time_out() {
        let url = serve_silence().await;
        let cache = JwksCache::with_timeout(http(), Duration::from_millis(200));
        let started = Instant::now();
        let err = cache.get(&url, None).await.unwrap_err();
        assert_eq!(
            err,
            JwksError::Timeout {
                uri: url.clone(),
                limit: Duration::from_millis(200)
            }
        );
        assert_eq!(
            err.to_string(),
            format!("failed to fetch jwks from {url}: no complete answer within 200ms")
        );
        assert!(started.elapsed() < Duration::from_secs(3));
    }

    #[tokio::test]
    async fn unreachable_servers_are_named() {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let url = format!("http://{}/jwks.json", listener.local_addr().unwrap());
        drop(listener);
        let err = JwksCache::new(http()).get(&url, None).await.unwrap_err();
        assert!(
            matches!(&err, JwksError::Request { uri, .. } if *uri == url),
            "{err}"
        );
        assert!(
            err.to_string()
                .starts_with(&format!("failed to fetch jwks from {url}: "))
        );
    }

    #[tokio::test]
    async fn only_http_and_https_urls_are_fetched() {
        let cache = JwksCache::new(http());
        assert_eq!(
            cache
                .get("file:///etc/passwd", None)
                .await
                .unwrap_err()
                .to_string(),
            "jwks_uri \"file:///etc/passwd\" uses scheme \"file\"; only http and https are fetched"
        );
        let err = cache.get("not a url", None).await.unwrap_err();
        assert!(matches!(err, JwksError::BadUri { .. }), "{err}");
    }

    #[test]
    fn lenient_parsing_skips_unreadable_keys() {
        let key = key();
        let value: Value = serde_json::from_slice(&jwks_body(&key)).unwrap();
        let (set, skipped) = jwk_set_from_json(&value).unwrap();
        assert_eq!((set.keys.len(), skipped), (1, 1));
        assert!(jwk_set_from_json(&json!([1])).is_none());
        assert!(jwk_set_from_json(&json!({"keys": {}})).is_none());
    }
}

//! The HTTP server: a tokio accept loop that serves warp filters through hyper-util, so it can
//! own what warp's built-in server does not: a bind error that names the address, a header-read
//! timeout (slow clients), a connection cap, a request-body cap that also covers chunked bodies,
//! a body-read timeout, panic isolation, and graceful shutdown.

use std::future::Future;
use std::net::SocketAddr;
use std::panic::AssertUnwindSafe;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::{Buf, BufMut, Bytes, BytesMut};
use futures_util::{Stream, StreamExt};
use http::{HeaderMap, Method};
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto::Builder;
use hyper_util::server::graceful::GracefulShutdown;
use tokio::net::TcpListener;
use tokio::sync::Semaphore;
use warp::Filter;
use warp::filters::path::FullPath;

use crate::Simulator;
use crate::outcome::{FhirError, IssueType};
use crate::request::{SimRequest, SimResponse, parse_query, percent_decode};

/// Limits that protect the server from slow, large or many clients.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// Largest request body accepted (413 above it).
    pub max_body_bytes: usize,
    /// Time allowed to send request headers.
    pub header_read_timeout: Duration,
    /// Time allowed to send the request body.
    pub body_read_timeout: Duration,
    /// Most connections served at once; further ones are closed at once.
    pub max_connections: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            max_body_bytes: crate::config::DEFAULT_MAX_BODY_BYTES,
            header_read_timeout: Duration::from_secs(10),
            body_read_timeout: Duration::from_secs(30),
            max_connections: 1024,
        }
    }
}

/// Why the server could not start or stopped.
#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    /// The address could not be bound.
    #[error(
        "cannot listen on {addr}: {source} (is another server using that port? pick another with --listen, or port 0 for any free port)"
    )]
    Bind {
        /// The address.
        addr: SocketAddr,
        /// The cause.
        source: std::io::Error,
    },
}

/// The peer address of a connection, passed to the filters as a request extension.
#[derive(Debug, Clone, Copy)]
struct Peer(SocketAddr);

/// Binds the listener (port 0 picks a free port; read it back with `local_addr`).
pub async fn bind(addr: SocketAddr) -> Result<TcpListener, ServeError> {
    TcpListener::bind(addr)
        .await
        .map_err(|source| ServeError::Bind { addr, source })
}

/// Serves `sim` on `listener` until `shutdown` completes, then lets open requests finish
/// (for up to five seconds).
pub async fn serve(
    listener: TcpListener,
    sim: Arc<Simulator>,
    limits: Limits,
    shutdown: impl Future<Output = ()>,
) -> Result<(), ServeError> {
    let filter = routes(sim, limits);
    let graceful = GracefulShutdown::new();
    let connections = Arc::new(Semaphore::new(limits.max_connections));
    let mut builder = Builder::new(TokioExecutor::new());
    builder
        .http1()
        .timer(TokioTimer::new())
        .header_read_timeout(limits.header_read_timeout);
    tokio::pin!(shutdown);
    loop {
        let (stream, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(pair) => pair,
                Err(error) => {
                    // Usually too many open files: back off instead of spinning.
                    tracing::warn!(%error, "accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
            () = &mut shutdown => break,
        };
        let Ok(permit) = Arc::clone(&connections).try_acquire_owned() else {
            tracing::warn!(%peer, "connection refused: at the connection limit");
            continue;
        };
        let service = warp::service(filter.clone());
        let hyper_service =
            hyper::service::service_fn(move |mut req: http::Request<hyper::body::Incoming>| {
                req.extensions_mut().insert(Peer(peer));
                let mut service = service.clone();
                tower_service::Service::call(&mut service, req)
            });
        let connection = builder
            .serve_connection(TokioIo::new(stream), hyper_service)
            .into_owned();
        let watched = graceful.watch(connection);
        tokio::spawn(async move {
            if let Err(error) = watched.await {
                tracing::debug!(%error, "connection ended with an error");
            }
            drop(permit);
        });
    }
    drop(listener);
    if tokio::time::timeout(Duration::from_secs(5), graceful.shutdown())
        .await
        .is_err()
    {
        tracing::warn!("some connections were still open after 5 s and were closed");
    }
    Ok(())
}

/// One catch-all filter: it gathers the request into a [`SimRequest`]; all routing is ours.
fn routes(
    sim: Arc<Simulator>,
    limits: Limits,
) -> impl Filter<Extract = (http::Response<Vec<u8>>,), Error = warp::Rejection>
+ Clone
+ Send
+ Sync
+ 'static {
    warp::method()
        .and(warp::path::full())
        .and(warp::query::raw().or(warp::any().map(String::new)).unify())
        .and(warp::header::headers_cloned())
        .and(warp::ext::optional::<Peer>())
        .and(warp::body::stream())
        .then(
            move |method: Method,
                  path: FullPath,
                  query: String,
                  headers: HeaderMap,
                  peer: Option<Peer>,
                  body| {
                let sim = Arc::clone(&sim);
                async move {
                    let response = respond(
                        sim,
                        limits,
                        method,
                        path.as_str(),
                        &query,
                        headers,
                        peer,
                        body,
                    )
                    .await;
                    into_http(response)
                }
            },
        )
}

#[expect(
    clippy::too_many_arguments,
    reason = "the parts of one request, gathered by the filter"
)]
async fn respond<S, B>(
    sim: Arc<Simulator>,
    limits: Limits,
    method: Method,
    path: &str,
    query: &str,
    headers: HeaderMap,
    peer: Option<Peer>,
    body: S,
) -> SimResponse
where
    S: Stream<Item = Result<B, warp::Error>> + Unpin,
    B: Buf,
{
    let decision = sim.behaviour().faults_for(path);
    if !decision.latency.is_zero() {
        tokio::time::sleep(decision.latency).await;
    }
    if let Some(status) = decision.fail_with {
        let error = FhirError::new(
            status,
            IssueType::Exception,
            format!("injected fault: this route is configured to fail with {status}"),
        );
        return SimResponse::error(&error, false);
    }
    let limited = sim.behaviour().rate_limit().is_some();
    let admitted = if limited {
        sim.behaviour()
            .admit(&client_key(&headers, peer), Instant::now())
    } else {
        Ok(())
    };
    if let Err(seconds) = admitted {
        let error = FhirError::new(
            429,
            IssueType::Throttled,
            format!("rate limit exceeded: retry after {seconds} s"),
        );
        return SimResponse::error(&error, false).with_header("retry-after", seconds.to_string());
    }
    let body = match read_body(body, &headers, limits).await {
        Ok(bytes) => bytes,
        Err(error) => return SimResponse::error(&error, false),
    };
    let request = SimRequest {
        method,
        path: percent_decode(path),
        query: parse_query(query),
        headers,
        body,
        peer: peer.map(|p| p.0),
    };
    // Timed only when the access log is on: the clock read is not free at 50,000 requests/s.
    let started = tracing::enabled!(tracing::Level::DEBUG).then(Instant::now);
    sim.prepare(&request).await;
    // A bug in one handler must not take the server down: it becomes a 500 OperationOutcome.
    let response = std::panic::catch_unwind(AssertUnwindSafe(|| sim.handle(&request)))
        .unwrap_or_else(|_| {
            let error = FhirError::new(
                500,
                IssueType::Exception,
                "internal error while handling this request; it has been logged",
            );
            tracing::error!(route = %route_template(&request.path), "handler panicked");
            SimResponse::error(&error, false)
        });
    tracing::debug!(
        method = %request.method,
        route = %route_template(&request.path),
        status = response.status,
        micros = started.map_or(0, |t| t.elapsed().as_micros() as u64),
        "request"
    );
    response
}

/// Path segments that are safe to log as they are: everything else (ids, which a client may
/// have filled with an MRN or a name) is logged as `{id}`. Query strings are never logged.
const LOGGABLE_SEGMENTS: &[&str] = &[
    "fhir",
    "_sim",
    "_history",
    "_search",
    "_bulk",
    "metadata",
    "$everything",
    "$export",
    "health",
    "reset",
];

/// The request path with every segment that could carry identifying data masked, so the access
/// log never holds PHI (fhirdrill preaches this; it must practice it).
pub fn route_template(path: &str) -> String {
    let segments = || path.split('/').filter(|s| !s.is_empty());
    let environment_first = segments().nth(1) == Some("fhir");
    let mut route = String::with_capacity(path.len() + 8);
    for (i, segment) in segments().enumerate() {
        let is_environment = i == 0 && environment_first;
        let is_type = crate::rest::types::is_storable_type(segment);
        route.push('/');
        if is_environment || is_type || LOGGABLE_SEGMENTS.contains(&segment) {
            route.push_str(segment);
        } else {
            route.push_str("{id}");
        }
    }
    if route.is_empty() {
        route.push('/');
    }
    route
}

/// Who the rate limiter counts a request against: its credentials, else its address.
fn client_key(headers: &HeaderMap, peer: Option<Peer>) -> String {
    match headers.get("authorization").and_then(|v| v.to_str().ok()) {
        Some(credentials) => format!("auth:{credentials}"),
        None => peer.map_or_else(|| "unknown".to_string(), |p| format!("ip:{}", p.0.ip())),
    }
}

/// Reads the body up to the size limit (chunked bodies included) within the read timeout.
async fn read_body<S, B>(
    mut body: S,
    headers: &HeaderMap,
    limits: Limits,
) -> Result<Bytes, FhirError>
where
    S: Stream<Item = Result<B, warp::Error>> + Unpin,
    B: Buf,
{
    let too_large = || {
        FhirError::new(
            413,
            IssueType::TooCostly,
            format!(
                "the request body is larger than the {} byte limit",
                limits.max_body_bytes
            ),
        )
    };
    let declared = headers
        .get("content-length")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<usize>().ok());
    if declared.is_some_and(|n| n > limits.max_body_bytes) {
        return Err(too_large());
    }
    let read = async {
        let mut buffer = BytesMut::new();
        while let Some(chunk) = body.next().await {
            let chunk = chunk.map_err(|e| {
                FhirError::bad_request(format!("the request body could not be read: {e}"))
            })?;
            if buffer.len() + chunk.remaining() > limits.max_body_bytes {
                return Err(too_large());
            }
            buffer.put(chunk);
        }
        Ok(buffer.freeze())
    };
    tokio::time::timeout(limits.body_read_timeout, read)
        .await
        .unwrap_or_else(|_| {
            Err(FhirError::new(
                408,
                IssueType::TooCostly,
                "the request body was not received in time",
            ))
        })
}

fn into_http(response: SimResponse) -> http::Response<Vec<u8>> {
    let mut builder = http::Response::builder().status(response.status);
    for (name, value) in &response.headers {
        builder = builder.header(name.as_str(), value.as_str());
    }
    builder.body(response.body).unwrap_or_else(|_| {
        let mut fallback = http::Response::new(Vec::new());
        *fallback.status_mut() = http::StatusCode::INTERNAL_SERVER_ERROR;
        fallback
    })
}

/// A future that resolves when the process receives Ctrl-C (or SIGTERM on Unix). The signal
/// handlers are installed when this is called, not when the future is first polled, so a
/// signal that arrives while the server is still printing its banner is not lost. Call it
/// inside the runtime.
#[cfg(unix)]
pub fn shutdown_signal() -> impl std::future::Future<Output = ()> {
    use tokio::signal::unix::{SignalKind, signal};
    let interrupt = signal(SignalKind::interrupt()).ok();
    let terminate = signal(SignalKind::terminate()).ok();
    async move {
        let wait = |s: Option<tokio::signal::unix::Signal>| async move {
            match s {
                Some(mut s) => {
                    s.recv().await;
                }
                None => std::future::pending::<()>().await,
            }
        };
        tokio::select! {
            () = wait(interrupt) => {},
            () = wait(terminate) => {},
        }
    }
}

/// A future that resolves when the process receives Ctrl-C.
#[cfg(not(unix))]
pub fn shutdown_signal() -> impl std::future::Future<Output = ()> {
    async {
        let _ = tokio::signal::ctrl_c().await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn chunked_bodies_over_the_limit_are_refused() {
        let limits = Limits {
            max_body_bytes: 1000,
            ..Limits::default()
        };
        let chunks = |n: usize| {
            futures_util::stream::iter(
                (0..n).map(|_| Ok::<_, warp::Error>(Bytes::from(vec![b'x'; 400]))),
            )
        };
        let refused = read_body(chunks(3), &HeaderMap::new(), limits).await;
        assert_eq!(refused.map(|b| b.len()).map_err(|e| e.status), Err(413));
        let accepted = read_body(chunks(2), &HeaderMap::new(), limits).await;
        assert_eq!(accepted.map(|b| b.len()).map_err(|e| e.status), Ok(800));
    }

    #[test]
    fn route_templates_mask_ids() {
        assert_eq!(
            route_template("/sandbox/fhir/Patient/MRN123456789"),
            "/sandbox/fhir/Patient/{id}"
        );
        assert_eq!(
            route_template("/sandbox/fhir/Patient/p1/_history/2"),
            "/sandbox/fhir/Patient/{id}/_history/{id}"
        );
        assert_eq!(
            route_template("/sandbox/fhir/Patient/p1/$everything"),
            "/sandbox/fhir/Patient/{id}/$everything"
        );
        assert_eq!(route_template("/_sim/health"), "/_sim/health");
        assert_eq!(route_template("/John Smith/x"), "/{id}/{id}");
    }
}

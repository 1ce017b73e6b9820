//! The request log (JSON lines, no PHI: route templates, never ids or query strings) and
//! optional fire-and-forget analytics events.

use std::io::Write;
use std::path::Path;
use std::sync::Mutex;

use serde_json::json;

use crate::AppError;

/// The route template of a request path: ids are replaced by `{id}`, unknown paths are
/// `(unknown)`, so nothing a client sends in the path reaches the log.
pub fn route_template(path: &str) -> &'static str {
    let segments: Vec<&str> = path.split('/').filter(|s| !s.is_empty()).collect();
    match segments.as_slice() {
        [] => "/",
        ["login"] => "/login",
        ["launch"] => "/launch",
        ["callback"] => "/callback",
        ["api", "me"] => "/api/me",
        ["api", "patients", _] => "/api/patients/{id}",
        ["api", "patients", _, "labs"] => "/api/patients/{id}/labs",
        ["api", "patients", _, "medications"] => "/api/patients/{id}/medications",
        ["api", "observations"] => "/api/observations",
        ["internal", "jobs", "sync"] => "/internal/jobs/sync",
        _ => "(unknown)",
    }
}

/// The JSON-lines request log (a file, or nowhere).
#[derive(Debug)]
pub(crate) struct RequestLog {
    file: Option<Mutex<std::fs::File>>,
}

impl RequestLog {
    /// Appends to `path` (created if missing), or logs nothing.
    pub(crate) fn open(path: Option<&Path>) -> Result<Self, AppError> {
        let file = match path {
            Some(path) => Some(Mutex::new(
                std::fs::OpenOptions::new()
                    .create(true)
                    .append(true)
                    .open(path)
                    .map_err(|e| {
                        AppError::Config(format!(
                            "cannot open the log file {}: {e}",
                            path.display()
                        ))
                    })?,
            )),
            None => None,
        };
        Ok(Self { file })
    }

    /// One line: time, method, route template, status, persona.
    pub(crate) fn request(&self, method: &str, path: &str, status: u16, persona: &str) {
        let Some(file) = &self.file else { return };
        let line = json!({
            "time": now_rfc3339(),
            "method": method,
            "route": route_template(path),
            "status": status,
            "persona": persona,
        });
        let mut file = file.lock().unwrap_or_else(|p| p.into_inner());
        // A log that cannot be written must not fail the request.
        let _ = writeln!(file, "{line}");
    }
}

/// The current time as RFC 3339.
pub(crate) fn now_rfc3339() -> String {
    time::OffsetDateTime::now_utc()
        .format(&time::format_description::well_known::Rfc3339)
        .unwrap_or_default()
}

/// Posts `{"event": name, "at": now}` to the analytics URL without waiting; failures are
/// ignored. Event names never carry PHI.
pub(crate) fn analytics(http: &reqwest::Client, url: Option<&str>, event: &'static str) {
    let Some(url) = url else { return };
    let request = http
        .post(url)
        .json(&json!({"event": event, "at": now_rfc3339()}));
    tokio::spawn(async move {
        let _ = request.send().await;
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_never_reach_the_route() {
        assert_eq!(route_template("/"), "/");
        assert_eq!(
            route_template("/api/patients/abc-123"),
            "/api/patients/{id}"
        );
        assert_eq!(
            route_template("/api/patients/abc/labs"),
            "/api/patients/{id}/labs"
        );
        assert_eq!(
            route_template("/api/patients/abc/medications"),
            "/api/patients/{id}/medications"
        );
        assert_eq!(route_template("/api/observations"), "/api/observations");
        assert_eq!(route_template("/internal/jobs/sync"), "/internal/jobs/sync");
        assert_eq!(route_template("/api/patients/Jane%20Doe/x"), "(unknown)");
        assert_eq!(route_template("/MRN12345"), "(unknown)");
    }

    #[test]
    fn lines_are_json_without_ids() {
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().join("app.log");
        let log = RequestLog::open(Some(&path)).expect("open");
        log.request("GET", "/api/patients/secret-id-42", 403, "patient");
        let text = std::fs::read_to_string(&path).expect("read");
        assert!(!text.contains("secret-id-42"));
        let line: serde_json::Value = serde_json::from_str(text.trim()).expect("json");
        assert_eq!(line["route"], "/api/patients/{id}");
        assert_eq!(line["status"], 403);
        assert_eq!(line["persona"], "patient");
    }
}

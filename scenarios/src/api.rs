//! What a scenario is and what it reports: [`ScenarioMeta`] (the one source for
//! `fhirdrill scenarios list`, SARIF rules and docs), the [`Scenario`] trait, and [`Finding`].

use std::fmt;

use serde::Serialize;
use sha2::{Digest, Sha256};

use crate::cx::{AccessEntry, Exchange, ScenarioCx};
use crate::mask::{Masked, Masker};

/// How bad a finding is. Ordered: `Info < Low < Medium < High < Critical`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    /// Worth knowing; not a weakness by itself.
    Info,
    /// A weakness with little direct impact.
    Low,
    /// A weakness that widens what a breach exposes (e.g. unneeded scopes).
    Medium,
    /// A weakness that exposes patient data or hides who accessed it.
    High,
    /// Direct exposure of other patients' data.
    Critical,
}

impl Severity {
    /// Every severity, lowest first.
    pub const ALL: [Severity; 5] = [
        Severity::Info,
        Severity::Low,
        Severity::Medium,
        Severity::High,
        Severity::Critical,
    ];

    /// The lower-case name (`high`).
    pub fn as_str(self) -> &'static str {
        match self {
            Severity::Info => "info",
            Severity::Low => "low",
            Severity::Medium => "medium",
            Severity::High => "high",
            Severity::Critical => "critical",
        }
    }

    /// The severity named `name` (`low`, `medium`, `high`, `critical`, `info`).
    pub fn parse(name: &str) -> Option<Severity> {
        Severity::ALL
            .into_iter()
            .find(|s| s.as_str().eq_ignore_ascii_case(name))
    }
}

impl fmt::Display for Severity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A control a scenario checks: the rule an integration breaks when the scenario fails.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Control {
    /// A HIPAA rule, by its 45 CFR section (e.g. `164.502(b)`).
    Hipaa(&'static str),
    /// A section of the SMART App Launch guide (e.g. `App protection`).
    SmartAppLaunch(&'static str),
    /// An OWASP API Security Top 10 (2023) item (e.g. `API1:2023`).
    OwaspApi(&'static str),
    /// A CWE number.
    Cwe(u32),
}

impl Control {
    /// How a reader sees it: `45 CFR 164.502(b)`, `OWASP API1:2023`, `CWE-639`.
    pub fn label(&self) -> String {
        match self {
            Control::Hipaa(section) => format!("45 CFR {section}"),
            Control::SmartAppLaunch(section) => format!("SMART App Launch: {section}"),
            Control::OwaspApi(item) => format!("OWASP {item}"),
            Control::Cwe(n) => format!("CWE-{n}"),
        }
    }

    /// A tag for code-scanning tools: `HIPAA-164.502(b)`, `OWASP-API1:2023`, `CWE-639`, `SMART`.
    pub fn tag(&self) -> String {
        match self {
            Control::Hipaa(section) => format!("HIPAA-{section}"),
            Control::SmartAppLaunch(_) => "SMART-App-Launch".to_string(),
            Control::OwaspApi(item) => format!("OWASP-{item}"),
            Control::Cwe(n) => format!("CWE-{n}"),
        }
    }
}

impl Serialize for Control {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.label())
    }
}

/// Something a scenario needs from the target; without it the scenario is skipped, saying so.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Capability {
    /// A patient can sign in to the app (standalone launch) and get a session.
    PatientLogin,
    /// A clinician can open the app from the EHR (EHR launch) and get a session.
    PractitionerLogin,
    /// The app's own API, with endpoints that take patient identifiers.
    AppApi,
    /// A FHIR endpoint to attack directly (the simulator itself, or the app's own FHIR API).
    FhirEndpoint,
    /// The app's SMART Backend Services client(s).
    BackendServices,
}

impl Capability {
    /// What the target file must declare for it.
    pub fn describe(self) -> &'static str {
        match self {
            Capability::PatientLogin => "a patient login ([login] with a patient client)",
            Capability::PractitionerLogin => "a clinician EHR launch ([login] launch_url)",
            Capability::AppApi => "app API endpoints ([[endpoints]])",
            Capability::FhirEndpoint => "a FHIR endpoint to attack ([fhir])",
            Capability::BackendServices => "the app's backend client ([backend] client_id)",
        }
    }
}

/// The catalog entry of a scenario.
#[derive(Debug, Serialize)]
pub struct ScenarioMeta {
    /// Permanent id, `family.name`.
    pub id: &'static str,
    /// One line.
    pub title: &'static str,
    /// The attack family (`cross-patient`, `scope`…).
    pub family: &'static str,
    /// What it does and why it matters, a few sentences.
    pub summary: &'static str,
    /// Severity of its findings (a finding may lower it).
    pub severity: Severity,
    /// The controls it checks.
    pub controls: &'static [Control],
    /// Where the attack and the rule are described (URLs).
    pub references: &'static [&'static str],
    /// What it needs from the target.
    pub needs: &'static [Capability],
    /// How to fix what it finds.
    pub fix: &'static str,
    /// Ids this scenario had before (never reused).
    pub deprecated_ids: &'static [&'static str],
}

/// Why a scenario could not give a verdict.
#[derive(Debug, thiserror::Error)]
pub enum ScenarioError {
    /// The target lacks something the scenario needs at run time (skipped, with the reason).
    #[error("skipped: {0}")]
    Skip(Masked),
    /// The harness or the target failed in a way that prevents a verdict.
    #[error("{0}")]
    Harness(Masked),
}

impl ScenarioError {
    /// A skip whose reason is fixed text.
    pub fn skip(reason: &'static str) -> Self {
        ScenarioError::Skip(Masked::fixed(reason))
    }
}

/// A scenario: one attack, one verdict.
pub trait Scenario: Send + Sync {
    /// Its catalog entry.
    fn meta(&self) -> &'static ScenarioMeta;
    /// Runs the attack; an empty list means the target passed.
    fn run(&self, cx: &mut dyn ScenarioCx) -> Result<Vec<Finding>, ScenarioError>;
}

/// What a finding is about, stable across runs (no ids, ports or times): the key of its
/// fingerprint.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "type", rename_all = "kebab-case")]
pub enum Subject {
    /// An app endpoint (its route template as declared in the target file).
    AppRoute {
        /// `GET /api/patients/{patient}`.
        route: String,
    },
    /// A FHIR attack vector (`include`, `chain`, `batch`…).
    FhirVector {
        /// The vector's name.
        vector: String,
    },
    /// A client registration or its grants.
    Client {
        /// The client id.
        client_id: String,
    },
    /// A kind of session (`patient`, `practitioner`).
    Session {
        /// The persona.
        persona: String,
    },
}

impl Subject {
    /// The stable text the fingerprint hashes.
    pub fn key(&self) -> String {
        match self {
            Subject::AppRoute { route } => format!("app-route:{route}"),
            Subject::FhirVector { vector } => format!("fhir-vector:{vector}"),
            Subject::Client { client_id } => format!("client:{client_id}"),
            Subject::Session { persona } => format!("session:{persona}"),
        }
    }

    /// How a reader sees it.
    pub fn label(&self) -> String {
        match self {
            Subject::AppRoute { route } => route.clone(),
            Subject::FhirVector { vector } => format!("FHIR vector {vector}"),
            Subject::Client { client_id } => format!("client {client_id}"),
            Subject::Session { persona } => format!("{persona} session"),
        }
    }
}

/// Proof attached to a finding. The attack (what was sent) is kept apart from the proof.
#[derive(Debug, Clone, Serialize)]
#[serde(tag = "type", rename_all = "kebab-case")]
pub enum Evidence {
    /// An HTTP exchange: what was sent and the part of the answer that proves the finding.
    Http {
        /// The request line (method and URL, masked).
        request: Masked,
        /// The response status.
        status: u16,
        /// The relevant part of the response body (masked).
        excerpt: Masked,
    },
    /// Lines of the simulator's access log (masked JSON).
    AccessLog {
        /// One line per entry.
        lines: Vec<Masked>,
    },
    /// A statement derived from the run (e.g. the scopes granted and used).
    Note {
        /// The text.
        text: Masked,
    },
}

/// The most characters of a response body an excerpt keeps.
const EXCERPT_CHARS: usize = 600;

impl Evidence {
    /// The exchange's request line and an excerpt of its body, starting a little before
    /// `focus` (a raw value found in the body) when given. The whole body is masked before the
    /// excerpt is cut, so a cut can never leave part of a canary or a credential.
    pub fn http(masker: &Masker, exchange: &Exchange, focus: Option<&str>) -> Evidence {
        let masked = masker.mask(&exchange.body);
        let body = masked.as_str();
        let placeholder = focus.map(|f| masker.mask(f));
        let start = placeholder
            .as_ref()
            .and_then(|p| body.find(p.as_str()))
            .map_or(0, |at| floor_char_boundary(body, at.saturating_sub(120)));
        let end = floor_char_boundary(body, (start + EXCERPT_CHARS).min(body.len()));
        let (start, end) = outside_placeholders(body, start, end);
        let mut excerpt = String::new();
        if start > 0 {
            excerpt.push('…');
        }
        excerpt.push_str(&body[start..end]);
        if end < body.len() {
            excerpt.push('…');
        }
        Evidence::Http {
            request: masker.mask(&format!("{} {}", exchange.method, exchange.url)),
            status: exchange.status,
            excerpt: Masked::from_masked_excerpt(excerpt),
        }
    }

    /// The access-log entries, one masked JSON line each.
    pub fn access_log<'a>(
        masker: &Masker,
        entries: impl IntoIterator<Item = &'a AccessEntry>,
    ) -> Evidence {
        Evidence::AccessLog {
            lines: entries
                .into_iter()
                .map(|e| masker.mask(&e.summary_line()))
                .collect(),
        }
    }

    /// A note (masked).
    pub fn note(masker: &Masker, text: &str) -> Evidence {
        Evidence::Note {
            text: masker.mask(text),
        }
    }
}

/// Moves a cut that falls inside a `[PHI:…]` or `[SECRET:…]` placeholder to its edge.
fn outside_placeholders(text: &str, start: usize, end: usize) -> (usize, usize) {
    let inside = |at: usize| -> Option<(usize, usize)> {
        let open = text[..at].rfind('[')?;
        let close = text[open..].find(']')? + open;
        let tag = &text[open..];
        (close >= at && (tag.starts_with("[PHI:") || tag.starts_with("[SECRET:")))
            .then_some((open, close + 1))
    };
    let start = inside(start).map_or(start, |(open, _)| open);
    let end = inside(end).map_or(end, |(_, close)| close.min(text.len()));
    (start, end.max(start))
}

fn floor_char_boundary(s: &str, mut at: usize) -> usize {
    while at > 0 && !s.is_char_boundary(at) {
        at -= 1;
    }
    at
}

/// One thing a scenario found.
#[derive(Debug, Clone, Serialize)]
pub struct Finding {
    /// The scenario id.
    pub scenario: &'static str,
    /// The kind within the scenario (`cross-patient.fhir-vectors/include`).
    pub kind: String,
    /// Severity.
    pub severity: Severity,
    /// One line (masked).
    pub title: Masked,
    /// What happened and why it matters (masked).
    pub message: Masked,
    /// What it is about.
    pub subject: Subject,
    /// The proof.
    pub evidence: Vec<Evidence>,
    /// How to fix it.
    pub fix: &'static str,
    /// `sha256(scenario|kind|subject)`, hex: stable across runs, seeds and ports.
    pub fingerprint: String,
}

impl Finding {
    /// A finding of `meta`'s scenario, with its severity and fix.
    pub fn new(
        meta: &'static ScenarioMeta,
        kind: &str,
        subject: Subject,
        title: Masked,
        message: Masked,
    ) -> Finding {
        let kind = if kind.is_empty() {
            meta.id.to_string()
        } else {
            format!("{}/{kind}", meta.id)
        };
        let fingerprint = fingerprint(meta.id, &kind, &subject);
        Finding {
            scenario: meta.id,
            kind,
            severity: meta.severity,
            title,
            message,
            subject,
            evidence: Vec::new(),
            fix: meta.fix,
            fingerprint,
        }
    }

    /// Adds proof.
    pub fn with(mut self, evidence: Evidence) -> Finding {
        self.evidence.push(evidence);
        self
    }

    /// Sets a severity other than the scenario's.
    pub fn severity(mut self, severity: Severity) -> Finding {
        self.severity = severity;
        self
    }
}

/// Findings gathered step by step (per endpoint, per probe): a step that fails does not lose
/// what the other steps found. The first failure is the verdict only when nothing was found.
#[derive(Debug, Default)]
pub struct Gathered {
    findings: Vec<Finding>,
    failure: Option<ScenarioError>,
}

impl Gathered {
    /// Adds one step's result.
    pub fn add(&mut self, step: Result<Option<Finding>, ScenarioError>) {
        match step {
            Ok(Some(finding)) => self.findings.push(finding),
            Ok(None) => {}
            Err(error) if self.failure.is_none() => self.failure = Some(error),
            Err(_) => {}
        }
    }

    /// The findings, or the first failure when there are none.
    pub fn finish(self) -> Result<Vec<Finding>, ScenarioError> {
        match (self.findings.is_empty(), self.failure) {
            (true, Some(error)) => Err(error),
            _ => Ok(self.findings),
        }
    }
}

/// The fingerprint of a finding: hex `sha256(scenario|kind|subject key)`.
pub fn fingerprint(scenario: &str, kind: &str, subject: &Subject) -> String {
    let digest = Sha256::digest(format!("{scenario}|{kind}|{}", subject.key()).as_bytes());
    digest.iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn severities_order_and_parse() {
        assert!(Severity::Critical > Severity::High && Severity::Low > Severity::Info);
        assert_eq!(Severity::parse("HIGH"), Some(Severity::High));
        assert_eq!(Severity::parse("urgent"), None);
    }

    #[test]
    fn fingerprints_depend_on_scenario_kind_and_subject_only() {
        let route = Subject::AppRoute {
            route: "GET /api/patients/{patient}".into(),
        };
        let a = fingerprint("cross-patient.app-api", "k", &route);
        assert_eq!(a, fingerprint("cross-patient.app-api", "k", &route));
        assert_ne!(a, fingerprint("cross-patient.app-api", "other", &route));
        assert_eq!(a.len(), 64);
    }

    #[test]
    fn excerpts_are_masked_and_centred_on_the_focus() {
        let masker = Masker::new(vec![("Jane Roe".into(), "[PHI:B.name]".into())], vec![]);
        let exchange = Exchange {
            method: "GET".into(),
            url: "http://app/api/patients/x".into(),
            sent: String::new(),
            status: 200,
            body: format!("{}\"name\":\"Jane Roe\"", "x".repeat(2000)),
        };
        let Evidence::Http { excerpt, .. } = Evidence::http(&masker, &exchange, Some("Jane Roe"))
        else {
            panic!("an http evidence");
        };
        assert!(excerpt.as_str().contains("[PHI:B.name]"));
        assert!(!excerpt.as_str().contains("Jane"));
        assert!(excerpt.as_str().starts_with('…'));
    }

    #[test]
    fn an_excerpt_never_cuts_a_canary_or_a_placeholder_in_half() {
        let masker = Masker::new(vec![("MRN-0001234".into(), "[PHI:B.mrn]".into())], vec![]);
        for pad in 590..600 {
            let exchange = Exchange {
                body: format!("{}MRN-0001234 tail", "x".repeat(pad)),
                ..Exchange::default()
            };
            let Evidence::Http { excerpt, .. } = Evidence::http(&masker, &exchange, None) else {
                panic!("an http evidence");
            };
            let text = excerpt.as_str();
            assert!(!text.contains("MRN-"), "{pad}: {text}");
            assert!(!text.contains("[PHI:B.m…"), "{pad}: a placeholder was cut");
        }
    }
}

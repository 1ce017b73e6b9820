//! `cross-patient.fhir-vectors`: a patient-A token against a FHIR endpoint, through every
//! way FHIR offers to reach another patient's records.

use crate::cross_patient::{other_patient_fetches, victim_values};
use crate::api::{
    Capability, Control, Evidence, Finding, Gathered, Scenario, ScenarioError, ScenarioMeta,
    Severity, Subject,
};
use crate::cx::{Exchange, FhirRequest, FhirSession, ScenarioCx};

/// The catalog entry.
pub static META: ScenarioMeta = ScenarioMeta {
    id: "cross-patient.fhir-vectors",
    title: "FHIR endpoint lets one patient reach another's records",
    family: "cross-patient",
    summary: "With patient A's SMART token, probes the FHIR endpoint for the victim's data: direct read and vread, instance, type and system history, searches by patient, by reference URL, with several patients and with none, _include and _revinclude, chained and _has parameters, POST _search, compartment URLs, $everything, a batch of reads and Bulk $export. Fails on any of the victim's data, and on answers that differ between the victim's ids and ids that do not exist (an existence oracle).",
    severity: Severity::Critical,
    controls: &[
        Control::OwaspApi("API1:2023"),
        Control::Hipaa("164.312(a)(1)"),
        Control::SmartAppLaunch("Scopes and Launch Context: patient-specific scopes"),
        Control::Cwe(639),
    ],
    references: &[
        "https://hl7.org/fhir/R4/security.html#AccessDenied",
        "https://hl7.org/fhir/smart-app-launch/scopes-and-launch-context.html",
        "https://owasp.org/API-Security/editions/2023/en/0xa1-broken-object-level-authorization/",
    ],
    needs: &[Capability::FhirEndpoint],
    fix: "Enforce the token's patient compartment on every interaction, including includes, chains, _has, batch entries, history, operations and bulk export; answer a resource outside the compartment exactly as one that does not exist.",
    deprecated_ids: &[],
};

/// How often a probe is retried when the endpoint throttles or fails (429, 5xx).
const RETRIES: usize = 3;

/// A made-up id: what the endpoint says about a resource that does not exist.
const NO_SUCH_ID: &str = "fhirdrill-no-such-id-0000";

/// The scenario.
pub struct FhirVectors;

/// A probe: its vector name, the request with the victim's ids, and (for an existence
/// oracle check) the same request with made-up ids.
struct Probe {
    vector: &'static str,
    request: FhirRequest,
    unknown: Option<FhirRequest>,
}

/// A family name no synthetic patient has: the made-up twin of a name search.
const NO_SUCH_NAME: &str = "Zzyzxfhirdrill";

fn probes(a: &str, b: &str, kind: &str, id: &str, family: Option<&str>) -> Vec<Probe> {
    let get = |path: String| FhirRequest::get(path);
    let with_unknown = |vector, f: &dyn Fn(&str, &str) -> String| Probe {
        vector,
        request: get(f(b, id)),
        unknown: Some(get(f(NO_SUCH_ID, NO_SUCH_ID))),
    };
    let plain = |vector, path: String| Probe {
        vector,
        request: get(path),
        unknown: None,
    };
    let batch = format!(
        r#"{{"resourceType":"Bundle","type":"batch","entry":[{{"request":{{"method":"GET","url":"Patient/{b}"}}}},{{"request":{{"method":"GET","url":"{kind}?patient={b}"}}}}]}}"#
    );
    let mut export = get("Patient/$export".to_string());
    export.headers = vec![("prefer", "respond-async")];
    vec![
        with_unknown("read", &|b, _| format!("Patient/{b}")),
        with_unknown("vread", &|b, _| format!("Patient/{b}/_history/1")),
        with_unknown("read-record", &|_, id| format!("{kind}/{id}")),
        with_unknown("vread-record", &|_, id| format!("{kind}/{id}/_history/1")),
        with_unknown("history-instance", &|b, _| format!("Patient/{b}/_history")),
        with_unknown("everything", &|b, _| format!("Patient/{b}/$everything")),
        with_unknown("compartment", &|b, _| format!("Patient/{b}/{kind}")),
        with_unknown("search-patient", &|b, _| format!("{kind}?patient={b}")),
        with_unknown("search-reference-url", &|b, _| {
            format!("{kind}?subject=Patient/{b}")
        }),
        plain("search-several-patients", format!("{kind}?patient={a},{b}")),
        plain(
            "search-repeated-patient",
            format!("{kind}?patient={a}&patient={b}"),
        ),
        plain("search-no-patient", format!("{kind}?_count=100")),
        plain("search-id", format!("{kind}?_id={id}")),
        plain("patient-search", format!("Patient?_id={a},{b}")),
        plain(
            "include",
            format!("{kind}?_id={id}&_include={kind}:subject"),
        ),
        with_unknown("revinclude", &|b, _| {
            format!("Patient?_id={b}&_revinclude={kind}:subject")
        }),
        with_unknown("chain", &|b, _| format!("{kind}?subject:Patient._id={b}")),
        Probe {
            vector: "chain-name",
            request: get(format!(
                "{kind}?subject:Patient.name={}",
                family.unwrap_or(NO_SUCH_NAME)
            )),
            unknown: Some(get(format!("{kind}?subject:Patient.name={NO_SUCH_NAME}"))),
        },
        Probe {
            vector: "patient-search-name",
            request: get(format!("Patient?name={}", family.unwrap_or(NO_SUCH_NAME))),
            unknown: Some(get(format!("Patient?name={NO_SUCH_NAME}"))),
        },
        with_unknown("has", &|_, id| {
            format!("Patient?_has:{kind}:patient:_id={id}")
        }),
        plain("history-type", format!("{kind}/_history")),
        plain("history-system", "_history".to_string()),
        Probe {
            vector: "post-search",
            request: FhirRequest::post(
                format!("{kind}/_search"),
                format!("patient={b}"),
                "application/x-www-form-urlencoded",
            ),
            unknown: None,
        },
        Probe {
            vector: "batch",
            request: FhirRequest::post("", batch, "application/fhir+json"),
            unknown: None,
        },
        Probe {
            vector: "bulk-export",
            request: export,
            unknown: None,
        },
    ]
}

impl Scenario for FhirVectors {
    fn meta(&self) -> &'static ScenarioMeta {
        &META
    }

    fn run(&self, cx: &mut dyn ScenarioCx) -> Result<Vec<Finding>, ScenarioError> {
        let session = cx.fhir_session()?;
        let victim = cx.victim_id().to_string();
        let (kind, id) = cx
            .victim_resources()
            .iter()
            .find(|(t, _)| t == "Observation")
            .or_else(|| cx.victim_resources().iter().find(|(t, _)| t != "Patient"))
            .cloned()
            .ok_or_else(|| {
                ScenarioError::skip("the victim has no records besides their Patient")
            })?;
        let mut gathered = Gathered::default();
        let family = cx.victim_family().map(str::to_string);
        for probe in probes(&session.patient, &victim, &kind, &id, family.as_deref()) {
            gathered.add(self.probe(cx, &session, &probe, &[victim.as_str(), id.as_str()]));
        }
        gathered.finish()
    }
}

impl FhirVectors {
    /// Runs one probe: a leak (the victim's values in the answer, or any other patient's data
    /// in the EHR's records of it), else an existence oracle (the victim's ids answered
    /// differently from made-up ones), else nothing.
    fn probe(
        &self,
        cx: &mut dyn ScenarioCx,
        session: &FhirSession,
        probe: &Probe,
        victim_ids: &[&str],
    ) -> Result<Option<Finding>, ScenarioError> {
        let mark = cx.mark()?;
        let exchange = send(cx, session, &probe.request)?;
        // Only what the harness's own patient token did: the app's jobs may run meanwhile.
        let entries: Vec<_> = cx
            .access_since(mark)?
            .into_iter()
            .filter(|e| e.has_user() && e.patient_context.as_deref() == Some(session.patient.as_str()))
            .collect();
        let fetched = other_patient_fetches(&entries, &session.patient);
        let masker = cx.masker();
        let values = victim_values(masker, &exchange);
        if !values.is_empty() || !fetched.is_empty() {
            let placeholders: Vec<&str> = values.iter().map(|(p, _)| *p).collect();
            let mut finding = Finding::new(
                &META,
                probe.vector,
                Subject::FhirVector {
                    vector: probe.vector.to_string(),
                },
                masker.mask(&format!(
                    "FHIR {} returns another patient's data to a patient token",
                    probe.vector
                )),
                masker.mask(&format!(
                    "{} {} answered HTTP {} with the victim's values ({}); the EHR's records show {} request(s) returning other patients' data.",
                    probe.request.method,
                    probe.request.path,
                    exchange.status,
                    placeholders.join(", "),
                    fetched.len()
                )),
            )
            .with(Evidence::http(masker, &exchange, values.first().map(|(_, raw)| *raw)));
            if !fetched.is_empty() {
                finding = finding.with(Evidence::access_log(masker, fetched.iter().copied()));
            }
            return Ok(Some(finding));
        }
        let Some(unknown) = &probe.unknown else {
            return Ok(None);
        };
        let baseline = send(cx, session, unknown)?;
        let hidden = comparable(&exchange, victim_ids);
        let made_up = comparable(&baseline, &[NO_SUCH_ID]);
        if hidden == made_up {
            return Ok(None);
        }
        let masker = cx.masker();
        let kind = format!("{}-existence", probe.vector);
        Ok(Some(
            Finding::new(
                &META,
                &kind,
                Subject::FhirVector { vector: kind.clone() },
                masker.mask(&format!(
                    "FHIR {} tells a patient token that another patient's record exists",
                    probe.vector
                )),
                masker.mask(&format!(
                    "The victim's id answered HTTP {}, a made-up id HTTP {}{}: a caller learns which ids exist.",
                    exchange.status,
                    baseline.status,
                    if exchange.status == baseline.status { ", with different messages" } else { "" }
                )),
            )
            .severity(Severity::Medium)
            .with(Evidence::http(masker, &exchange, None))
            .with(Evidence::http(masker, &baseline, None)),
        ))
    }
}

/// Sends a probe, retrying a few times while the endpoint throttles or fails, so a 429 or a
/// 503 is never mistaken for an answer.
fn send(
    cx: &mut dyn ScenarioCx,
    session: &FhirSession,
    request: &FhirRequest,
) -> Result<Exchange, ScenarioError> {
    let mut exchange = cx.fhir(session, request)?;
    for _ in 0..RETRIES {
        if exchange.status != 429 && exchange.status < 500 {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(500));
        exchange = cx.fhir(session, request)?;
    }
    Ok(exchange)
}

/// What a caller can compare between two answers: the status and the OperationOutcome's
/// messages with the requested ids replaced (the rest of a body would differ by id anyway).
fn comparable(exchange: &Exchange, ids: &[&str]) -> (u16, String) {
    let body: serde_json::Value = serde_json::from_str(&exchange.body).unwrap_or_default();
    let messages = body["issue"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|i| {
            format!(
                "{}|{}",
                i["code"].as_str().unwrap_or_default(),
                ids.iter().fold(
                    i["diagnostics"].as_str().unwrap_or_default().to_string(),
                    |text, id| text.replace(id, "ID"),
                )
            )
        })
        .collect::<Vec<_>>()
        .join(";");
    (exchange.status, messages)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn answer(status: u16, diagnostics: &str) -> Exchange {
        Exchange {
            status,
            body: serde_json::json!({"resourceType": "OperationOutcome", "issue": [
                {"severity": "error", "code": "not-found", "diagnostics": diagnostics}
            ]})
            .to_string(),
            ..Exchange::default()
        }
    }

    #[test]
    fn answers_compare_by_status_and_message_with_ids_replaced() {
        let hidden = answer(404, "Observation/o1 is not known");
        let unknown = answer(404, &format!("Observation/{NO_SUCH_ID} is not known"));
        assert_eq!(
            comparable(&hidden, &["p1", "o1"]),
            comparable(&unknown, &[NO_SUCH_ID])
        );
        let telling = answer(404, "Observation/o1 is outside your compartment");
        assert_ne!(
            comparable(&telling, &["p1", "o1"]),
            comparable(&unknown, &[NO_SUCH_ID])
        );
        let forbidden = answer(403, "Observation/o1 is not known");
        assert_ne!(
            comparable(&forbidden, &["o1"]),
            comparable(&unknown, &[NO_SUCH_ID])
        );
    }

    #[test]
    fn every_probe_names_the_victim_or_is_a_broad_search() {
        for probe in probes("A", "B", "Observation", "o1", Some("B")) {
            let text = format!("{} {:?}", probe.request.path, probe.request.body);
            let broad = matches!(
                probe.vector,
                "search-no-patient" | "history-type" | "history-system" | "bulk-export"
            );
            assert!(
                broad || text.contains('B') || text.contains("o1"),
                "{}",
                probe.vector
            );
        }
    }
}

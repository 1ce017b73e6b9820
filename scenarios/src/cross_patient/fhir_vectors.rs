//! `cross-patient.fhir-vectors`: a patient-A token against a FHIR endpoint, through every
//! way FHIR offers to reach another patient's records.

use super::{victim_fetches, victim_values};
use crate::api::{
    Capability, Control, Evidence, Finding, Scenario, ScenarioError, ScenarioMeta, Severity,
    Subject,
};
use crate::cx::{FhirRequest, ScenarioCx};

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

fn probes(a: &str, b: &str, kind: &str, id: &str) -> Vec<Probe> {
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
        plain("search-patient", format!("{kind}?patient={b}")),
        plain(
            "search-reference-url",
            format!("{kind}?subject=Patient/{b}"),
        ),
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
        plain(
            "revinclude",
            format!("Patient?_id={b}&_revinclude={kind}:subject"),
        ),
        plain("chain", format!("{kind}?subject:Patient._id={b}")),
        plain("has", format!("Patient?_has:{kind}:patient:_id={id}")),
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
        let mut findings = Vec::new();
        for probe in probes(&session.patient, &victim, &kind, &id) {
            let mark = cx.mark()?;
            let exchange = cx.fhir(&session, &probe.request)?;
            let entries = cx.access_since(mark)?;
            let fetched = victim_fetches(&entries, &victim);
            let masker = cx.masker();
            let values = victim_values(masker, &exchange);
            let subject = Subject::FhirVector {
                vector: probe.vector.to_string(),
            };
            if !values.is_empty() || !fetched.is_empty() {
                let placeholders: Vec<&str> = values.iter().map(|(p, _)| *p).collect();
                let mut finding = Finding::new(
                    &META,
                    probe.vector,
                    subject,
                    masker.mask(&format!(
                        "FHIR {} returns another patient's data to a patient token",
                        probe.vector
                    )),
                    masker.mask(&format!(
                        "{} {} answered HTTP {} with the victim's values ({}).",
                        probe.request.method,
                        probe.request.path,
                        exchange.status,
                        placeholders.join(", ")
                    )),
                )
                .with(Evidence::http(
                    masker,
                    &exchange,
                    values.first().map(|(_, raw)| *raw),
                ));
                if !fetched.is_empty() {
                    finding = finding.with(Evidence::access_log(masker, fetched.iter().copied()));
                }
                findings.push(finding);
                continue;
            }
            if let Some(unknown) = &probe.unknown {
                let baseline = cx.fhir(&session, unknown)?;
                if baseline.status != exchange.status {
                    let masker = cx.masker();
                    findings.push(
                        Finding::new(
                            &META,
                            &format!("{}-existence", probe.vector),
                            Subject::FhirVector { vector: format!("{}-existence", probe.vector) },
                            masker.mask(&format!("FHIR {} tells a patient token that another patient's record exists", probe.vector)),
                            masker.mask(&format!("The victim's id answered HTTP {}, a made-up id HTTP {}: a caller learns which ids exist.", exchange.status, baseline.status)),
                        )
                        .severity(Severity::Medium)
                        .with(Evidence::http(masker, &exchange, None))
                        .with(Evidence::http(masker, &baseline, None)),
                    );
                }
            }
        }
        Ok(findings)
    }
}

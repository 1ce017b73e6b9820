//! FHIR reads and the shapes the API answers with.

use serde_json::{Value, json};

/// A FHIR answer: status and JSON body (`Null` when it was not JSON).
#[derive(Debug, Clone)]
pub(crate) struct FhirAnswer {
    pub(crate) status: u16,
    pub(crate) body: Value,
}

/// `GET <url>` with a bearer token.
pub(crate) async fn get(
    http: &reqwest::Client,
    url: &str,
    token: &str,
) -> Result<FhirAnswer, String> {
    let response = http
        .get(url)
        .bearer_auth(token)
        .header("accept", "application/fhir+json")
        .send()
        .await
        .map_err(|e| format!("cannot reach the EHR: {e}"))?;
    let status = response.status().as_u16();
    let body = response.json::<Value>().await.unwrap_or(Value::Null);
    Ok(FhirAnswer { status, body })
}

/// The resources of a searchset Bundle of type `resource_type` (not OperationOutcomes).
pub(crate) fn bundle_resources<'a>(
    bundle: &'a Value,
    resource_type: &'a str,
) -> impl Iterator<Item = &'a Value> {
    bundle["entry"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|e| &e["resource"])
        .filter(move |r| r["resourceType"] == resource_type)
}

/// The `next` link of a Bundle.
pub(crate) fn next_link(bundle: &Value) -> Option<&str> {
    bundle["link"]
        .as_array()?
        .iter()
        .find(|l| l["relation"] == "next")?["url"]
        .as_str()
}

/// `{"id","name","birthDate","gender","mrn"}` of a Patient.
pub(crate) fn patient_summary(patient: &Value) -> Value {
    let names = patient["name"].as_array();
    let name = names
        .and_then(|n| {
            n.iter()
                .find(|n| n["use"] == "official")
                .or_else(|| n.first())
        })
        .map(|n| {
            if let Some(text) = n["text"].as_str() {
                return text.to_string();
            }
            let mut parts: Vec<&str> = n["given"]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(Value::as_str)
                .collect();
            if let Some(family) = n["family"].as_str() {
                parts.push(family);
            }
            parts.join(" ")
        });
    let mrn = patient["identifier"]
        .as_array()
        .into_iter()
        .flatten()
        .find(|i| {
            i["type"]["coding"]
                .as_array()
                .into_iter()
                .flatten()
                .any(|c| c["code"] == "MR")
                || i["system"].as_str().is_some_and(|s| s.ends_with(":mrn"))
        })
        .and_then(|i| i["value"].as_str());
    json!({
        "id": patient["id"],
        "name": name,
        "birthDate": patient["birthDate"],
        "gender": patient["gender"],
        "mrn": mrn,
    })
}

/// `{"id","code","display","value","unit","date"}` of an Observation (a panel's components
/// joined with `/`).
pub(crate) fn observation_row(obs: &Value) -> Value {
    let coding = &obs["code"]["coding"][0];
    let display = coding["display"]
        .as_str()
        .or_else(|| obs["code"]["text"].as_str());
    let (value, unit) = if let Some(q) = obs.get("valueQuantity") {
        (
            q["value"].clone(),
            q["unit"].as_str().or_else(|| q["code"].as_str()),
        )
    } else if let Some(s) = obs["valueString"].as_str() {
        (json!(s), None)
    } else if let Some(c) = obs.get("valueCodeableConcept") {
        (
            c["text"]
                .as_str()
                .or_else(|| c["coding"][0]["display"].as_str())
                .map_or(Value::Null, |s| json!(s)),
            None,
        )
    } else if let Some(components) = obs["component"].as_array() {
        let values: Vec<String> = components
            .iter()
            .filter_map(|c| c["valueQuantity"]["value"].as_f64())
            .map(|v| format!("{v}"))
            .collect();
        let unit = components
            .first()
            .and_then(|c| c["valueQuantity"]["unit"].as_str());
        (
            if values.is_empty() {
                Value::Null
            } else {
                json!(values.join("/"))
            },
            unit,
        )
    } else {
        (Value::Null, None)
    };
    json!({
        "id": obs["id"],
        "code": coding["code"],
        "display": display,
        "value": value,
        "unit": unit,
        "date": obs["effectiveDateTime"].as_str().or_else(|| obs["issued"].as_str()),
    })
}

/// `{"id","medication","status","authoredOn"}` of a MedicationRequest.
pub(crate) fn medication_row(request: &Value) -> Value {
    let concept = &request["medicationCodeableConcept"];
    let medication = concept["text"]
        .as_str()
        .or_else(|| concept["coding"][0]["display"].as_str())
        .or_else(|| request["medicationReference"]["display"].as_str());
    json!({
        "id": request["id"],
        "medication": medication,
        "status": request["status"],
        "authoredOn": request["authoredOn"],
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shapes() {
        let patient = json!({"resourceType": "Patient", "id": "p1", "gender": "female", "birthDate": "1980-02-03",
            "name": [{"use": "official", "family": "Doe", "given": ["Jane", "Q"]}],
            "identifier": [{"system": "urn:x:ssn", "value": "000"}, {"type": {"coding": [{"code": "MR"}]}, "value": "M1"}]});
        let s = patient_summary(&patient);
        assert_eq!(s["name"], "Jane Q Doe");
        assert_eq!(s["mrn"], "M1");
        let obs = json!({"id": "o1", "code": {"coding": [{"code": "4548-4", "display": "HbA1c"}]},
            "valueQuantity": {"value": 7.1, "unit": "%"}, "effectiveDateTime": "2025-01-01"});
        let row = observation_row(&obs);
        assert_eq!(row["value"], 7.1);
        assert_eq!(row["unit"], "%");
        let bp = json!({"id": "o2", "code": {"coding": [{"code": "85354-9"}]}, "component": [
            {"valueQuantity": {"value": 120.0, "unit": "mm[Hg]"}}, {"valueQuantity": {"value": 80.0, "unit": "mm[Hg]"}}]});
        assert_eq!(observation_row(&bp)["value"], "120/80");
        let med = json!({"id": "m1", "status": "active", "authoredOn": "2024-05-01",
            "medicationCodeableConcept": {"coding": [{"display": "metformin"}]}});
        assert_eq!(medication_row(&med)["medication"], "metformin");
        let bundle = json!({"entry": [{"resource": obs}, {"resource": {"resourceType": "OperationOutcome"}}],
            "link": [{"relation": "next", "url": "http://x/next"}]});
        assert_eq!(
            bundle_resources(&bundle, "Observation").count(),
            0,
            "no resourceType in obs"
        );
        assert_eq!(next_link(&bundle), Some("http://x/next"));
    }
}

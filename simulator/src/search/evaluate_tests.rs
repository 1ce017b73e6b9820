//! Data-driven tests of search evaluation, includes and fast paths over a small hand-written
//! population.

use super::evaluate::{matches, patient_compartment_of, search};
use super::include::{included, references_of};
use super::query::SearchQuery;
use super::registry::lookup;
use super::test_support::{Index, MemorySource, pairs};
use serde_json::{Value, json};

/// The hand-written population.
fn population() -> Vec<Value> {
    vec![
        json!({"resourceType": "Patient", "id": "p1",
            "meta": {"lastUpdated": "2024-01-02T10:00:00Z",
                     "tag": [{"system": "urn:fhirdrill:codesystem:data-origin", "code": "synthetic"}],
                     "profile": ["http://hl7.org/fhir/us/core/StructureDefinition/us-core-patient"]},
            "identifier": [{"system": "urn:mrn", "value": "12345"},
                           {"system": "http://hl7.org/fhir/sid/us-ssn", "value": "999-11-2222"}],
            "active": true,
            "name": [{"use": "official", "text": "Peter James Chalmers", "family": "Chalmers", "given": ["Peter", "James"]},
                     {"use": "nickname", "given": ["Jim"]}],
            "telecom": [{"system": "phone", "value": "555-1234"}, {"system": "email", "value": "peter@example.org"}],
            "gender": "male", "birthDate": "1974-12-25",
            "address": [{"line": ["534 Erewhon St"], "city": "Portland", "state": "OR", "postalCode": "97201"}],
            "generalPractitioner": [{"reference": "Practitioner/dr1"}],
            "managingOrganization": {"reference": "Organization/org1"}}),
        json!({"resourceType": "Patient", "id": "p2",
            "meta": {"lastUpdated": "2024-03-01T00:00:00Z"},
            "identifier": [{"system": "urn:mrn", "value": "67890"}],
            "name": [{"family": "Muñoz", "given": ["José"]}],
            "telecom": [{"system": "phone", "value": "555-9999"}],
            "gender": "female", "birthDate": "1980-06",
            "address": [{"city": "Boston", "state": "MA"}],
            "managingOrganization": {"reference": "https://ehr.example/fhir/Organization/org2"}}),
        json!({"resourceType": "Patient", "id": "p3",
            "meta": {"lastUpdated": "2023-12-31T23:59:59Z"},
            "name": [{"family": "Peterson", "given": ["Anna"]}],
            "gender": "other", "deceasedDateTime": "2022-02-02"}),
        json!({"resourceType": "Practitioner", "id": "dr1",
            "identifier": [{"system": "http://hl7.org/fhir/sid/us-npi", "value": "111"}],
            "name": [{"text": "Dr. Alice Smith", "family": "Smith", "given": ["Alice"], "prefix": ["Dr."]}]}),
        json!({"resourceType": "Practitioner", "id": "dr2", "name": [{"family": "Jones", "given": ["Bob"]}]}),
        json!({"resourceType": "Organization", "id": "org1", "name": "Good Health Clinic", "alias": ["GHC"],
            "address": [{"city": "Portland"}]}),
        json!({"resourceType": "Organization", "id": "org2", "name": "Acme Hospital"}),
        json!({"resourceType": "Group", "id": "g1", "name": "Cohort Alpha",
            "member": [{"entity": {"reference": "Patient/p1"}}]}),
        json!({"resourceType": "Group", "id": "g2", "name": "Meta group",
            "member": [{"entity": {"reference": "Group/g1"}}]}),
        json!({"resourceType": "Location", "id": "l1", "name": "Main Campus", "address": {"city": "Portland"},
            "managingOrganization": {"reference": "Organization/org1"}}),
        json!({"resourceType": "Observation", "id": "o1", "status": "final",
            "category": [{"coding": [{"system": "http://terminology.hl7.org/CodeSystem/observation-category", "code": "vital-signs"}]}],
            "code": {"coding": [{"system": "http://loinc.org", "code": "8480-6", "display": "Systolic blood pressure"}], "text": "Systolic BP"},
            "subject": {"reference": "Patient/p1"}, "encounter": {"reference": "Encounter/e1"},
            "effectiveDateTime": "2020-01-15T10:00:00Z",
            "valueQuantity": {"value": 120, "unit": "mmHg", "system": "http://unitsofmeasure.org", "code": "mm[Hg]"}}),
        json!({"resourceType": "Observation", "id": "o2", "status": "amended",
            "category": [{"coding": [{"system": "http://terminology.hl7.org/CodeSystem/observation-category", "code": "vital-signs"}]}],
            "code": {"coding": [{"system": "http://loinc.org", "code": "85354-9", "display": "Blood pressure panel"}]},
            "subject": {"reference": "Patient/p1"},
            "effectivePeriod": {"start": "2020-02-01", "end": "2020-02-03"},
            "component": [
                {"code": {"coding": [{"system": "http://loinc.org", "code": "8480-6"}]}, "valueQuantity": {"value": 130}},
                {"code": {"coding": [{"system": "http://loinc.org", "code": "8462-4"}]}, "valueQuantity": {"value": 85}}]}),
        json!({"resourceType": "Observation", "id": "o3", "status": "final",
            "category": [{"coding": [{"system": "http://terminology.hl7.org/CodeSystem/observation-category", "code": "laboratory"}]}],
            "code": {"coding": [{"system": "http://loinc.org", "code": "2339-0", "display": "Glucose"}]},
            "subject": {"reference": "Patient/p2"},
            "effectiveDateTime": "2021-03",
            "valueQuantity": {"value": 5.5, "unit": "mmol/L", "system": "http://unitsofmeasure.org", "code": "mmol/L"}}),
        json!({"resourceType": "Observation", "id": "o4", "status": "preliminary",
            "code": {"coding": [{"system": "http://snomed.info/sct", "code": "1234"}], "text": "Weight"},
            "subject": {"reference": "Group/g1"},
            "effectiveInstant": "2022-05-05T05:05:05.123Z",
            "valueQuantity": {"value": 99.5, "unit": "kg"}}),
        json!({"resourceType": "Observation", "id": "o5", "status": "cancelled",
            "code": {"coding": [{"code": "8480-6"}]},
            "subject": {"reference": "Patient/p3"},
            "valueCodeableConcept": {"coding": [{"system": "http://snomed.info/sct", "code": "260385009", "display": "Negative"}]}}),
        json!({"resourceType": "Condition", "id": "c1",
            "clinicalStatus": {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/condition-clinical", "code": "active"}]},
            "category": [{"coding": [{"code": "problem-list-item"}]}],
            "code": {"coding": [{"system": "http://snomed.info/sct", "code": "44054006", "display": "Diabetes mellitus type 2"}]},
            "subject": {"reference": "Patient/p1"}, "onsetDateTime": "2010-05", "recordedDate": "2010-06-01",
            "extension": [{"url": "http://hl7.org/fhir/StructureDefinition/condition-assertedDate", "valueDateTime": "2010-05-20"}]}),
        json!({"resourceType": "Condition", "id": "c2",
            "clinicalStatus": {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/condition-clinical", "code": "resolved"}]},
            "code": {"coding": [{"system": "http://hl7.org/fhir/sid/icd-10-cm", "code": "I10"}]},
            "subject": {"reference": "Patient/p2"},
            "onsetPeriod": {"start": "2015-01-01", "end": "2015-06-30"}, "abatementDateTime": "2015-07-01"}),
        json!({"resourceType": "Encounter", "id": "e1", "status": "finished",
            "identifier": [{"system": "urn:visit", "value": "v-1"}],
            "class": {"system": "http://terminology.hl7.org/CodeSystem/v3-ActCode", "code": "AMB"},
            "subject": {"reference": "Patient/p1"},
            "participant": [{"individual": {"reference": "Practitioner/dr1"}}],
            "period": {"start": "2020-01-15T09:00:00Z", "end": "2020-01-15T11:00:00Z"},
            "location": [{"location": {"reference": "Location/l1"}}],
            "serviceProvider": {"reference": "Organization/org1"}}),
        json!({"resourceType": "DiagnosticReport", "id": "dr-1", "status": "final",
            "code": {"coding": [{"system": "http://loinc.org", "code": "85354-9"}]},
            "subject": {"reference": "Patient/p1"},
            "result": [{"reference": "Observation/o1"}, {"reference": "Observation/o2"}]}),
        json!({"resourceType": "Provenance", "id": "prov1", "recorded": "2020-01-15T10:00:00Z",
            "target": [{"reference": "Observation/o1"}, {"reference": "Patient/p1"}]}),
        json!({"resourceType": "Coverage", "id": "cov1", "status": "active",
            "beneficiary": {"reference": "Patient/p2"}, "payor": [{"reference": "Organization/org2"}]}),
    ]
}

/// Runs `query` (decoded `k=v&k=v`) on `ty` strictly and returns the ids in result order.
fn run(source: &MemorySource, ty: &str, query: &str) -> Vec<String> {
    let parsed =
        SearchQuery::parse(ty, &pairs(query), true).unwrap_or_else(|e| panic!("{ty}?{query}: {e}"));
    let found = search(&parsed, source).unwrap_or_else(|e| panic!("{ty}?{query}: {e}"));
    found
        .iter()
        .map(|r| r["id"].as_str().unwrap_or_default().to_owned())
        .collect()
}

/// Asserts that `ty?query` returns exactly `expected` (in order), with and without an index.
fn check(ty: &str, query: &str, expected: &[&str]) {
    for index in [Index::None, Index::Exact, Index::Superset] {
        let source = MemorySource::new(population()).with_index(index);
        assert_eq!(
            run(&source, ty, query),
            expected,
            "{ty}?{query} with {index:?}"
        );
    }
}

#[test]
fn token_forms() {
    check("Observation", "code=8480-6", &["o1", "o5"]);
    check("Observation", "code=http://loinc.org|8480-6", &["o1"]);
    check("Observation", "code=|8480-6", &["o5"]);
    check("Observation", "code=http://loinc.org|", &["o1", "o2", "o3"]);
    check("Observation", "code=http://other.org|8480-6", &[]);
    check("Observation", "status=final", &["o1", "o3"]);
    check("Observation", "status:not=final", &["o2", "o4", "o5"]);
    check("Observation", "status:not=final,amended", &["o4", "o5"]);
    check(
        "Observation",
        "category:not=vital-signs",
        &["o3", "o4", "o5"],
    );
    check("Observation", "code:text=systolic", &["o1"]);
    check("Observation", "code:text=blood", &["o2"]);
    check("Observation", "code:text=WEIGHT", &["o4"]);
    check(
        "Observation",
        "value-concept=http://snomed.info/sct|260385009",
        &["o5"],
    );
    check(
        "Observation",
        "combo-code=http://loinc.org|8480-6",
        &["o1", "o2"],
    );
    check("Observation", "combo-code=8462-4", &["o2"]);
    check("Observation", "component-code=8480-6", &["o2"]);
    check("Patient", "gender=female", &["p2"]);
    check("Patient", "gender=|female", &["p2"]);
    check("Patient", "active=true", &["p1"]);
    check("Patient", "identifier=urn:mrn|12345", &["p1"]);
    check("Patient", "identifier=12345", &["p1"]);
    check("Patient", "identifier=urn:mrn|", &["p1", "p2"]);
    check("Patient", "identifier=urn:other|12345", &[]);
    check("Patient", "phone=555-9999", &["p2"]);
    check("Patient", "email=peter@example.org", &["p1"]);
    check("Patient", "phone=peter@example.org", &[]);
    check("Patient", "telecom=555-1234", &["p1"]);
    check("Patient", "_id=p2,p3", &["p2", "p3"]);
    check("Patient", "_id=nope", &[]);
    check(
        "Patient",
        "_tag=urn:fhirdrill:codesystem:data-origin|synthetic",
        &["p1"],
    );
    check(
        "Patient",
        "_profile=http://hl7.org/fhir/us/core/StructureDefinition/us-core-patient",
        &["p1"],
    );
    check("Encounter", "class=AMB", &["e1"]);
    check("Encounter", "identifier=urn:visit|v-1", &["e1"]);
    check("Condition", "clinical-status=active", &["c1"]);
}

#[test]
fn string_matching() {
    check("Patient", "family=chal", &["p1"]);
    check("Patient", "family=CHALMERS", &["p1"]);
    check("Patient", "family=halmers", &[]);
    check("Patient", "family=munoz", &["p2"]);
    check("Patient", "given=jose", &["p2"]);
    check("Patient", "name=peter", &["p1", "p3"]);
    check("Patient", "name=jim", &["p1"]);
    check("Patient", "name=james", &["p1"]);
    check("Patient", "name:exact=Peter", &["p1"]);
    check("Patient", "name:exact=peter", &[]);
    check("Patient", "name:exact=Muñoz", &["p2"]);
    check("Patient", "name:exact=Munoz", &[]);
    check("Patient", "name:contains=ters", &["p3"]);
    check("Patient", "name:contains=UÑ", &["p2"]);
    check("Patient", "address=erewhon", &[]);
    check("Patient", "address=534", &["p1"]);
    check("Patient", "address=port", &["p1"]);
    check("Patient", "address-city=boston", &["p2"]);
    check("Patient", "address-state=or", &["p1"]);
    check("Patient", "address-postalcode=972", &["p1"]);
    check("Organization", "name=ghc", &["org1"]);
    check("Organization", "name=acme", &["org2"]);
    check("Practitioner", "name=dr", &["dr1"]);
    check("Location", "address-city=portland", &["l1"]);
    check("Group", "name=cohort", &["g1"]);
}

#[test]
fn dates_with_prefixes_and_partial_precision() {
    check("Patient", "birthdate=1974", &["p1"]);
    check("Patient", "birthdate=1974-12", &["p1"]);
    check("Patient", "birthdate=1974-12-25", &["p1"]);
    check("Patient", "birthdate=1974-12-26", &[]);
    // A month-precision birthDate is not contained in one day, but in its year.
    check("Patient", "birthdate=1980-06-15", &[]);
    check("Patient", "birthdate=1980", &["p2"]);
    check("Patient", "birthdate=ge1980-06-15", &["p2"]);
    check("Patient", "birthdate=le1980-06-15", &["p1", "p2"]);
    check("Patient", "birthdate=gt1980-06", &[]);
    check("Patient", "birthdate=lt1980", &["p1"]);
    check("Patient", "birthdate=ne1974-12-25", &["p2"]);
    check("Patient", "birthdate=sa1975", &["p2"]);
    check("Patient", "birthdate=eb1980-06-01", &["p1"]);
    check("Patient", "birthdate=ap1974-12-24", &["p1"]);
    check("Patient", "death-date=2022", &["p3"]);
    check("Observation", "date=2020", &["o1", "o2"]);
    check("Observation", "date=2020-01-15", &["o1"]);
    check("Observation", "date=2020-01-15T10:00:00Z", &["o1"]);
    check("Observation", "date=2020-01-15T11:00:00+01:00", &["o1"]);
    check("Observation", "date=2020-01-15T10:00", &["o1"]);
    check("Observation", "date=2020-02-02", &[]);
    check("Observation", "date=gt2020-02-02", &["o2", "o3", "o4"]);
    check("Observation", "date=lt2020-02-02", &["o1", "o2"]);
    check("Observation", "date=sa2020-01-31", &["o2", "o3", "o4"]);
    check("Observation", "date=eb2021-03-01", &["o1", "o2"]);
    check("Observation", "date=2021-03", &["o3"]);
    check("Observation", "date=ge2022-05-05T05:05:05.123Z", &["o4"]);
    check("Observation", "date=gt2022-05-05T05:05:05.123Z", &[]);
    check(
        "Observation",
        "date=ge2020-01-01&date=lt2020-02-01",
        &["o1"],
    );
    check("Observation", "date=2019,2021", &["o3"]);
    check("Condition", "onset-date=2015", &["c2"]);
    check("Condition", "onset-date=2015-03", &[]);
    check("Condition", "onset-date=ge2015-03", &["c2"]);
    check("Condition", "onset-date=lt2010-05-10", &["c1"]);
    check("Condition", "abatement-date=2015-07", &["c2"]);
    check("Condition", "recorded-date=2010-06-01", &["c1"]);
    check("Condition", "asserted-date=2010-05", &["c1"]);
    check("Encounter", "date=2020-01-15", &["e1"]);
    check("Encounter", "date=ge2020-01-15T10:30:00Z", &["e1"]);
    check("Patient", "_lastUpdated=ge2024-01-01", &["p1", "p2"]);
    check("Patient", "_lastUpdated=lt2024", &["p3"]);
}

#[test]
fn quantities() {
    check("Observation", "value-quantity=120", &["o1"]);
    check("Observation", "value-quantity=120.0", &["o1"]);
    check("Observation", "value-quantity=119.6", &[]);
    check(
        "Observation",
        "value-quantity=5.5|http://unitsofmeasure.org|mmol/L",
        &["o3"],
    );
    check(
        "Observation",
        "value-quantity=5.5|http://other.org|mmol/L",
        &[],
    );
    check("Observation", "value-quantity=5.5||mmol/L", &["o3"]);
    check("Observation", "value-quantity=100||kg", &["o4"]);
    check("Observation", "value-quantity=99.5||kg", &["o4"]);
    check("Observation", "value-quantity=99||kg", &[]);
    check("Observation", "value-quantity=100||mm[Hg]", &[]);
    check("Observation", "value-quantity=gt99.5", &["o1"]);
    check("Observation", "value-quantity=ge99.5", &["o1", "o4"]);
    check("Observation", "value-quantity=lt100", &["o3", "o4"]);
    check("Observation", "value-quantity=le5.5", &["o3"]);
    check("Observation", "value-quantity=ne120", &["o3", "o4"]);
    check("Observation", "value-quantity=ap110", &["o1", "o4"]);
    check("Observation", "value-quantity=gt100,lt6", &["o1", "o3"]);
    check(
        "Observation",
        "value-quantity=gt5&value-quantity=lt100",
        &["o3", "o4"],
    );
    check("Observation", "component-value-quantity=85", &["o2"]);
    check("Observation", "component-value-quantity=120", &[]);
    check("Observation", "combo-value-quantity=ge120", &["o1", "o2"]);
}

#[test]
fn references() {
    check("Observation", "patient=p1", &["o1", "o2"]);
    check("Observation", "patient=Patient/p1", &["o1", "o2"]);
    check(
        "Observation",
        "patient=https://other.example/fhir/Patient/p1",
        &["o1", "o2"],
    );
    check("Observation", "subject=p1", &["o1", "o2"]);
    check("Observation", "subject=g1", &["o4"]);
    check("Observation", "subject=Group/g1", &["o4"]);
    check("Observation", "patient=g1", &[]);
    check("Observation", "subject:Patient=p1", &["o1", "o2"]);
    check("Observation", "subject:Group=g1", &["o4"]);
    check("Observation", "subject:Patient=g1", &[]);
    check("Observation", "patient=p1,p2", &["o1", "o2", "o3"]);
    check("Observation", "patient:missing=true", &["o4"]);
    check("Observation", "subject:missing=true", &[]);
    check("Observation", "encounter:missing=false", &["o1"]);
    check("Observation", "value-quantity:missing=true", &["o2", "o5"]);
    check("Observation", "date:missing=true", &["o5"]);
    check("Observation", "encounter=Encounter/e1", &["o1"]);
    check("Patient", "general-practitioner=dr1", &["p1"]);
    check("Patient", "general-practitioner=Practitioner/dr1", &["p1"]);
    check("Patient", "general-practitioner=Organization/dr1", &[]);
    check("Patient", "organization=org2", &["p2"]);
    check("Patient", "organization:missing=true", &["p3"]);
    check("Encounter", "practitioner=dr1", &["e1"]);
    check("Encounter", "participant=Practitioner/dr1", &["e1"]);
    check("Encounter", "location=l1", &["e1"]);
    check("Encounter", "service-provider=org1", &["e1"]);
    check("DiagnosticReport", "result=o2", &["dr-1"]);
    check("Coverage", "patient=p2", &["cov1"]);
    check("Coverage", "beneficiary=Patient/p2", &["cov1"]);
    check("Coverage", "payor=Organization/org2", &["cov1"]);
    check("Group", "member=p1", &["g1"]);
    check("Location", "organization=org1", &["l1"]);
    check("Provenance", "target=Observation/o1", &["prov1"]);
    check("Provenance", "patient=p1", &["prov1"]);
}

#[test]
fn chains() {
    check("Observation", "patient.name=peter", &["o1", "o2", "o5"]);
    check("Observation", "patient.family=chalmers", &["o1", "o2"]);
    check(
        "Observation",
        "subject:Patient.name=peter",
        &["o1", "o2", "o5"],
    );
    check("Observation", "subject.name=cohort", &["o4"]);
    check("Observation", "subject:Patient.name=cohort", &[]);
    check("Observation", "patient.identifier=urn:mrn|67890", &["o3"]);
    check(
        "Observation",
        "patient.gender=male,other",
        &["o1", "o2", "o5"],
    );
    check("Observation", "patient.birthdate=lt1975", &["o1", "o2"]);
    check("Observation", "encounter.class=AMB", &["o1"]);
    check("Patient", "general-practitioner.name=smith", &["p1"]);
    check(
        "Patient",
        "general-practitioner:Practitioner.identifier=111",
        &["p1"],
    );
    check("Patient", "organization.name=acme", &["p2"]);
    check("Encounter", "location.address-city=portland", &["e1"]);
    check(
        "Observation",
        "patient.name=peter&code=8480-6",
        &["o1", "o5"],
    );
}

#[test]
fn reverse_chains() {
    check("Patient", "_has:Observation:patient:code=2339-0", &["p2"]);
    check(
        "Patient",
        "_has:Observation:subject:code=8480-6",
        &["p1", "p3"],
    );
    check(
        "Patient",
        "_has:Observation:patient:status=final",
        &["p1", "p2"],
    );
    check(
        "Patient",
        "_has:Observation:patient:status=final&name=jose",
        &["p2"],
    );
    check(
        "Patient",
        "_has:Condition:patient:clinical-status=active",
        &["p1"],
    );
    check("Patient", "_has:Observation:patient:date=ge2021", &["p2"]);
    check(
        "Patient",
        "_has:Observation:patient:code:not=8480-6",
        &["p1", "p2"],
    );
    check("Group", "_has:Observation:subject:code=1234", &["g1"]);
    check(
        "Encounter",
        "_has:Observation:encounter:status=final",
        &["e1"],
    );
    check("Patient", "_has:Observation:patient:code=nothing", &[]);
}

#[test]
fn or_and_combinations() {
    check(
        "Observation",
        "status=final,amended&category=vital-signs",
        &["o1", "o2"],
    );
    check("Observation", "status=final&status=amended", &[]);
    check(
        "Observation",
        "code=8480-6,2339-0&patient=p2,p3",
        &["o3", "o5"],
    );
    check("Patient", "name=peter&name=james", &["p1"]);
    check("Patient", "gender=male,female&birthdate=ge1980", &["p2"]);
}

#[test]
fn sorting_through_search() {
    check("Observation", "_sort=date", &["o1", "o2", "o3", "o4", "o5"]);
    check(
        "Observation",
        "_sort=-date",
        &["o4", "o3", "o2", "o1", "o5"],
    );
    check(
        "Observation",
        "_sort=status,-_id",
        &["o2", "o5", "o3", "o1", "o4"],
    );
    check(
        "Observation",
        "_sort=-value-quantity&patient=p1",
        &["o1", "o2"],
    );
    check("Patient", "_sort=family", &["p1", "p2", "p3"]);
    check("Patient", "_sort=-birthdate", &["p2", "p1", "p3"]);
    check("Patient", "_sort=_lastUpdated", &["p3", "p1", "p2"]);
}

#[test]
fn lenient_mode_ignores_unknown_parameters() {
    let source = MemorySource::new(population());
    let parsed = SearchQuery::parse(
        "Patient",
        &pairs("gender=male&foo=bar&_elements=name"),
        false,
    )
    .unwrap_or_else(|e| panic!("{e}"));
    let ids: Vec<_> = search(&parsed, &source)
        .unwrap_or_default()
        .iter()
        .map(|r| r["id"].clone())
        .collect();
    assert_eq!(ids, [json!("p1")]);
    assert_eq!(parsed.ignored, pairs("foo=bar"));
    assert_eq!(parsed.query_string(), "gender=male&_elements=name");
    assert!(SearchQuery::parse("Patient", &pairs("gender=male&foo=bar"), true).is_err());
}

#[test]
fn patient_fast_path_is_used_only_when_safe() {
    let source = MemorySource::new(population()).with_index(Index::Exact);
    assert_eq!(
        run(&source, "Observation", "patient=p1&code=8480-6"),
        ["o1"]
    );
    assert_eq!(
        source.calls.borrow().as_slice(),
        ["compartment:Observation/p1"]
    );

    // A bare id on `subject` may name a Group, so the index cannot be used.
    let source = MemorySource::new(population()).with_index(Index::Exact);
    assert_eq!(run(&source, "Observation", "subject=g1"), ["o4"]);
    assert_eq!(source.calls.borrow().as_slice(), ["all:Observation"]);

    let source = MemorySource::new(population()).with_index(Index::Exact);
    assert_eq!(run(&source, "Observation", "subject=Patient/p2"), ["o3"]);
    assert_eq!(
        source.calls.borrow().as_slice(),
        ["compartment:Observation/p2"]
    );

    // Several values, or no index: scan everything.
    let source = MemorySource::new(population()).with_index(Index::Exact);
    run(&source, "Observation", "patient=p1,p2");
    assert_eq!(source.calls.borrow().as_slice(), ["all:Observation"]);
    let source = MemorySource::new(population());
    assert_eq!(run(&source, "Observation", "patient=p1"), ["o1", "o2"]);
    assert_eq!(
        source.calls.borrow().as_slice(),
        ["compartment:Observation/p1", "all:Observation"]
    );
}

#[test]
fn id_fast_path_uses_get() {
    let source = MemorySource::new(population());
    assert_eq!(
        run(&source, "Patient", "_id=p2,p1,p2&gender=female"),
        ["p2"]
    );
    assert_eq!(
        source.calls.borrow().as_slice(),
        ["get:Patient/p2", "get:Patient/p1"]
    );
    let source = MemorySource::new(population());
    assert_eq!(run(&source, "Patient", "_id:not=p1"), ["p2", "p3"]);
    assert_eq!(source.calls.borrow().as_slice(), ["all:Patient"]);
    // Any system-qualified form falls back to a scan, so it keeps the token semantics.
    let source = MemorySource::new(population());
    assert_eq!(run(&source, "Patient", "_id=p1,|p2"), ["p1", "p2"]);
    assert_eq!(source.calls.borrow().as_slice(), ["all:Patient"]);
}

#[test]
fn result_order_does_not_depend_on_store_order() {
    let forward = MemorySource::new(population());
    let backward = MemorySource::new(population()).reversed();
    for q in [
        "status=final,amended,cancelled",
        "_sort=status",
        "_sort=-patient",
        "code=8480-6",
    ] {
        assert_eq!(
            run(&forward, "Observation", q),
            run(&backward, "Observation", q),
            "{q}"
        );
    }
}

#[test]
fn single_resource_matching() {
    let source = MemorySource::new(population());
    let all = population();
    let o1 = all
        .iter()
        .find(|r| r["id"] == "o1")
        .cloned()
        .unwrap_or_default();
    let yes = SearchQuery::parse(
        "Observation",
        &pairs("patient.name=peter&code=8480-6"),
        true,
    )
    .unwrap_or_else(|e| panic!("{e}"));
    assert!(matches(&yes.criteria, &o1, &source));
    let no = SearchQuery::parse("Observation", &pairs("patient.name=jose"), true)
        .unwrap_or_else(|e| panic!("{e}"));
    assert!(!matches(&no.criteria, &o1, &source));
    let p2 = all
        .iter()
        .find(|r| r["id"] == "p2")
        .cloned()
        .unwrap_or_default();
    let has = SearchQuery::parse(
        "Patient",
        &pairs("_has:Observation:patient:code=2339-0"),
        true,
    )
    .unwrap_or_else(|e| panic!("{e}"));
    assert!(matches(&has.criteria, &p2, &source));
    assert!(matches(&[], &p2, &source));
}

/// Runs a search with includes and returns `(match ids, included Type/id)`.
fn with_includes(ty: &str, query: &str) -> (Vec<String>, Vec<String>) {
    let source = MemorySource::new(population());
    let parsed = SearchQuery::parse(ty, &pairs(query), true).unwrap_or_else(|e| panic!("{e}"));
    let found = search(&parsed, &source).unwrap_or_default();
    let extra = included(&parsed, &found, &source);
    let key = |r: &Value| {
        format!(
            "{}/{}",
            r["resourceType"].as_str().unwrap_or(""),
            r["id"].as_str().unwrap_or("")
        )
    };
    (
        found
            .iter()
            .map(|r| r["id"].as_str().unwrap_or("").to_owned())
            .collect(),
        extra.iter().map(|r| key(r)).collect(),
    )
}

#[test]
fn includes_and_revincludes() {
    let (m, inc) = with_includes(
        "Observation",
        "code=8480-6,1234&_include=Observation:patient",
    );
    assert_eq!(m, ["o1", "o4", "o5"]);
    assert_eq!(inc, ["Patient/p1", "Patient/p3"]);
    let (_, inc) = with_includes("Observation", "code=1234&_include=Observation:subject");
    assert_eq!(inc, ["Group/g1"]);
    let (_, inc) = with_includes("Observation", "_include=Observation:subject:Group");
    assert_eq!(inc, ["Group/g1"]);
    let (_, inc) = with_includes(
        "Observation",
        "_id=o1&_include=Observation:encounter&_include=Observation:patient",
    );
    assert_eq!(inc, ["Encounter/e1", "Patient/p1"]);
    let (_, inc) = with_includes(
        "Observation",
        "_id=o1,o2&_revinclude=Provenance:target&_revinclude=DiagnosticReport:result",
    );
    assert_eq!(inc, ["Provenance/prov1", "DiagnosticReport/dr-1"]);
    let (_, inc) = with_includes(
        "Patient",
        "_id=p1&_revinclude=Provenance:target&_include=Patient:general-practitioner&_include=Patient:organization",
    );
    assert_eq!(
        inc,
        ["Practitioner/dr1", "Organization/org1", "Provenance/prov1"]
    );
    // Included resources that are already matches are left out; absolute URLs resolve.
    let (m, inc) = with_includes("Patient", "_id=p2&_include=Patient:organization");
    assert_eq!(
        (m, inc),
        (vec!["p2".to_owned()], vec!["Organization/org2".to_owned()])
    );
    let (_, inc) = with_includes("Group", "_revinclude=Observation:subject");
    assert_eq!(inc, ["Observation/o4"]);
    // A match referenced by another match is not repeated; a revinclude found twice appears once.
    let (m, inc) = with_includes("Group", "_include=Group:member");
    assert_eq!(
        (m, inc),
        (
            vec!["g1".to_owned(), "g2".to_owned()],
            vec!["Patient/p1".to_owned()]
        )
    );
    let (_, inc) = with_includes("Group", "_id=g2&_include=Group:member");
    assert_eq!(inc, ["Group/g1"]);
    let (_, inc) = with_includes(
        "Patient",
        "_id=p1&_revinclude=Provenance:patient&_revinclude=Provenance:target",
    );
    assert_eq!(inc, ["Provenance/prov1"]);
}

#[test]
fn compartment_membership() {
    let all = population();
    let of = |id: &str| {
        let r = all
            .iter()
            .find(|r| r["id"] == id)
            .cloned()
            .unwrap_or_default();
        patient_compartment_of(&r)
    };
    assert_eq!(of("p1"), ["p1"]);
    assert_eq!(of("o1"), ["p1"]);
    assert_eq!(of("o4"), Vec::<String>::new());
    assert_eq!(of("cov1"), ["p2"]);
    assert_eq!(of("g1"), ["p1"]);
    assert_eq!(of("prov1"), ["p1"]);
    assert_eq!(of("dr1"), Vec::<String>::new());
}

#[test]
fn references_of_filters_by_target_type() {
    let all = population();
    let prov = all
        .iter()
        .find(|r| r["id"] == "prov1")
        .cloned()
        .unwrap_or_default();
    let target = lookup("Provenance", "target").map(|p| references_of(&prov, p));
    assert_eq!(
        target,
        Some(vec!["Observation/o1".to_owned(), "Patient/p1".to_owned()])
    );
    let patient = lookup("Provenance", "patient").map(|p| references_of(&prov, p));
    assert_eq!(patient, Some(vec!["Patient/p1".to_owned()]));
}

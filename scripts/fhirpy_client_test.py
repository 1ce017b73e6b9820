#!/usr/bin/env python3
"""Drives a running fhirdrill simulator with an independent FHIR client, fhirpy.

Usage: FHIRDRILL_ADMIN_TOKEN=... fhirpy_client_test.py FHIR_BASE_URL SYNTHEA_BUNDLE_JSON
The admin token is the simulator's full-access bearer token (every FHIR request needs one).
Each check prints PASS or FAIL; the last line is "N passed, M failed"; exit 1 on any failure.
"""

import json
import os
import sys

from fhirpy import SyncFHIRClient

from checklist import run_checks

CHECKS = []


def check(function):
    CHECKS.append(function)
    return function


@check
def reads_a_patient(client, _):
    patient = client.resources("Patient").first()
    again = client.reference("Patient", patient["id"]).to_resource()
    assert again["id"] == patient["id"]
    assert again["meta"]["security"][0]["code"] == "HTEST"


@check
def pages_through_a_search(client, _):
    patient = client.resources("Patient").first()
    search = client.resources("Observation").search(patient=patient["id"]).limit(7)
    expected = search.count()
    fetched = search.fetch_all()  # follows the Bundle's next links
    ids = [o["id"] for o in fetched]
    assert expected > 7, f"want several pages, got {expected} observations"
    assert len(ids) == expected, (len(ids), expected)
    assert len(set(ids)) == len(ids), "a page repeated an entry"


@check
def us_core_search_combinations(client, _):
    patient = client.resources("Patient").first()
    pid = patient["id"]
    vitals = client.resources("Observation").search(patient=pid, category="vital-signs").fetch_all()
    assert vitals and all(o["category"][0]["coding"][0]["code"] == "vital-signs" for o in vitals)
    conditions = client.resources("Condition").search(patient=pid, category="problem-list-item").fetch_all()
    assert all(c["subject"]["reference"] == f"Patient/{pid}" for c in conditions)
    encounters = client.resources("Encounter").search(patient=pid, date="ge2000-01-01").fetch_all()
    assert encounters
    mrn = next(i for i in patient["identifier"] if i["type"]["coding"][0]["code"] == "MR")
    found = client.resources("Patient").search(identifier=f"{mrn['system']}|{mrn['value']}").fetch_all()
    assert [p["id"] for p in found] == [pid]
    family = patient["name"][0]["family"]
    found = client.resources("Patient").search(family=family, gender=patient["gender"]).fetch_all()
    assert pid in [p["id"] for p in found]


@check
def includes_referenced_practitioners(client, _):
    bundle = client.resources("MedicationRequest").include("MedicationRequest", "requester").limit(5).fetch_raw()
    modes = {e["search"]["mode"] for e in bundle["entry"]}
    types = {e["resource"]["resourceType"] for e in bundle["entry"] if e["search"]["mode"] == "include"}
    assert modes == {"match", "include"} and types == {"Practitioner"}, (modes, types)


@check
def creates_updates_and_deletes(client, _):
    patient = client.resource("Patient", name=[{"family": "Fhirpy", "given": ["Test"]}], gender="other")
    patient.save()
    assert patient["id"] and patient["meta"]["versionId"] == "1"
    patient["gender"] = "unknown"
    patient.save()
    fetched = client.reference("Patient", patient["id"]).to_resource()
    assert fetched["gender"] == "unknown" and fetched["meta"]["versionId"] == "2"
    patient.delete()
    assert not client.resources("Patient").search(_id=patient["id"]).fetch_all()


@check
def loads_a_synthea_transaction_bundle(client, bundle_path):
    with open(bundle_path, encoding="utf-8") as f:
        bundle = json.load(f)
    response = client.execute("", method="post", data=bundle)
    assert response["type"] == "transaction-response"
    assert all(e["response"]["status"].startswith("201") for e in response["entry"])
    created = [e for e in response["entry"] if e["resource"]["resourceType"] == "Patient"]
    pid = created[0]["resource"]["id"]
    observations = client.resources("Observation").search(patient=pid).fetch_all()
    assert len(observations) == sum(1 for e in bundle["entry"] if e["resource"]["resourceType"] == "Observation")


@check
def server_documents_validate_as_fhir_r4(client, _):
    from fhir.resources import construct_fhir_element

    metadata = client.execute("metadata", method="get")
    construct_fhir_element("CapabilityStatement", metadata)
    patient = client.resources("Patient").first()
    bundle = client.execute("Observation", method="get", params={"patient": patient["id"], "_count": 5})
    construct_fhir_element("Bundle", bundle)
    everything = client.execute(f"Patient/{patient['id']}/$everything", method="get")
    construct_fhir_element("Bundle", everything)
    history = client.execute(f"Patient/{patient['id']}/_history", method="get")
    construct_fhir_element("Bundle", history)
    import requests

    admin = {"Authorization": client.authorization}
    response = requests.get(f"{client.url}/Patient/does-not-exist", headers=admin, timeout=10)
    assert response.status_code == 404, response.status_code
    construct_fhir_element("OperationOutcome", response.json())


@check
def refuses_requests_without_a_token(client, _):
    import requests

    response = requests.get(f"{client.url}/Patient", timeout=10)
    assert response.status_code == 401, response.status_code
    assert response.json()["resourceType"] == "OperationOutcome"
    assert response.headers.get("WWW-Authenticate", "").startswith("Bearer"), response.headers


def main(base_url, bundle_path, admin_token):
    client = SyncFHIRClient(base_url, authorization=f"Bearer {admin_token}")
    return run_checks(CHECKS, client, bundle_path)


if __name__ == "__main__":
    token = os.environ.get("FHIRDRILL_ADMIN_TOKEN")
    if len(sys.argv) != 3 or not token:
        print(__doc__)
        sys.exit(2)
    sys.exit(main(sys.argv[1], sys.argv[2], token))

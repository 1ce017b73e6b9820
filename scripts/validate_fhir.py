#!/usr/bin/env python3
"""Independent check of `fhirdrill generate` output with the `fhir.resources` models.

fhir.resources 6.4.0 (pydantic 1) models FHIR R4 (4.0.1). Every resource of every NDJSON file,
and every transaction bundle under fhir/, must parse into its model. Beyond the schema, checks
what the models cannot: every reference resolves inside the output, every resource carries the
HTEST security label, and the canary values appear in the records.

Usage: validate_fhir.py DIR
Prints one line per failure and ends with "N passed, M failed"; exits 1 if anything failed.
"""

import json
import sys
from pathlib import Path

from fhir.resources import construct_fhir_element
from fhir.resources import FHIRAbstractModel  # noqa: F401  (import proves the R4 package loads)
import fhir.resources

HTEST = ("http://terminology.hl7.org/CodeSystem/v3-ActReason", "HTEST")


def references(value):
    """Yield every `reference` string inside a JSON value."""
    if isinstance(value, dict):
        for key, inner in value.items():
            if key == "reference" and isinstance(inner, str):
                yield inner
            else:
                yield from references(inner)
    elif isinstance(value, list):
        for inner in value:
            yield from references(inner)


def has_test_label(resource):
    security = resource.get("meta", {}).get("security", [])
    return any((s.get("system"), s.get("code")) == HTEST for s in security)


def main(out_dir):
    out = Path(out_dir)
    passed = failed = 0
    failures = []
    known = set()
    resources = []

    def fail(where, why):
        nonlocal failed
        failed += 1
        if len(failures) < 50:
            failures.append(f"FAIL {where}: {why}")

    for path in sorted(out.glob("*.ndjson")):
        if path.name == "canaries.ndjson":
            continue
        for number, line in enumerate(path.open(encoding="utf-8"), 1):
            where = f"{path.name}:{number}"
            try:
                resource = json.loads(line)
                construct_fhir_element(resource["resourceType"], resource)
            except Exception as error:  # the model's message names the field
                fail(where, str(error).replace("\n", " "))
                continue
            if not has_test_label(resource):
                fail(where, "no HTEST security label")
                continue
            known.add(f"{resource['resourceType']}/{resource['id']}")
            resources.append((where, resource))
            passed += 1

    bundles = sorted((out / "fhir").glob("*.json")) if (out / "fhir").is_dir() else []
    for path in bundles:
        where = f"fhir/{path.name}"
        try:
            bundle = json.loads(path.read_text(encoding="utf-8"))
            construct_fhir_element("Bundle", bundle)
            assert bundle["type"] == "transaction", "not a transaction bundle"
            for entry in bundle["entry"]:
                request = entry["request"]
                resource = entry["resource"]
                expected = f"{resource['resourceType']}/{resource['id']}"
                assert request["url"] == expected, f"request.url {request['url']} != {expected}"
                if not resources:
                    known.add(expected)
                    resources.append((where, resource))
        except Exception as error:
            fail(where, str(error).replace("\n", " "))
            continue
        passed += 1

    for where, resource in resources:
        dangling = [r for r in references(resource) if r not in known]
        if dangling:
            fail(where, f"unresolved references {dangling[:3]}")

    canaries = out / "canaries.ndjson"
    if canaries.exists():
        patients = {r["id"]: json.dumps(r) for _, r in resources if r["resourceType"] == "Patient"}
        for number, line in enumerate(canaries.open(encoding="utf-8"), 1):
            canary = json.loads(line)
            record = patients.get(canary["patient_id"])
            if record is None:
                fail(f"canaries.ndjson:{number}", "patient not in output")
                continue
            missing = [k for k in ("mrn", "ssn", "phone", "email", "name", "birth_date")
                       if json.dumps(canary[k]) not in record]
            if missing:
                fail(f"canaries.ndjson:{number}", f"values not in the Patient: {missing}")
            else:
                passed += 1

    for line in failures:
        print(line)
    print(f"fhir.resources {fhir.resources.__version__} (FHIR R4 {fhir.resources.__fhir_version__})")
    print(f"{passed} passed, {failed} failed")
    return 1 if failed or not passed else 0


if __name__ == "__main__":
    if len(sys.argv) != 2:
        print(__doc__)
        sys.exit(2)
    sys.exit(main(sys.argv[1]))

#!/usr/bin/env python3
"""Validates SARIF files against the official SARIF 2.1.0 JSON schema.

Usage: scripts/validate_sarif.py [--schema SCHEMA] FILE...

The schema defaults to ../shared/schemas/sarif-schema-2.1.0.json, resolved from the
repository root (the folder above this script's folder). Prints one line per invalid file
with its errors, then "N valid, M invalid". Exit status: 0 all valid, 1 any invalid,
2 cannot run (no files, unreadable schema).
"""

import argparse
import json
import sys
from pathlib import Path

import jsonschema

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_SCHEMA = ROOT.parent / "shared" / "schemas" / "sarif-schema-2.1.0.json"
MAX_ERRORS_SHOWN = 20


def load_validator(schema_path):
    schema = json.loads(Path(schema_path).read_text(encoding="utf-8"))
    cls = jsonschema.validators.validator_for(schema)
    cls.check_schema(schema)
    return cls(schema)


def errors_of(validator, path):
    try:
        document = json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, ValueError) as e:
        return [f"cannot read as JSON: {e}"]
    errors = sorted(validator.iter_errors(document), key=lambda e: list(e.absolute_path))
    return [
        f"at /{'/'.join(str(p) for p in e.absolute_path)}: {e.message}" for e in errors
    ]


def main(argv):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--schema", default=str(DEFAULT_SCHEMA), help="the SARIF 2.1.0 schema")
    parser.add_argument("files", nargs="+", help="SARIF files to validate")
    args = parser.parse_args(argv)
    try:
        validator = load_validator(args.schema)
    except (OSError, ValueError, jsonschema.SchemaError) as e:
        print(f"cannot load the schema {args.schema}: {e}", file=sys.stderr)
        return 2
    valid = invalid = 0
    for path in args.files:
        errors = errors_of(validator, path)
        if errors:
            invalid += 1
            print(f"{path}: INVALID ({len(errors)} errors)")
            for error in errors[:MAX_ERRORS_SHOWN]:
                print(f"  {error}")
        else:
            valid += 1
    print(f"{valid} valid, {invalid} invalid")
    return 1 if invalid else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

#!/usr/bin/env python3
"""Prints a patient access token for the first panel patient of clinician1, obtained through the
real SMART flow (pre-decided authorization, authorize, code exchange with PKCE S256).

Usage: patient_token.py BASE_URL ADMIN_TOKEN   (prints "<patient id> <access token>")
"""
import base64
import hashlib
import http.client
import json
import sys
import urllib.parse

base, admin = sys.argv[1], sys.argv[2]
host = urllib.parse.urlparse(base).netloc


def call(method, path, body=None, headers=None):
    conn = http.client.HTTPConnection(host)
    conn.request(method, path, body=body, headers=headers or {})
    response = conn.getresponse()
    return response.status, dict(response.getheaders()), response.read()


auth = {"Authorization": f"Bearer {admin}"}
_, _, body = call("GET", "/_sim/registrations", headers=auth)
env = json.loads(body)["environments"][0]
doctor = next(u for u in env["users"] if u["username"] == "clinician1")
patient = doctor["patients"][0]
decision = json.dumps({"client_id": "fhirdrill-demo-public", "user": "clinician1", "patient": patient})
call("POST", "/_sim/authorizations", decision, {**auth, "Content-Type": "application/json"})
verifier = "v" * 50
challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(b"=").decode()
redirect = "http://127.0.0.1:9/callback"
query = urllib.parse.urlencode({
    "response_type": "code", "client_id": "fhirdrill-demo-public", "redirect_uri": redirect,
    "scope": "launch/patient patient/*.rs", "state": "s", "aud": env["fhir_base"],
    "code_challenge": challenge, "code_challenge_method": "S256"})
status, headers, _ = call("GET", f"/sandbox/auth/authorize?{query}")
location = {k.lower(): v for k, v in headers.items()}["location"]
code = urllib.parse.parse_qs(urllib.parse.urlparse(location).query)["code"][0]
form = urllib.parse.urlencode({"grant_type": "authorization_code", "code": code, "redirect_uri": redirect,
                               "client_id": "fhirdrill-demo-public", "code_verifier": verifier})
_, _, body = call("POST", "/sandbox/auth/token", form, {"Content-Type": "application/x-www-form-urlencoded"})
print(patient, json.loads(body)["access_token"])

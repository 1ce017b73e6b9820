#!/usr/bin/env python3
"""Drives fhirdrill's SMART Backend Services flow with an independent JWT library, PyJWT.

Usage: FHIRDRILL_ADMIN_TOKEN=... backend_client_test.py SERVER_URL
SERVER_URL is the simulator's root (http://127.0.0.1:PORT). The script reads the registrations
with the admin token, rebuilds each backend client's private key from its published private JWK
with PyJWT (an independent check of those JWKs), signs its own client assertions and exercises the
token, FHIR, introspection and JWKS endpoints, then tries assertions the server must refuse.
Each check prints PASS or FAIL; the last line is "N passed, M failed"; exit 1 on any failure.
Talks to the given server only (loopback in CI); uses nothing but PyJWT, cryptography and stdlib.
"""

import base64
import hashlib
import hmac
import json
import os
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
import uuid

import jwt
from jwt.algorithms import ECAlgorithm, RSAAlgorithm

from checklist import run_checks

ASSERTION_TYPE = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"
# Loopback only: never route these requests through a proxy from the environment.
OPENER = urllib.request.build_opener(urllib.request.ProxyHandler({}))
SCOPE = "system/Patient.rs system/Observation.rs"
BACKEND_CLIENTS = {"fhirdrill-backend-rs384": "RS384", "fhirdrill-backend-es384": "ES384"}
CHECKS = []


def check(function):
    CHECKS.append(function)
    return function


class Response:
    """Status, lower-cased headers and body of one HTTP exchange."""

    def __init__(self, status, headers, body):
        self.status = status
        self.headers = {k.lower(): v for k, v in headers.items()}
        self.body = body

    def json(self):
        return json.loads(self.body)

    def __repr__(self):
        return f"HTTP {self.status} {self.body[:400]!r}"


def http(url, form=None, headers=None):
    """GET, or POST an urlencoded form; returns a Response for every status, 4xx/5xx included."""
    headers = dict(headers or {})
    data = None
    if form is not None:
        data = urllib.parse.urlencode(form).encode()
        headers["Content-Type"] = "application/x-www-form-urlencoded"
    request = urllib.request.Request(url, data=data, headers=headers)
    try:
        with OPENER.open(request, timeout=30) as response:
            return Response(response.status, dict(response.headers), response.read())
    except urllib.error.HTTPError as error:
        return Response(error.code, dict(error.headers), error.read())


class Context:
    """What every check gets: the environment's registration and the admin token."""

    def __init__(self, server, admin_token):
        self.server = server.rstrip("/")
        self.admin_token = admin_token
        response = http(f"{self.server}/_sim/registrations", headers=self.admin())
        assert response.status == 200, response
        self.env = next(e for e in response.json()["environments"] if e["name"] == "sandbox")
        self.clients = {c["client_id"]: c for c in self.env["clients"]}

    def admin(self):
        return {"Authorization": f"Bearer {self.admin_token}"}

    def backend(self, client_id):
        client = self.clients[client_id]
        assert client["kind"] == "confidential-asymmetric", client["kind"]
        assert client["alg"] == BACKEND_CLIENTS[client_id], client["alg"]
        return client


def private_key(client):
    """The client's private key, rebuilt by PyJWT from the JWK the registrations publish."""
    jwk = json.dumps(client["private_jwk"])
    if client["alg"].startswith("RS"):
        return RSAAlgorithm.from_jwk(jwk)
    return ECAlgorithm.from_jwk(jwk)


def assertion(ctx, client, **overrides):
    """A client assertion for client, signed with its key; overrides replace or drop claims."""
    now = int(time.time())
    claims = {
        "iss": client["client_id"],
        "sub": client["client_id"],
        "aud": ctx.env["token_url"],
        "iat": now,
        "exp": now + 240,
        "jti": uuid.uuid4().hex,
    }
    claims.update(overrides)
    return jwt.encode(claims, private_key(client), algorithm=client["alg"], headers={"kid": client["kid"]})


def token_request(ctx, signed, scope=SCOPE):
    form = {
        "grant_type": "client_credentials",
        "scope": scope,
        "client_assertion_type": ASSERTION_TYPE,
        "client_assertion": signed,
    }
    return http(ctx.env["token_url"], form=form)


def expect_error(response, status, error):
    assert response.status == status, f"want {status} {error}, got {response!r}"
    body = response.json()
    assert body.get("error") == error, f"want error {error}, got {body}"
    assert response.headers.get("cache-control") == "no-store", response.headers


def get_token(ctx, client_id):
    client = ctx.backend(client_id)
    response = token_request(ctx, assertion(ctx, client))
    assert response.status == 200, response
    assert response.headers.get("cache-control") == "no-store", response.headers
    body = response.json()
    assert body["token_type"].lower() == "bearer", body
    assert body["expires_in"] > 0, body
    assert set(body["scope"].split()) == set(SCOPE.split()), body["scope"]
    assert "refresh_token" not in body, "backend services must not get a refresh token"
    return body["access_token"]


def reads_patients_and_introspects(ctx, client_id):
    token = get_token(ctx, client_id)
    bearer = {"Authorization": f"Bearer {token}", "Accept": "application/fhir+json"}
    response = http(f"{ctx.env['fhir_base']}/Patient?_count=5", headers=bearer)
    assert response.status == 200, response
    bundle = response.json()
    assert bundle["resourceType"] == "Bundle" and bundle["type"] == "searchset", bundle.get("type")
    assert 0 < len(bundle["entry"]) <= 5, len(bundle["entry"])
    assert all(e["resource"]["resourceType"] == "Patient" for e in bundle["entry"])
    # The granted scopes do not cover Condition: the server must refuse it.
    response = http(f"{ctx.env['fhir_base']}/Condition?_count=1", headers=bearer)
    assert response.status == 403, f"Condition with {SCOPE}: {response!r}"
    # Introspection, authenticated as the client itself with a fresh assertion (RFC 7662 + 7523).
    client = ctx.backend(client_id)
    form = {
        "token": token,
        "client_assertion_type": ASSERTION_TYPE,
        "client_assertion": assertion(ctx, client),
    }
    response = http(ctx.env["introspect_url"], form=form)
    assert response.status == 200, response
    info = response.json()
    assert info["active"] is True, info
    assert info["client_id"] == client_id, info
    assert set(info["scope"].split()) == set(SCOPE.split()), info
    form["client_assertion"] = assertion(ctx, client)
    form["token"] = token[:-4] + ("AAAA" if not token.endswith("AAAA") else "BBBB")
    response = http(ctx.env["introspect_url"], form=form)
    assert response.status == 200 and response.json() == {"active": False}, response


@check
def rs384_backend_reads_patients_and_introspects(ctx):
    reads_patients_and_introspects(ctx, "fhirdrill-backend-rs384")


@check
def es384_backend_reads_patients_and_introspects(ctx):
    reads_patients_and_introspects(ctx, "fhirdrill-backend-es384")


@check
def access_token_verifies_against_server_jwks(ctx):
    token = get_token(ctx, "fhirdrill-backend-es384")
    response = http(ctx.env["jwks_url"])
    assert response.status == 200, response
    header = jwt.get_unverified_header(token)
    assert header["alg"] == "ES256", header
    keys = [k for k in response.json()["keys"] if k.get("kid") == header["kid"]]
    assert len(keys) == 1, f"kid {header['kid']} is not (uniquely) in the JWKS"
    signing_key = jwt.PyJWK(keys[0])
    claims = jwt.decode(
        token,
        signing_key,
        algorithms=["ES256"],
        audience=ctx.env["fhir_base"],
        issuer=ctx.env["issuer"],
        options={"require": ["iss", "aud", "exp", "iat", "jti"]},
    )
    assert claims["client_id"] == "fhirdrill-backend-es384", claims
    assert set(claims["scope"].split()) == set(SCOPE.split()), claims
    # A token whose payload was changed after signing must not verify with the same key.
    head, payload, signature = token.split(".")
    forged = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    forged["scope"] = "system/*.cruds"
    forged_payload = base64.urlsafe_b64encode(json.dumps(forged).encode()).rstrip(b"=").decode()
    try:
        jwt.decode(f"{head}.{forged_payload}.{signature}", signing_key, algorithms=["ES256"],
                   audience=ctx.env["fhir_base"], issuer=ctx.env["issuer"])
    except jwt.InvalidSignatureError:
        pass
    else:
        raise AssertionError("a tampered token verified")


@check
def reused_jti_is_refused(ctx):
    client = ctx.backend("fhirdrill-backend-rs384")
    signed = assertion(ctx, client)
    first = token_request(ctx, signed)
    assert first.status == 200, first
    expect_error(token_request(ctx, signed), 401, "invalid_client")


@check
def assertion_expiring_in_ten_minutes_is_refused(ctx):
    client = ctx.backend("fhirdrill-backend-es384")
    expect_error(token_request(ctx, assertion(ctx, client, exp=int(time.time()) + 600)), 401, "invalid_client")


@check
def assertion_for_the_fhir_base_is_refused(ctx):
    client = ctx.backend("fhirdrill-backend-rs384")
    signed = assertion(ctx, client, aud=ctx.env["fhir_base"])
    expect_error(token_request(ctx, signed), 401, "invalid_client")


@check
def hs384_assertion_is_refused(ctx):
    client = ctx.backend("fhirdrill-backend-rs384")
    now = int(time.time())
    claims = {"iss": client["client_id"], "sub": client["client_id"], "aud": ctx.env["token_url"],
              "exp": now + 240, "jti": uuid.uuid4().hex}
    signed = jwt.encode(claims, "a-shared-secret-the-server-never-registered-0123456789",
                        algorithm="HS384", headers={"kid": client["kid"]})
    expect_error(token_request(ctx, signed), 401, "invalid_client")


@check
def hs384_keyed_with_the_public_key_is_refused(ctx):
    """Algorithm confusion: HMAC keyed with the client's registered public key (PEM and JWK)."""
    from cryptography.hazmat.primitives import serialization

    client = ctx.backend("fhirdrill-backend-rs384")
    public = private_key(client).public_key()
    pem = public.public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    public_jwk = {k: v for k, v in client["private_jwk"].items() if k in ("kty", "n", "e", "kid", "alg", "use")}
    for secret in (pem, json.dumps(public_jwk).encode()):
        now = int(time.time())
        header = {"alg": "HS384", "typ": "JWT", "kid": client["kid"]}
        claims = {"iss": client["client_id"], "sub": client["client_id"], "aud": ctx.env["token_url"],
                  "exp": now + 240, "jti": uuid.uuid4().hex}
        encode = lambda part: base64.urlsafe_b64encode(part).rstrip(b"=").decode()  # noqa: E731
        signing_input = f"{encode(json.dumps(header).encode())}.{encode(json.dumps(claims).encode())}"
        mac = hmac.new(secret, signing_input.encode(), hashlib.sha384).digest()
        expect_error(token_request(ctx, f"{signing_input}.{encode(mac)}"), 401, "invalid_client")


@check
def unsigned_assertion_is_refused(ctx):
    client = ctx.backend("fhirdrill-backend-es384")
    now = int(time.time())
    claims = {"iss": client["client_id"], "sub": client["client_id"], "aud": ctx.env["token_url"],
              "exp": now + 240, "jti": uuid.uuid4().hex}
    signed = jwt.encode(claims, None, algorithm="none", headers={"kid": client["kid"]})
    expect_error(token_request(ctx, signed), 401, "invalid_client")


@check
def assertion_signed_by_the_other_client_is_refused(ctx):
    """The ES384 client's key signing an assertion that claims to be the RS384 client."""
    rs = ctx.backend("fhirdrill-backend-rs384")
    es = ctx.backend("fhirdrill-backend-es384")
    now = int(time.time())
    claims = {"iss": rs["client_id"], "sub": rs["client_id"], "aud": ctx.env["token_url"],
              "exp": now + 240, "jti": uuid.uuid4().hex}
    signed = jwt.encode(claims, private_key(es), algorithm="ES384", headers={"kid": es["kid"]})
    expect_error(token_request(ctx, signed), 401, "invalid_client")


@check
def assertion_signed_with_an_unregistered_key_is_refused(ctx):
    """Right alg and kid, but signed with a fresh key the server never saw: the signature counts."""
    from cryptography.hazmat.primitives.asymmetric import ec, rsa

    for client_id, fresh in (("fhirdrill-backend-rs384", rsa.generate_private_key(65537, 2048)),
                             ("fhirdrill-backend-es384", ec.generate_private_key(ec.SECP384R1()))):
        client = ctx.backend(client_id)
        now = int(time.time())
        claims = {"iss": client_id, "sub": client_id, "aud": ctx.env["token_url"],
                  "exp": now + 240, "jti": uuid.uuid4().hex}
        signed = jwt.encode(claims, fresh, algorithm=client["alg"], headers={"kid": client["kid"]})
        expect_error(token_request(ctx, signed), 401, "invalid_client")


@check
def patient_scope_for_a_backend_client_is_refused(ctx):
    client = ctx.backend("fhirdrill-backend-es384")
    expect_error(token_request(ctx, assertion(ctx, client), scope="patient/*.rs"), 400, "invalid_scope")


def main(server, admin_token):
    ctx = Context(server, admin_token)
    return run_checks(CHECKS, ctx)


if __name__ == "__main__":
    token = os.environ.get("FHIRDRILL_ADMIN_TOKEN")
    if len(sys.argv) != 2 or not token:
        print(__doc__)
        sys.exit(2)
    sys.exit(main(sys.argv[1], token))

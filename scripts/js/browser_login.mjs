// A practitioner signs in through fhirdrill's real HTML pages in headless Chromium (driven by
// playwright-core), picks a patient, narrows the grant on the consent page, and the resulting
// token is checked against the FHIR API.
//
// Usage: FHIRDRILL_ADMIN_TOKEN=... node browser_login.mjs SERVER_URL
// SERVER_URL is the simulator's root (http://127.0.0.1:PORT). CHROMIUM (default /usr/bin/chromium)
// names the browser; SCREENSHOT_DIR, if set, receives a PNG of every page the browser visits.
// Each check prints PASS or FAIL; the last line is "N passed, M failed"; the exit code is 1 on any
// failure.

import http from "node:http";
import path from "node:path";
import { createHash, createPublicKey, randomBytes, verify } from "node:crypto";
import { chromium } from "playwright-core";
import { checklist } from "./checklist.mjs";

const CLIENT_ID = "fhirdrill-demo-public";
const USER = "clinician1";
const SCOPE = "launch/patient openid fhirUser offline_access patient/Patient.rs patient/Observation.rs";
const DROPPED = "patient/Observation.rs";

const [server] = process.argv.slice(2);
const adminToken = process.env.FHIRDRILL_ADMIN_TOKEN;
const executablePath = process.env.CHROMIUM || "/usr/bin/chromium";
const screenshotDir = process.env.SCREENSHOT_DIR;
if (!server || !adminToken) {
  console.error("usage: FHIRDRILL_ADMIN_TOKEN=... node browser_login.mjs SERVER_URL");
  process.exit(2);
}

const base64url = (buffer) => Buffer.from(buffer).toString("base64url");

/** The redirect URI's server: records the first callback query and answers 200 "done". */
function startCallbackServer() {
  let deliver;
  const received = new Promise((resolve) => {
    deliver = resolve;
  });
  const callback = http.createServer((req, res) => {
    const url = new URL(req.url, "http://127.0.0.1");
    if (url.pathname !== "/callback") {
      res.writeHead(404, { "content-type": "text/plain" });
      res.end("not found");
      return;
    }
    res.writeHead(200, { "content-type": "text/plain" });
    res.end("done");
    deliver(url.searchParams);
  });
  return new Promise((resolve) => callback.listen(0, "127.0.0.1", () => resolve({ callback, received })));
}

function withTimeout(promise, ms, what) {
  let timer;
  const timeout = new Promise((_, reject) => {
    timer = setTimeout(() => reject(new Error(`timed out after ${ms} ms waiting for ${what}`)), ms);
  });
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}

/** Checks an RS256/ES256 id_token with node:crypto against the server's JWKS; returns its claims or {error}. */
async function verifyIdToken(jwt, env) {
  const [head, body, signature] = jwt.split(".");
  const header = JSON.parse(Buffer.from(head, "base64url").toString("utf8"));
  const claims = JSON.parse(Buffer.from(body, "base64url").toString("utf8"));
  const { keys } = await (await fetch(env.jwks_url)).json();
  const jwk = keys.find((k) => k.kid === header.kid);
  if (!jwk) return { error: `kid ${header.kid} not in the JWKS` };
  if (header.alg !== jwk.alg || !["RS256", "ES256"].includes(header.alg)) return { error: `alg ${header.alg}` };
  const key = createPublicKey({ key: jwk, format: "jwk" });
  const options = header.alg === "ES256" ? { key, dsaEncoding: "ieee-p1363" } : key;
  const ok = verify("sha256", Buffer.from(`${head}.${body}`), options, Buffer.from(signature, "base64url"));
  if (!ok) return { error: "bad signature" };
  if (claims.iss !== env.issuer) return { error: `iss ${claims.iss}` };
  if (!(claims.exp > Date.now() / 1000)) return { error: `exp ${claims.exp}` };
  return claims;
}

async function main() {
  const { check, summary } = checklist();

  const admin = { authorization: `Bearer ${adminToken}` };
  const registrations = await (await fetch(`${server}/_sim/registrations`, { headers: admin })).json();
  const env = registrations.environments.find((e) => e.name === "sandbox");
  const user = env.users.find((u) => u.username === USER);
  const { callback, received } = await startCallbackServer();
  const redirectUri = `http://127.0.0.1:${callback.address().port}/callback`;
  const verifier = base64url(randomBytes(32));
  const challenge = base64url(createHash("sha256").update(verifier).digest());
  const state = base64url(randomBytes(16));
  const authorizeUrl = new URL(env.authorize_url);
  for (const [key, value] of Object.entries({
    response_type: "code",
    client_id: CLIENT_ID,
    redirect_uri: redirectUri,
    scope: SCOPE,
    state,
    aud: env.fhir_base,
    code_challenge: challenge,
    code_challenge_method: "S256",
  })) {
    authorizeUrl.searchParams.set(key, value);
  }

  let browser;
  let shot = 0;
  const snap = async (page, name) => {
    if (screenshotDir) await page.screenshot({ path: path.join(screenshotDir, `${++shot}-${name}.png`), fullPage: true });
  };
  try {
    browser = await chromium.launch({ executablePath, args: ["--no-sandbox", "--disable-dev-shm-usage"], timeout: 60_000 });
    const page = await browser.newPage();
    page.setDefaultTimeout(30_000);

    await page.goto(authorizeUrl.href);
    await snap(page, "login");
    check("login_page_shows_a_form", (await page.locator("form #username").count()) === 1, await page.title());
    await page.fill("#username", user.username);
    await page.fill("#password", user.password);
    await page.click("#sign-in");

    await page.waitForSelector("input[name=patient]");
    await snap(page, "picker");
    const offered = await page.locator("input[name=patient]").evaluateAll((inputs) => inputs.map((i) => i.value));
    check(
      "picker_offers_exactly_the_practitioners_panel",
      offered.length === user.patients.length && offered.every((id) => user.patients.includes(id)),
      { offered, panel: user.patients },
    );
    const picked = offered[0];
    await page.locator("input[name=patient]").first().check();
    await page.click("#pick");

    await page.waitForSelector("#allow");
    await snap(page, "consent");
    const boxes = await page
      .locator("input[type=checkbox][name=scope]")
      .evaluateAll((inputs) => inputs.map((i) => ({ id: i.id, value: i.value, checked: i.checked })));
    check(
      "consent_lists_every_requested_scope_ticked",
      boxes.length === SCOPE.split(" ").length &&
        SCOPE.split(" ").every((s) => boxes.some((b) => b.value === s && b.checked)) &&
        boxes.every((b, i) => b.id === `scope-${i}`),
      boxes,
    );
    const dropped = boxes.find((b) => b.value === DROPPED);
    if (dropped) await page.uncheck(`#${dropped.id}`);
    await snap(page, "consent-narrowed");
    await page.click("#allow");
    const query = await withTimeout(received, 30_000, "the redirect to the callback");
    await page.waitForLoadState();
    await snap(page, "callback");
    check("browser_reached_the_callback", (await page.textContent("body")).trim() === "done", page.url());

    check("state_is_echoed", query.get("state") === state, query.get("state"));
    check("iss_is_the_issuer", query.get("iss") === env.issuer, query.get("iss"));
    check("no_error_in_the_callback", !query.get("error"), query.toString());
    const code = query.get("code");

    const exchange = () =>
      fetch(env.token_url, {
        method: "POST",
        headers: { "content-type": "application/x-www-form-urlencoded" },
        body: new URLSearchParams({
          grant_type: "authorization_code",
          code,
          redirect_uri: redirectUri,
          client_id: CLIENT_ID,
          code_verifier: verifier,
        }),
      });
    const tokenResponse = await exchange();
    const tokenText = await tokenResponse.text();
    check("code_exchange_succeeds", tokenResponse.status === 200, `${tokenResponse.status} ${tokenText}`);
    if (tokenResponse.status !== 200) return summary();
    const token = JSON.parse(tokenText);
    const granted = (token.scope || "").split(" ");
    check("granted_scope_lacks_the_unticked_scope", !granted.includes(DROPPED), token.scope);
    check("granted_scope_keeps_patient_read", granted.includes("patient/Patient.rs"), token.scope);
    check("patient_is_the_picked_one", token.patient === picked, { patient: token.patient, picked });
    check("offline_access_gives_a_refresh_token", granted.includes("offline_access") && Boolean(token.refresh_token), token.scope);
    const idToken = token.id_token ? await verifyIdToken(token.id_token, env) : { error: "no id_token" };
    check("id_token_verifies_against_the_jwks", !idToken.error && idToken.aud === CLIENT_ID, idToken);
    // fhirUser is a resource URL (SMART App Launch 2: absolute, or relative to the FHIR base).
    check(
      "id_token_names_the_practitioner",
      [user.fhirUser, `${env.fhir_base}/${user.fhirUser}`].includes(idToken.fhirUser),
      idToken.fhirUser,
    );

    const bearer = { authorization: `Bearer ${token.access_token}`, accept: "application/fhir+json" };
    const observations = await fetch(`${env.fhir_base}/Observation?patient=${encodeURIComponent(picked)}`, { headers: bearer });
    const observationsBody = await observations.text();
    check("observations_are_refused", observations.status === 403, `${observations.status} ${observationsBody.slice(0, 300)}`);
    const patient = await fetch(`${env.fhir_base}/Patient/${encodeURIComponent(picked)}`, { headers: bearer });
    const patientBody = await patient.text();
    check(
      "patient_is_readable",
      patient.status === 200 && JSON.parse(patientBody).id === picked,
      `${patient.status} ${patientBody.slice(0, 300)}`,
    );

    // RFC 6749 4.1.2: a second use of the code is refused, and (SHOULD) the tokens issued for it
    // are revoked, the refresh token included.
    const replay = await exchange();
    const replayBody = await replay.text();
    check("code_is_single_use", replay.status === 400 && JSON.parse(replayBody).error === "invalid_grant", `${replay.status} ${replayBody}`);
    const after = await fetch(`${env.fhir_base}/Patient/${encodeURIComponent(picked)}`, { headers: bearer });
    check("replay_revokes_the_access_token", after.status === 401, after.status);
    const refresh = await fetch(env.token_url, {
      method: "POST",
      headers: { "content-type": "application/x-www-form-urlencoded" },
      body: new URLSearchParams({ grant_type: "refresh_token", refresh_token: token.refresh_token, client_id: CLIENT_ID }),
    });
    const refreshBody = await refresh.text();
    check(
      "replay_revokes_the_refresh_token",
      refresh.status === 400 && JSON.parse(refreshBody).error === "invalid_grant",
      `${refresh.status} ${refreshBody}`,
    );
  } catch (error) {
    check("browser_login", false, error && error.stack ? error.stack : String(error));
  } finally {
    if (browser) await browser.close();
    callback.close();
  }
  return summary();
}

process.exitCode = await main();

// A SMART standalone launch by an independent client library, fhirclient (Node API), against a
// running fhirdrill simulator.
//
// Usage: FHIRDRILL_ADMIN_TOKEN=... node fhirclient_standalone.mjs SERVER_URL
// SERVER_URL is the simulator's root (http://127.0.0.1:PORT). The script starts a tiny app on a
// random loopback port whose /launch and /callback routes are fhirclient's authorize() and
// ready(), pre-decides the authorization for patient1 through POST /_sim/authorizations, then
// walks the app like a browser (fetch, 3xx followed by hand, cookies carried) and checks that the
// app read the right patient. Each check prints PASS or FAIL; the last line is
// "N passed, M failed"; the exit code is 1 on any failure.

import http from "node:http";
import { randomBytes } from "node:crypto";
import smart from "fhirclient/lib/entry/node.js";
import { checklist } from "./checklist.mjs";

const CLIENT_ID = "fhirdrill-demo-public";
const SCOPE = "launch/patient openid fhirUser patient/*.rs";
const USER = "patient1";

const [server] = process.argv.slice(2);
const adminToken = process.env.FHIRDRILL_ADMIN_TOKEN;
if (!server || !adminToken) {
  console.error("usage: FHIRDRILL_ADMIN_TOKEN=... node fhirclient_standalone.mjs SERVER_URL");
  process.exit(2);
}

/** An in-memory fhirclient Storage per browser session (the session id travels in a cookie). */
class MemoryStorage {
  constructor() {
    this.values = new Map();
  }
  async get(key) {
    return this.values.get(key);
  }
  async set(key, value) {
    this.values.set(key, value);
    return value;
  }
  async unset(key) {
    return this.values.delete(key);
  }
}

/** The sample app: /launch and /callback, one MemoryStorage per session cookie. */
function startApp(fhirBase) {
  const sessions = new Map();
  const app = http.createServer(async (req, res) => {
    try {
      const cookie = /(?:^|;\s*)sid=([0-9a-f]+)/.exec(req.headers.cookie || "");
      let sid = cookie && sessions.has(cookie[1]) ? cookie[1] : null;
      if (!sid) {
        sid = randomBytes(16).toString("hex");
        sessions.set(sid, new MemoryStorage());
        res.setHeader("Set-Cookie", `sid=${sid}; Path=/; HttpOnly; SameSite=Lax`);
      }
      const storage = sessions.get(sid);
      const { pathname } = new URL(req.url, "http://127.0.0.1");
      if (pathname === "/launch") {
        await smart(req, res, storage).authorize({
          iss: fhirBase,
          clientId: CLIENT_ID,
          scope: SCOPE,
          redirectUri: `http://127.0.0.1:${app.address().port}/callback`,
          pkceMode: "required",
        });
        return;
      }
      if (pathname === "/callback") {
        const client = await smart(req, res, storage).ready();
        const patient = await client.request(`Patient/${client.patient.id}`);
        const result = {
          patientContext: client.patient.id,
          patient,
          fhirUser: client.getFhirUser(),
          userType: client.getUserType(),
          grantedScope: client.state.tokenResponse.scope,
          usedPkce: Boolean(client.state.codeVerifier),
        };
        // The same token must not open another patient's record.
        const other = req.headers["x-other-patient"];
        if (other) {
          try {
            await client.request(`Patient/${other}`);
            result.otherPatientStatus = 200;
          } catch (error) {
            result.otherPatientStatus = error.status || error.statusCode || String(error);
          }
        }
        res.writeHead(200, { "content-type": "application/json" });
        res.end(JSON.stringify(result));
        return;
      }
      res.writeHead(404, { "content-type": "text/plain" });
      res.end("not found");
    } catch (error) {
      res.writeHead(500, { "content-type": "text/plain" });
      res.end(`app error: ${error && error.stack ? error.stack : error}`);
    }
  });
  return new Promise((resolve) => app.listen(0, "127.0.0.1", () => resolve(app)));
}

/** A browser stand-in: GET, follow redirects by hand, keep cookies per origin. */
async function browse(startUrl, extraHeaders = {}) {
  const jar = new Map(); // origin -> Map(name -> value)
  const hops = [];
  let url = startUrl;
  for (let hop = 0; hop < 10; hop++) {
    const origin = new URL(url).origin;
    const cookies = jar.get(origin);
    const headers = { ...extraHeaders };
    if (cookies && cookies.size) {
      headers.cookie = [...cookies].map(([k, v]) => `${k}=${v}`).join("; ");
    }
    const response = await fetch(url, { redirect: "manual", headers });
    for (const line of response.headers.getSetCookie()) {
      const [pair] = line.split(";");
      const eq = pair.indexOf("=");
      if (!jar.has(origin)) jar.set(origin, new Map());
      jar.get(origin).set(pair.slice(0, eq).trim(), pair.slice(eq + 1).trim());
    }
    hops.push({ url, status: response.status });
    if (response.status >= 300 && response.status < 400) {
      const location = response.headers.get("location");
      if (!location) throw new Error(`${response.status} without Location at ${url}`);
      url = new URL(location, url).href;
      continue;
    }
    return { response, body: await response.text(), hops };
  }
  throw new Error(`too many redirects: ${JSON.stringify(hops)}`);
}

async function main() {
  const admin = { authorization: `Bearer ${adminToken}` };
  const registrations = await (await fetch(`${server}/_sim/registrations`, { headers: admin })).json();
  const env = registrations.environments.find((e) => e.name === "sandbox");
  const user = env.users.find((u) => u.username === USER);
  const otherPatient = env.users.find((u) => u.role === "patient" && u.username !== USER).patient;
  const app = await startApp(env.fhir_base);
  const appUrl = `http://127.0.0.1:${app.address().port}`;

  const { check, summary } = checklist();

  try {
    const decided = await fetch(`${server}/_sim/authorizations`, {
      method: "POST",
      headers: { ...admin, "content-type": "application/json" },
      body: JSON.stringify({ client_id: CLIENT_ID, user: USER }),
    });
    check("pre_decides_the_authorization", decided.ok, `${decided.status} ${await decided.text()}`);

    const { response, body, hops } = await browse(`${appUrl}/launch`, { "x-other-patient": otherPatient });
    const authorizeHop = hops.find((h) => h.url.startsWith(env.authorize_url));
    const callbackHop = hops.find((h) => h.url.startsWith(`${appUrl}/callback`));
    check("app_redirects_to_the_authorize_endpoint", authorizeHop !== undefined, hops);
    if (authorizeHop) {
      const query = new URL(authorizeHop.url).searchParams;
      check(
        "authorize_request_carries_pkce_s256_and_aud",
        query.get("code_challenge_method") === "S256" && query.get("code_challenge") && query.get("aud") === env.fhir_base,
        authorizeHop.url,
      );
    }
    check("server_redirects_to_the_callback", callbackHop !== undefined && authorizeHop?.status === 303, hops);
    if (callbackHop) {
      const query = new URL(callbackHop.url).searchParams;
      check("callback_has_code_state_and_iss", query.get("code") && query.get("state") && query.get("iss") === env.issuer, callbackHop.url);
    }
    check("callback_completes", response.status === 200, `${response.status} ${body.slice(0, 2000)}`);
    if (response.status === 200) {
      const result = JSON.parse(body);
      check("patient_context_is_the_users_patient", result.patientContext === user.patient, result.patientContext);
      check(
        "app_read_that_patient",
        result.patient?.resourceType === "Patient" && result.patient?.id === user.patient,
        { resourceType: result.patient?.resourceType, id: result.patient?.id },
      );
      check("id_token_fhir_user", result.fhirUser === user.fhirUser && result.userType === "Patient", [result.fhirUser, result.userType]);
      check("pkce_was_used", result.usedPkce === true);
      check("granted_scope_includes_patient_read", /(^| )patient\/\*\.rs( |$)/.test(result.grantedScope || ""), result.grantedScope);
      check("another_patients_record_reads_as_unknown", result.otherPatientStatus === 404, result.otherPatientStatus);
    }
  } catch (error) {
    check("standalone_launch", false, error && error.stack ? error.stack : String(error));
  } finally {
    app.close();
  }
  process.exitCode = summary();
}

await main();

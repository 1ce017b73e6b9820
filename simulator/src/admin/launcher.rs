//! The EHR launcher page (`/_sim/launcher`): the registered apps, patients and users of each
//! environment, with a form that launches an app the way an EHR does. A browser cannot send
//! the admin token as a header, so `/_sim/signin` takes it once and sets it as an HttpOnly,
//! SameSite=Strict cookie scoped to `/_sim`.

use crate::Simulator;
use crate::request::{SimRequest, SimResponse, parse_query};
use crate::smart::pages::{escape, page};

/// The cookie that carries the admin token for the launcher pages.
const COOKIE: &str = "fhirdrill_admin";
/// Patients offered per environment on the launcher page.
const PATIENTS_SHOWN: usize = 25;

/// Whether the request carries the admin token in the launcher's cookie.
pub(super) fn has_admin_cookie(sim: &Simulator, req: &SimRequest) -> bool {
    req.headers
        .get_all("cookie")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .any(|(name, value)| {
            name == COOKIE
                && crate::constant_time_eq(value.as_bytes(), sim.admin_token().as_bytes())
        })
}

/// The sign-in page for the launcher.
pub(super) fn signin_page(error: Option<&str>) -> SimResponse {
    let error = error
        .map(|e| format!("<p class=\"error\" role=\"alert\">{}</p>", escape(e)))
        .unwrap_or_default();
    let body = format!(
        "<p>The EHR launcher is part of the admin API: enter the admin token that \
         <code>fhirdrill serve</code> printed.</p>{error}\
         <form method=\"post\" action=\"/_sim/signin\">\
         <label>Admin token <input type=\"password\" name=\"admin_token\" id=\"admin_token\" required></label>\
         <button type=\"submit\">Open the launcher</button></form>"
    );
    page(401, "EHR launcher: sign in", &body)
}

/// `POST /_sim/signin`: checks the admin token and sets the launcher cookie.
pub(super) fn signin(sim: &Simulator, req: &SimRequest) -> SimResponse {
    let form = parse_query(std::str::from_utf8(&req.body).unwrap_or(""));
    let token = form
        .iter()
        .find(|(k, _)| k == "admin_token")
        .map(|(_, v)| v.as_str());
    if !token.is_some_and(|t| crate::constant_time_eq(t.as_bytes(), sim.admin_token().as_bytes())) {
        return signin_page(Some("That is not the admin token."));
    }
    SimResponse::empty(303)
        .with_header("location", "/_sim/launcher")
        .with_header(
            "set-cookie",
            format!(
                "{COOKIE}={}; Path=/_sim; HttpOnly; SameSite=Strict",
                sim.admin_token()
            ),
        )
}

/// `GET /_sim/launcher`.
pub(super) fn launcher_page(sim: &Simulator) -> SimResponse {
    let mut body = String::from(
        "<p>Launch an app as an EHR would: it receives <code>iss</code> and <code>launch</code> \
         at its launch URL, then asks this server to authorize.</p>",
    );
    for env in sim.environments() {
        let registrations = env.auth().registrations();
        let apps: String = registrations
            .clients()
            .filter(|c| c.launch_url.is_some())
            .map(|c| format!("<option value=\"{0}\">{0}</option>", escape(&c.client_id)))
            .collect();
        let users: String = registrations
            .users()
            .iter()
            .map(|u| {
                format!(
                    "<option value=\"{0}\">{0} ({1}, {2})</option>",
                    escape(&u.username),
                    u.role.name(),
                    escape(&u.fhir_user)
                )
            })
            .collect();
        let patients: String = env
            .read()
            .current_of_type("Patient")
            .into_iter()
            .take(PATIENTS_SHOWN)
            .map(|(id, _)| format!("<option value=\"{0}\">Patient/{0}</option>", escape(id)))
            .collect();
        body.push_str(&format!(
            "<h2>{name}</h2><form method=\"get\" action=\"/_sim/launch\">\
             <input type=\"hidden\" name=\"environment\" value=\"{name}\">\
             <label>App <select name=\"client_id\">{apps}</select></label>\
             <label>User <select name=\"user\">{users}</select></label>\
             <label>Patient <select name=\"patient\">{patients}</select></label>\
             <button type=\"submit\">Launch</button></form>",
            name = escape(env.name())
        ));
    }
    page(200, "EHR launcher", &body)
}

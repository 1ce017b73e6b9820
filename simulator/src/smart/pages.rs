//! The HTML pages of the authorization flow: login, patient picker, consent, errors, and the
//! EHR launcher. Plain forms that work without JavaScript; every value is HTML-escaped, and
//! every page forbids framing (clickjacking) and caching.

use crate::request::SimResponse;

/// Escapes text for HTML element content and double-quoted attributes.
pub(crate) fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            _ => out.push(c),
        }
    }
    out
}

/// A complete page with the security headers every authorization page carries.
pub(crate) fn page(status: u16, title: &str, body: &str) -> SimResponse {
    let html = format!(
        "<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\
         <title>{title} · fhirdrill</title><style>{STYLE}</style></head>\
         <body><main><p class=\"brand\">fhirdrill simulated EHR · synthetic test data only</p>\
         <h1>{title}</h1>{body}</main></body></html>\n",
        title = escape(title)
    );
    let mut response = SimResponse::empty(status)
        .with_header("content-type", "text/html; charset=utf-8")
        .with_header("cache-control", "no-store")
        .with_header("x-frame-options", "DENY")
        .with_header(
            "content-security-policy",
            "default-src 'none'; style-src 'unsafe-inline'; frame-ancestors 'none'",
        )
        .with_header("referrer-policy", "no-referrer");
    response.body = html.into_bytes();
    response
}

const STYLE: &str = "body{font-family:system-ui,sans-serif;background:#f4f6f8;margin:0}\
main{max-width:34rem;margin:3rem auto;background:#fff;padding:2rem;border-radius:8px;\
box-shadow:0 1px 4px #0002}.brand{color:#a33;font-size:.8rem;text-transform:uppercase}\
label{display:block;margin:.6rem 0}input[type=text],input[type=password]{width:100%;\
padding:.4rem;box-sizing:border-box}button{margin-top:1rem;padding:.5rem 1.2rem}\
.error{color:#a00}.muted{color:#666;font-size:.9rem}code{background:#eee;padding:0 .2rem}";

/// A hidden form field.
pub(crate) fn hidden(name: &str, value: &str) -> String {
    format!(
        "<input type=\"hidden\" name=\"{}\" value=\"{}\">",
        escape(name),
        escape(value)
    )
}

/// The login page of an authorization in progress.
pub(crate) fn login(action: &str, txn: &str, client_id: &str, error: Option<&str>) -> SimResponse {
    let error = error
        .map(|e| format!("<p class=\"error\" role=\"alert\">{}</p>", escape(e)))
        .unwrap_or_default();
    let body = format!(
        "<p><strong>{client}</strong> asks you to sign in.</p>{error}\
         <form method=\"post\" action=\"{action}\">{txn}\
         <label>Username <input type=\"text\" name=\"username\" id=\"username\" autocomplete=\"username\" required></label>\
         <label>Password <input type=\"password\" name=\"password\" id=\"password\" autocomplete=\"current-password\" required></label>\
         <button type=\"submit\" id=\"sign-in\">Sign in</button></form>\
         <p class=\"muted\">Test users and passwords: printed by <code>fhirdrill serve</code> and listed at \
         <code>GET /_sim/registrations</code>.</p>",
        client = escape(client_id),
        action = escape(action),
        txn = hidden("txn", txn),
    );
    page(200, "Sign in", &body)
}

/// One patient a practitioner may pick.
pub(crate) struct PickerPatient {
    /// The Patient id.
    pub(super) id: String,
    /// A display name.
    pub(super) name: String,
    /// The birth date, if known.
    pub(super) birth_date: String,
}

/// The patient picker (standalone launch of a practitioner with `launch/patient`).
pub(crate) fn picker(action: &str, txn: &str, patients: &[PickerPatient]) -> SimResponse {
    let options: String = patients
        .iter()
        .enumerate()
        .map(|(i, p)| {
            format!(
                "<label><input type=\"radio\" name=\"patient\" value=\"{id}\"{checked}> {name} \
                 <span class=\"muted\">born {birth} · Patient/{id}</span></label>",
                id = escape(&p.id),
                name = escape(&p.name),
                birth = escape(&p.birth_date),
                checked = if i == 0 { " checked" } else { "" }
            )
        })
        .collect();
    let body = if patients.is_empty() {
        "<p class=\"error\">No patient is on your care teams, so there is no patient to pick.</p>"
            .to_string()
    } else {
        format!(
            "<p>Choose the patient this app will work with.</p>\
             <form method=\"post\" action=\"{action}\">{txn}{options}\
             <button type=\"submit\" id=\"pick\">Continue</button></form>",
            action = escape(action),
            txn = hidden("txn", txn),
        )
    };
    page(200, "Select a patient", &body)
}

/// The consent page: one checkbox per scope, all ticked; unticking grants less.
pub(crate) fn consent(
    action: &str,
    txn: &str,
    client_id: &str,
    who: &str,
    scopes: &[String],
) -> SimResponse {
    let boxes: String = scopes
        .iter()
        .enumerate()
        .map(|(i, s)| {
            format!(
                "<label><input type=\"checkbox\" name=\"scope\" id=\"scope-{i}\" value=\"{v}\" checked> <code>{v}</code></label>",
                v = escape(s)
            )
        })
        .collect();
    let body = format!(
        "<p><strong>{client}</strong> asks for access as <strong>{who}</strong>. \
         Untick what you do not want to share.</p>\
         <form method=\"post\" action=\"{action}\">{txn}{boxes}\
         <button type=\"submit\" name=\"decision\" value=\"allow\" id=\"allow\">Allow</button> \
         <button type=\"submit\" name=\"decision\" value=\"deny\" id=\"deny\">Deny</button></form>",
        client = escape(client_id),
        who = escape(who),
        action = escape(action),
        txn = hidden("txn", txn),
    );
    page(200, "Allow access?", &body)
}

/// An error shown as a page (before the redirect URI can be trusted).
pub(crate) fn error(status: u16, title: &str, message: &str) -> SimResponse {
    page(
        status,
        title,
        &format!("<p class=\"error\" role=\"alert\">{}</p>", escape(message)),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_are_escaped() {
        assert_eq!(
            escape("<script>\"x\" & 'y'</script>"),
            "&lt;script&gt;&quot;x&quot; &amp; &#39;y&#39;&lt;/script&gt;"
        );
        let p = login("/a", "t\"><script>", "<b>app</b>", Some("<i>bad</i>"));
        let html = String::from_utf8_lossy(&p.body);
        assert!(!html.contains("<script>") && !html.contains("<b>app") && !html.contains("<i>bad"));
        assert_eq!(p.header("x-frame-options"), Some("DENY"));
        assert_eq!(p.header("cache-control"), Some("no-store"));
    }
}

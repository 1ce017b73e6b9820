//! The simulator registration of the app's two clients, as `[[environments.clients]]` TOML.

use crate::flaws::{Flaw, Flaws};
use crate::scopes::{self, USER_TYPES};

/// The simulator config entries (`[[environments.clients]]` tables, to put after an
/// `[[environments]]` table) registering the app's user-facing public client (redirect URI,
/// launch URL, the scopes its logins ask for) and its backend confidential-asymmetric client
/// (inline public JWKS, the scope its sync job asks for), as `flaws` need them.
pub fn registration_toml(
    app_url: &str,
    flaws: &Flaws,
    client_id: &str,
    backend_client_id: &str,
    public_jwks: &str,
) -> String {
    let app_url = app_url.trim_end_matches('/');
    let mut user_scopes = vec![
        "launch".to_string(),
        "launch/patient".into(),
        "openid".into(),
        "fhirUser".into(),
        "offline_access".into(),
    ];
    for level in ["patient", "user"] {
        user_scopes.extend(USER_TYPES.iter().map(|t| format!("{level}/{t}.rs")));
    }
    if flaws.has(Flaw::RequestsUnusedScopes) {
        user_scopes.push("patient/*.read".into());
        user_scopes.push("user/*.read".into());
    }
    format!(
        "[[environments.clients]]\n\
         client_id = {client}\n\
         kind = \"public\"\n\
         redirect_uris = [{redirect}]\n\
         launch_url = {launch}\n\
         scopes = {user_scopes}\n\
         \n\
         [[environments.clients]]\n\
         client_id = {backend}\n\
         kind = \"confidential-asymmetric\"\n\
         jwks = {jwks}\n\
         scopes = {backend_scopes}\n",
        client = toml_string(client_id),
        redirect = toml_string(&format!("{app_url}/callback")),
        launch = toml_string(&format!("{app_url}/launch")),
        user_scopes = toml_string(&user_scopes.join(" ")),
        backend = toml_string(backend_client_id),
        jwks = toml_string(public_jwks.trim()),
        backend_scopes = toml_string(scopes::backend(flaws)),
    )
}

/// A TOML basic string.
fn toml_string(text: &str) -> String {
    let mut out = String::with_capacity(text.len() + 2);
    out.push('"');
    for c in text.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if c.is_control() => out.push_str(&format!("\\u{:04X}", c as u32)),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn registers_both_clients_with_their_scopes() {
        let jwks = r#"{"keys":[{"kty":"EC","crv":"P-384","x":"a","y":"b"}]}"#;
        let text = registration_toml(
            "http://127.0.0.1:3000/",
            &Flaws::none(),
            "app",
            "app-backend",
            jwks,
        );
        assert!(text.contains("redirect_uris = [\"http://127.0.0.1:3000/callback\"]"));
        assert!(text.contains("launch_url = \"http://127.0.0.1:3000/launch\""));
        assert!(text.contains("patient/MedicationRequest.rs"));
        assert!(text.contains("user/Observation.rs"));
        assert!(!text.contains("*.read"));
        assert!(text.contains("scopes = \"system/Patient.rs system/Observation.rs\""));
        assert!(text.contains(r#"jwks = "{\"keys\":[{\"kty\":\"EC\""#));
        let broad = registration_toml(
            "http://a",
            &"broad-system-scope,requests-unused-scopes"
                .parse()
                .expect("flaws"),
            "app",
            "app-backend",
            jwks,
        );
        assert!(broad.contains("scopes = \"system/*.read\""));
        assert!(broad.contains("patient/*.read user/*.read"));
    }
}

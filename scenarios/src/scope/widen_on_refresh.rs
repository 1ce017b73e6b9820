//! `scope.widen-on-refresh`: refresh requests that ask for more than the original grant.

use crate::scope::data_scopes;
use crate::api::{
    Capability, Control, Evidence, Finding, Scenario, ScenarioError, ScenarioMeta, Severity,
    Subject,
};
use crate::cx::{Persona, Revocation, ScenarioCx, Whose};

/// The catalog entry.
pub static META: ScenarioMeta = ScenarioMeta {
    id: "scope.widen-on-refresh",
    title: "App asks for more scope when it refreshes a token",
    family: "scope",
    summary: "Signs in as a patient, expires the app's access tokens at the EHR (the refresh token stays valid) and calls the app again, so it refreshes. A refresh request may only ask for the original grant or less: asking for more tries to gain access the user never consented to.",
    severity: Severity::High,
    controls: &[
        Control::SmartAppLaunch("Refresh access token"),
        Control::Hipaa("164.508"),
        Control::Cwe(269),
    ],
    references: &[
        "https://hl7.org/fhir/smart-app-launch/app-launch.html#step-7-app-uses-a-refresh-token-to-obtain-a-new-access-token",
        "https://www.rfc-editor.org/rfc/rfc6749#section-6",
    ],
    needs: &[Capability::PatientLogin, Capability::AppApi],
    fix: "Send no scope on refresh (or a subset of the granted scopes); to get more access, send the user through authorization again.",
    deprecated_ids: &[],
};

/// The scenario.
pub struct WidenOnRefresh;

impl Scenario for WidenOnRefresh {
    fn meta(&self) -> &'static ScenarioMeta {
        &META
    }

    fn run(&self, cx: &mut dyn ScenarioCx) -> Result<Vec<Finding>, ScenarioError> {
        let session = cx.sign_in(Persona::Patient, None)?;
        let endpoints = cx.endpoints().to_vec();
        if let Some(first) = endpoints.first() {
            cx.call_app(&session, first, Whose::Own)?;
        }
        let mark = cx.mark()?;
        cx.revoke(&session, Revocation::AccessTokens)?;
        for endpoint in &endpoints {
            cx.call_app(&session, endpoint, Whose::Own)?;
        }
        let refreshes: Vec<_> = cx
            .access_since(mark)?
            .into_iter()
            .filter(|e| {
                e.action == "token-refresh_token"
                    && e.client_id.as_deref() == Some(session.client_id.as_str())
                    && e.user.as_deref().is_none_or(|u| u == session.fhir_user)
            })
            .collect();
        if refreshes.is_empty() {
            return Err(ScenarioError::skip(
                "the app made no refresh request after its access token was revoked, so there was nothing to judge",
            ));
        }
        let granted = data_scopes(&session.scope_granted);
        let mut findings = Vec::new();
        for refresh in &refreshes {
            let asked = refresh.scope_requested.clone().unwrap_or_default();
            let wider: Vec<String> = data_scopes(&asked)
                .into_iter()
                .filter(|(_, d)| !granted.iter().any(|(_, g)| d.within(g)))
                .map(|(s, _)| s)
                .collect();
            if wider.is_empty() {
                continue;
            }
            let masker = cx.masker();
            findings.push(
                Finding::new(
                    &META,
                    "",
                    Subject::Client {
                        client_id: session.client_id.clone(),
                    },
                    masker.mask(&format!(
                        "Refresh requests ask for {} beyond the original grant",
                        wider.join(" ")
                    )),
                    masker.mask(&format!(
                        "The user granted \"{}\"; the app's refresh asked for \"{asked}\".",
                        session.scope_granted
                    )),
                )
                .with(Evidence::access_log(masker, [refresh])),
            );
            break;
        }
        Ok(findings)
    }
}

//! The text of clinical notes: what happened at a visit, from the record itself.
//!
//! Notes never repeat identifying values (name, MRN, birth date): they describe the visit, so a
//! canary found in a log is never explained away as "just a note".

use serde_json::Value;

use crate::care::{Visit, VisitKind};
use crate::clinical::Chronic;

/// A short plain-text progress note for `visit`.
pub(crate) fn progress_note(
    visit: &Visit<'_>,
    active: &[Chronic],
    vitals: &[Value],
    medications: &[&str],
) -> String {
    let mut note = String::with_capacity(512);
    note.push_str("PROGRESS NOTE (synthetic test data)\n");
    note.push_str(&format!("Visit: {}\n", visit.kind.code().display));
    note.push_str(&format!("Clinician: {}\n", visit.practitioner.display));
    if let Some(reason) = visit.reason {
        note.push_str(&format!("Reason for visit: {}\n", reason.label));
    }
    let problems: Vec<&str> = active.iter().map(|c| c.spec().label).collect();
    note.push_str(&format!("Active problems: {}\n", list_or_none(&problems)));
    if let Some(line) = vitals_line(vitals) {
        note.push_str(&format!("Vitals: {line}\n"));
    }
    note.push_str(&format!("Medications: {}\n", list_or_none(medications)));
    note.push_str(&format!("Plan: {}\n", plan(visit.kind, active)));
    note
}

fn list_or_none(items: &[&str]) -> String {
    if items.is_empty() {
        "none".to_string()
    } else {
        items.join("; ")
    }
}

/// "BP 128/82 mm[Hg], heart rate 71 /min, …" from the vital-sign Observations of the visit.
fn vitals_line(vitals: &[Value]) -> Option<String> {
    let parts: Vec<String> = vitals
        .iter()
        .filter_map(|v| {
            let name = v["code"]["text"].as_str()?;
            if let Some(components) = v["component"].as_array() {
                let sys = components.first()?["valueQuantity"]["value"].as_f64()?;
                let dia = components.get(1)?["valueQuantity"]["value"].as_f64()?;
                return Some(format!("blood pressure {sys}/{dia} mm[Hg]"));
            }
            let q = &v["valueQuantity"];
            Some(format!(
                "{} {} {}",
                name.to_lowercase(),
                q["value"].as_f64()?,
                q["unit"].as_str()?
            ))
        })
        .collect();
    (!parts.is_empty()).then(|| parts.join(", "))
}

fn plan(kind: VisitKind, active: &[Chronic]) -> &'static str {
    match kind {
        VisitKind::PrenatalInitial | VisitKind::Prenatal => {
            "routine prenatal care; return in four weeks"
        }
        _ if active.is_empty() => "routine preventive care; return in one year",
        VisitKind::FollowUp => "continue current treatment; review at next follow-up",
        _ => "continue current treatment; routine preventive care; return in one year",
    }
}

//! The rest of a patient's record: encounters, problems, medications, allergies, immunizations,
//! procedures, clinical notes, the care team and insurance coverage (US Core shaped).

use base64::Engine;
use base64::engine::general_purpose::STANDARD as BASE64;
use serde_json::{Value, json};

use crate::clinical::ConditionSpec;
use crate::fhir::{
    Code, concept_of, cvx, reference, reference_with_display, resource, sct, system, with,
};
use crate::rng::Dice;
use crate::shared::{Practitioner, Site};

/// Why a patient came in; each kind has its SNOMED CT encounter type.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum VisitKind {
    /// A yearly check-up with primary care.
    CheckUp,
    /// A follow-up of a chronic condition.
    FollowUp,
    /// The first prenatal visit.
    PrenatalInitial,
    /// A later prenatal visit.
    Prenatal,
}

impl VisitKind {
    /// The SNOMED CT encounter type.
    pub fn code(self) -> Code {
        match self {
            Self::CheckUp => sct("185349003", "Encounter for check up (procedure)"),
            Self::FollowUp => sct("390906007", "Follow-up encounter (procedure)"),
            Self::PrenatalInitial => sct("424441002", "Prenatal initial visit (regime/therapy)"),
            Self::Prenatal => sct("424619006", "Prenatal visit (regime/therapy)"),
        }
    }
}

/// Vaccines the generator gives (CVX).
pub mod vaccines {
    use super::{Code, cvx};
    /// Seasonal influenza.
    pub const INFLUENZA: Code = cvx("140", "Influenza, seasonal, injectable, preservative free");
    /// Tetanus and diphtheria, adult.
    pub const TD: Code = cvx("113", "Td (adult) preservative free");
    /// Tdap (given in pregnancy).
    pub const TDAP: Code = cvx("115", "Tdap");
    /// Pneumococcal conjugate, 13-valent.
    pub const PNEUMOCOCCAL: Code = cvx("133", "Pneumococcal conjugate PCV 13");
    /// Human papillomavirus.
    pub const HPV: Code = cvx("62", "HPV, quadrivalent");
    /// The infant series.
    pub const INFANT_SERIES: [Code; 4] = [
        cvx("20", "DTaP"),
        cvx("10", "IPV"),
        cvx("49", "Hib (PRP-OMP)"),
        cvx("08", "Hep B, adolescent or pediatric"),
    ];
}

/// Procedures the generator records (SNOMED CT).
pub mod procedures {
    use super::{Code, sct};
    /// Medication review at a visit of a patient on medication.
    pub const MEDICATION_REVIEW: Code = sct(
        "428191000124101",
        "Documentation of current medications (procedure)",
    );
    /// Depression screening.
    pub const DEPRESSION_SCREENING: Code = sct("171207006", "Depression screening (procedure)");
    /// Colonoscopy.
    pub const COLONOSCOPY: Code = sct("73761001", "Colonoscopy (procedure)");
}

/// An allergy the generator may record: substance, category, reaction.
#[derive(Debug, Clone, Copy)]
pub struct AllergySpec {
    /// The substance.
    pub substance: Code,
    /// `food`, `medication`, `environment` or `biologic`.
    pub category: &'static str,
    /// The usual reaction.
    pub reaction: Code,
}

/// Allergies and their relative frequency.
pub const ALLERGIES: [(AllergySpec, u32); 5] = [
    (
        AllergySpec {
            substance: Code {
                system: system::RXNORM,
                code: "7984",
                display: "penicillin V",
            },
            category: "medication",
            reaction: sct("271807003", "Eruption of skin (disorder)"),
        },
        30,
    ),
    (
        AllergySpec {
            substance: sct("762952008", "Peanut (substance)"),
            category: "food",
            reaction: sct("39579001", "Anaphylaxis (disorder)"),
        },
        15,
    ),
    (
        AllergySpec {
            substance: sct("735971005", "Fish (substance)"),
            category: "food",
            reaction: sct("247472004", "Wheal (finding)"),
        },
        10,
    ),
    (
        AllergySpec {
            substance: sct("735029006", "Shellfish (substance)"),
            category: "food",
            reaction: sct("271807003", "Eruption of skin (disorder)"),
        },
        10,
    ),
    (
        AllergySpec {
            substance: sct("288328004", "Bee venom (substance)"),
            category: "environment",
            reaction: sct("39579001", "Anaphylaxis (disorder)"),
        },
        10,
    ),
];

/// One visit's identity, time, practitioner and site, which its resources point at.
#[derive(Debug, Clone, Copy)]
pub struct Visit<'a> {
    /// The Encounter id.
    pub id: &'a str,
    /// The kind of visit.
    pub kind: VisitKind,
    /// Start (FHIR dateTime).
    pub start: &'a str,
    /// End (FHIR dateTime).
    pub end: &'a str,
    /// The practitioner seen.
    pub practitioner: &'a Practitioner,
    /// Where the visit took place.
    pub site: &'a Site,
    /// The condition followed up, if any (its label).
    pub reason: Option<&'a ConditionSpec>,
}

/// What every resource of one patient's record shares.
#[derive(Debug, Clone, Copy)]
pub struct RecordContext<'a> {
    /// The Patient id.
    pub patient_id: &'a str,
    /// `meta.lastUpdated`.
    pub last_updated: &'a str,
}

/// The Encounter resource of a visit.
pub fn encounter(visit: &Visit<'_>, rc: &RecordContext<'_>) -> Value {
    let mut fields = json!({
        "status": "finished",
        "class": {"system": system::V3_ACT_CODE, "code": "AMB", "display": "ambulatory"},
        "type": [visit.kind.code().concept()],
        "subject": reference("Patient", rc.patient_id),
        "participant": [{
            "type": [{"coding": [{"system": "http://terminology.hl7.org/CodeSystem/v3-ParticipationType", "code": "PPRF", "display": "primary performer"}], "text": "primary performer"}],
            "period": {"start": visit.start, "end": visit.end},
            "individual": reference_with_display("Practitioner", &visit.practitioner.id, &visit.practitioner.display)
        }],
        "period": {"start": visit.start, "end": visit.end}
    });
    if let (Some(reason), Value::Object(map)) = (visit.reason, &mut fields) {
        map.insert("reasonCode".into(), json!([reason.snomed.concept()]));
    }
    if let Value::Object(map) = &mut fields {
        map.insert(
            "location".into(),
            json!([{"location": reference_with_display("Location", &visit.site.location_id, &visit.site.name)}]),
        );
        map.insert(
            "serviceProvider".into(),
            reference_with_display(
                "Organization",
                &visit.site.organization_id,
                &visit.site.name,
            ),
        );
    }
    with(
        resource("Encounter", visit.id, "us-core-encounter", rc.last_updated),
        fields,
    )
}

/// When a condition started and, for a pregnancy, when it ended.
#[derive(Debug, Clone, Copy)]
pub struct ConditionDates<'a> {
    /// `onsetDateTime`.
    pub onset: &'a str,
    /// `recordedDate` (the visit where it was recorded).
    pub recorded: &'a str,
    /// `abatementDateTime`, for a resolved condition.
    pub abatement: Option<&'a str>,
}

/// A problem-list Condition coded in SNOMED CT with its ICD-10-CM translation.
pub fn condition(
    id: &str,
    spec: &ConditionSpec,
    dates: ConditionDates<'_>,
    recorded_at: &Visit<'_>,
    rc: &RecordContext<'_>,
) -> Value {
    let clinical = if dates.abatement.is_some() {
        ("resolved", "Resolved")
    } else {
        ("active", "Active")
    };
    let mut fields = json!({
        "clinicalStatus": {"coding": [{"system": system::CONDITION_CLINICAL, "code": clinical.0, "display": clinical.1}]},
        "verificationStatus": {"coding": [{"system": system::CONDITION_VERIFICATION, "code": "confirmed", "display": "Confirmed"}]},
        "category": [{"coding": [{"system": system::CONDITION_CATEGORY, "code": "problem-list-item", "display": "Problem List Item"}], "text": "Problem List Item"}],
        "code": concept_of(&[spec.snomed, spec.icd10], spec.snomed.display),
        "subject": reference("Patient", rc.patient_id),
        "encounter": reference("Encounter", recorded_at.id),
        "onsetDateTime": dates.onset
    });
    if let Value::Object(map) = &mut fields {
        if let Some(abatement) = dates.abatement {
            map.insert("abatementDateTime".into(), json!(abatement));
        }
        map.insert("recordedDate".into(), json!(dates.recorded));
        map.insert(
            "recorder".into(),
            reference_with_display(
                "Practitioner",
                &recorded_at.practitioner.id,
                &recorded_at.practitioner.display,
            ),
        );
    }
    with(
        resource(
            "Condition",
            id,
            "us-core-condition-problems-health-concerns",
            rc.last_updated,
        ),
        fields,
    )
}

/// An outpatient MedicationRequest prescribed at `visit` for the condition `reason_id`.
pub fn medication_request(
    id: &str,
    medication: &Code,
    reason_id: &str,
    visit: &Visit<'_>,
    rc: &RecordContext<'_>,
) -> Value {
    let instruction = if medication.display.contains("Inhaler") {
        "Inhale 2 puffs by mouth as needed"
    } else if medication.display.contains("Injectable") {
        "Inject subcutaneously twice daily as directed"
    } else {
        "Take 1 by mouth once daily"
    };
    with(
        resource(
            "MedicationRequest",
            id,
            "us-core-medicationrequest",
            rc.last_updated,
        ),
        json!({
            "status": "active",
            "intent": "order",
            "category": [{"coding": [{"system": "http://terminology.hl7.org/CodeSystem/medicationrequest-category", "code": "outpatient", "display": "Outpatient"}], "text": "Outpatient"}],
            "reportedBoolean": false,
            "medicationCodeableConcept": medication.concept(),
            "subject": reference("Patient", rc.patient_id),
            "encounter": reference("Encounter", visit.id),
            "authoredOn": visit.start,
            "requester": reference_with_display("Practitioner", &visit.practitioner.id, &visit.practitioner.display),
            "reasonReference": [reference("Condition", reason_id)],
            "dosageInstruction": [{"text": instruction, "timing": {"repeat": {"frequency": 1, "period": 1, "periodUnit": "d"}}}]
        }),
    )
}

/// An AllergyIntolerance recorded at `visit`.
pub fn allergy(id: &str, spec: &AllergySpec, visit: &Visit<'_>, rc: &RecordContext<'_>) -> Value {
    with(
        resource(
            "AllergyIntolerance",
            id,
            "us-core-allergyintolerance",
            rc.last_updated,
        ),
        json!({
            "clinicalStatus": {"coding": [{"system": system::ALLERGY_CLINICAL, "code": "active", "display": "Active"}]},
            "verificationStatus": {"coding": [{"system": system::ALLERGY_VERIFICATION, "code": "confirmed", "display": "Confirmed"}]},
            "type": "allergy",
            "category": [spec.category],
            "criticality": if spec.reaction.code == "39579001" { "high" } else { "low" },
            "code": spec.substance.concept(),
            "patient": reference("Patient", rc.patient_id),
            "encounter": reference("Encounter", visit.id),
            "recordedDate": visit.start,
            "recorder": reference_with_display("Practitioner", &visit.practitioner.id, &visit.practitioner.display),
            "reaction": [{"manifestation": [spec.reaction.concept()], "severity": if spec.reaction.code == "39579001" { "severe" } else { "mild" }}]
        }),
    )
}

/// An Immunization given at `visit`.
pub fn immunization(
    dice: &mut Dice,
    vaccine: &Code,
    visit: &Visit<'_>,
    rc: &RecordContext<'_>,
) -> Value {
    let id = dice.uuid();
    let lot = format!("LOT{:06}", dice.below(1_000_000));
    with(
        resource("Immunization", &id, "us-core-immunization", rc.last_updated),
        json!({
            "status": "completed",
            "vaccineCode": vaccine.concept(),
            "patient": reference("Patient", rc.patient_id),
            "encounter": reference("Encounter", visit.id),
            "occurrenceDateTime": visit.start,
            "primarySource": true,
            "location": reference_with_display("Location", &visit.site.location_id, &visit.site.name),
            "lotNumber": lot,
            "performer": [{"actor": reference_with_display("Practitioner", &visit.practitioner.id, &visit.practitioner.display)}]
        }),
    )
}

/// A Procedure performed at `visit`.
pub fn procedure(dice: &mut Dice, code: &Code, visit: &Visit<'_>, rc: &RecordContext<'_>) -> Value {
    let id = dice.uuid();
    with(
        resource("Procedure", &id, "us-core-procedure", rc.last_updated),
        json!({
            "status": "completed",
            "code": code.concept(),
            "subject": reference("Patient", rc.patient_id),
            "encounter": reference("Encounter", visit.id),
            "performedDateTime": visit.start,
            "performer": [{"actor": reference_with_display("Practitioner", &visit.practitioner.id, &visit.practitioner.display)}],
            "location": reference_with_display("Location", &visit.site.location_id, &visit.site.name)
        }),
    )
}

/// A clinical note of `visit` as a US Core DocumentReference with a text/plain attachment.
pub fn clinical_note(
    dice: &mut Dice,
    text: &str,
    visit: &Visit<'_>,
    rc: &RecordContext<'_>,
) -> Value {
    let id = dice.uuid();
    let note_type = Code {
        system: system::LOINC,
        code: "11506-3",
        display: "Progress note",
    };
    with(
        resource(
            "DocumentReference",
            &id,
            "us-core-documentreference",
            rc.last_updated,
        ),
        json!({
            "status": "current",
            "docStatus": "final",
            "type": note_type.concept(),
            "category": [{"coding": [{"system": system::US_CORE_DOC_CATEGORY, "code": "clinical-note", "display": "Clinical Note"}], "text": "Clinical Note"}],
            "subject": reference("Patient", rc.patient_id),
            "date": visit.end,
            "author": [reference_with_display("Practitioner", &visit.practitioner.id, &visit.practitioner.display)],
            "custodian": reference_with_display("Organization", &visit.site.organization_id, &visit.site.name),
            "content": [{
                "attachment": {
                    "contentType": "text/plain; charset=utf-8",
                    "language": "en-US",
                    "data": BASE64.encode(text.as_bytes()),
                    "title": "Progress note",
                    "creation": visit.end
                },
                "format": {"system": "http://ihe.net/fhir/ihe.formatcode.fhir/CodeSystem/formatcode", "code": "urn:ihe:iti:xds:2017:mimeTypeSufficient", "display": "mimeType Sufficient"}
            }],
            "context": {
                "encounter": [reference("Encounter", visit.id)],
                "period": {"start": visit.start, "end": visit.end}
            }
        }),
    )
}

/// The CareTeam: the patient, their primary care practitioner and their specialists.
pub fn care_team(
    id: &str,
    primary: &Practitioner,
    specialists: &[&Practitioner],
    rc: &RecordContext<'_>,
) -> Value {
    let mut participants = vec![json!({
        "role": [sct("116154003", "Patient (person)").concept()],
        "member": reference("Patient", rc.patient_id)
    })];
    participants.push(json!({
        "role": [sct("453231000124104", "Primary care provider").concept()],
        "member": reference_with_display("Practitioner", &primary.id, &primary.display)
    }));
    for s in specialists {
        participants.push(json!({
            "role": [s.specialty.code().concept()],
            "member": reference_with_display("Practitioner", &s.id, &s.display)
        }));
    }
    with(
        resource("CareTeam", id, "us-core-careteam", rc.last_updated),
        json!({
            "status": "active",
            "name": "Care team",
            "subject": reference("Patient", rc.patient_id),
            "participant": participants
        }),
    )
}

/// The patient's insurance coverage with a payer of the directory.
pub fn coverage(
    dice: &mut Dice,
    payer: (&str, &str),
    start: &str,
    medicare: bool,
    rc: &RecordContext<'_>,
) -> Value {
    let id = dice.uuid();
    let member_id = format!("SYN{:09}", dice.below(1_000_000_000));
    // Source of Payment Typology, the code system US Core binds Coverage.type to.
    let (code, display) = if medicare {
        ("1", "Medicare")
    } else {
        ("5", "Private health insurance")
    };
    with(
        resource("Coverage", &id, "us-core-coverage", rc.last_updated),
        json!({
            "identifier": [{
                "type": {"coding": [{"system": system::V2_0203, "code": "MB", "display": "Member Number"}], "text": "Member Number"},
                "system": "urn:fhirdrill:codesystem:member-id",
                "value": member_id
            }],
            "status": "active",
            "type": {"coding": [{"system": "https://nahdo.org/sopt", "code": code, "display": display}], "text": display},
            "subscriberId": member_id,
            "beneficiary": reference("Patient", rc.patient_id),
            "relationship": {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/subscriber-relationship", "code": "self", "display": "Self"}], "text": "Self"},
            "period": {"start": start},
            "payor": [reference_with_display("Organization", payer.0, payer.1)],
            "class": [{
                "type": {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/coverage-class", "code": "group", "display": "Group"}], "text": "Group"},
                "value": format!("GRP{:05}", dice.below(100_000)),
                "name": payer.1
            }]
        }),
    )
}

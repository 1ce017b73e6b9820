//! Static table of the searchable resource types and their search parameters.
//!
//! Names, types and paths follow US Core 6.1.0 (`SearchParameter-us-core-*`) and, where US Core
//! defers, the base FHIR R4 definitions. A path is a dotted JSON path: arrays are traversed
//! implicitly, choice types are listed one path per choice (`effectiveDateTime`, `effectivePeriod`),
//! and a segment may carry one filter `name[key=value]` that keeps only array items (or objects)
//! whose string member `key` equals `value`, e.g. `telecom[system=phone]`.

/// The FHIR search parameter type, which decides how values are parsed and matched.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ParamType {
    /// Codes, codings, codeable concepts, identifiers, contact points, booleans and ids.
    Token,
    /// Strings, names and addresses (case- and accent-insensitive starts-with by default).
    String,
    /// Dates, dateTimes, instants and periods, compared as ranges.
    Date,
    /// References to other resources.
    Reference,
    /// Quantities (`[prefix]number|system|code`).
    Quantity,
    /// Plain decimal or integer values.
    Number,
    /// URIs, compared exactly.
    Uri,
}

impl ParamType {
    /// The FHIR code of the type, as used in a CapabilityStatement (`token`, `string`...).
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Token => "token",
            Self::String => "string",
            Self::Date => "date",
            Self::Reference => "reference",
            Self::Quantity => "quantity",
            Self::Number => "number",
            Self::Uri => "uri",
        }
    }
}

/// One search parameter of one resource type.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SearchParamDef {
    /// The parameter name used in queries, e.g. `clinical-status`.
    pub name: &'static str,
    /// The parameter type.
    pub kind: ParamType,
    /// JSON paths from the resource root whose values the parameter indexes.
    pub paths: &'static [&'static str],
    /// For references: the resource types the reference may point to (empty = any type).
    pub targets: &'static [&'static str],
    /// One-line documentation, suitable for a CapabilityStatement.
    pub doc: &'static str,
    /// True when a reference from this parameter to a Patient puts the resource in that patient's
    /// compartment; the store's compartment index must cover every such reference.
    pub patient_compartment: bool,
}

impl SearchParamDef {
    /// True when a reference to `resource_type` is allowed by this parameter's target list.
    pub fn allows_target(&self, resource_type: &str) -> bool {
        self.targets.is_empty() || self.targets.contains(&resource_type)
    }
}

/// Shorthand for a non-reference parameter definition.
macro_rules! param {
    ($name:literal, $kind:ident, [$($path:literal),+ $(,)?], $doc:literal) => {
        SearchParamDef {
            name: $name,
            kind: ParamType::$kind,
            paths: &[$($path),+],
            targets: &[],
            doc: $doc,
            patient_compartment: false,
        }
    };
}

/// Shorthand for a reference parameter definition; `compartment` marks patient-compartment links.
macro_rules! reference {
    ($name:literal, [$($path:literal),+ $(,)?], [$($target:literal),* $(,)?], $doc:expr) => {
        reference!($name, [$($path),+], [$($target),*], $doc, false)
    };
    ($name:literal, [$($path:literal),+ $(,)?], [$($target:literal),* $(,)?], $doc:expr, compartment) => {
        reference!($name, [$($path),+], [$($target),*], $doc, true)
    };
    ($name:literal, [$($path:literal),+ $(,)?], [$($target:literal),* $(,)?], $doc:expr, $comp:expr) => {
        SearchParamDef {
            name: $name,
            kind: ParamType::Reference,
            paths: &[$($path),+],
            targets: &[$($target),*],
            doc: $doc,
            patient_compartment: $comp,
        }
    };
}

/// Parameters defined on every resource type.
static COMMON: &[SearchParamDef] = &[
    param!("_id", Token, ["id"], "Logical id of the resource"),
    param!(
        "_lastUpdated",
        Date,
        ["meta.lastUpdated"],
        "When the resource version last changed"
    ),
    param!("_tag", Token, ["meta.tag"], "Tags applied to the resource"),
    param!(
        "_security",
        Token,
        ["meta.security"],
        "Security labels applied to the resource"
    ),
    param!(
        "_profile",
        Uri,
        ["meta.profile"],
        "Profiles the resource claims to conform to"
    ),
    param!(
        "_source",
        Uri,
        ["meta.source"],
        "Where the resource came from"
    ),
];

/// One searchable resource type.
struct TypeDef {
    /// The resource type name.
    name: &'static str,
    /// Its type-specific parameters (the common ones are added by the lookup functions).
    params: &'static [SearchParamDef],
}

/// The `patient` and `subject` parameters shared by the clinical types (R4 subject targets).
macro_rules! subject_params {
    ($type:literal) => {
        [
            reference!(
                "patient",
                ["subject"],
                ["Patient"],
                concat!("Who the ", $type, " is about, when it is a Patient"),
                compartment
            ),
            reference!(
                "subject",
                ["subject"],
                ["Patient", "Group", "Device", "Location"],
                concat!("Who or what the ", $type, " is about"),
                compartment
            ),
        ]
    };
}

/// Observation subject/patient parameters.
const OBSERVATION_SUBJECT: [SearchParamDef; 2] = subject_params!("Observation");
/// Condition subject/patient parameters.
const CONDITION_SUBJECT: [SearchParamDef; 2] = subject_params!("Condition");
/// Encounter subject/patient parameters.
const ENCOUNTER_SUBJECT: [SearchParamDef; 2] = subject_params!("Encounter");
/// MedicationRequest subject/patient parameters.
const MEDREQ_SUBJECT: [SearchParamDef; 2] = subject_params!("MedicationRequest");
/// Procedure subject/patient parameters.
const PROCEDURE_SUBJECT: [SearchParamDef; 2] = subject_params!("Procedure");
/// DiagnosticReport subject/patient parameters.
const DIAGREPORT_SUBJECT: [SearchParamDef; 2] = subject_params!("DiagnosticReport");
/// DocumentReference subject/patient parameters.
const DOCREF_SUBJECT: [SearchParamDef; 2] = subject_params!("DocumentReference");
/// CareTeam subject/patient parameters.
const CARETEAM_SUBJECT: [SearchParamDef; 2] = subject_params!("CareTeam");

/// The searchable types, in CapabilityStatement order.
static TYPES: &[TypeDef] = &[
    TypeDef {
        name: "Patient",
        params: &[
            param!(
                "identifier",
                Token,
                ["identifier"],
                "A patient identifier (system|value)"
            ),
            param!(
                "name",
                String,
                ["name"],
                "Any part of a name: family, given, prefix, suffix or text"
            ),
            param!("family", String, ["name.family"], "A family name"),
            param!("given", String, ["name.given"], "A given name"),
            param!("gender", Token, ["gender"], "Administrative gender"),
            param!("birthdate", Date, ["birthDate"], "The date of birth"),
            param!(
                "death-date",
                Date,
                ["deceasedDateTime"],
                "The date of death, when recorded as a dateTime"
            ),
            param!(
                "address",
                String,
                ["address"],
                "Any part of an address: line, city, district, state, postal code, country or text"
            ),
            param!(
                "address-city",
                String,
                ["address.city"],
                "The city of an address"
            ),
            param!(
                "address-state",
                String,
                ["address.state"],
                "The state of an address"
            ),
            param!(
                "address-postalcode",
                String,
                ["address.postalCode"],
                "The postal code of an address"
            ),
            param!("telecom", Token, ["telecom"], "Any contact point value"),
            param!("phone", Token, ["telecom[system=phone]"], "A phone number"),
            param!(
                "email",
                Token,
                ["telecom[system=email]"],
                "An email address"
            ),
            reference!(
                "general-practitioner",
                ["generalPractitioner"],
                ["Practitioner", "Organization", "PractitionerRole"],
                "The patient's nominated primary care provider"
            ),
            reference!(
                "organization",
                ["managingOrganization"],
                ["Organization"],
                "The organization that is the custodian of the patient record"
            ),
            param!(
                "active",
                Token,
                ["active"],
                "Whether the patient record is active"
            ),
            param!(
                "race",
                Token,
                [
                    "extension[url=http://hl7.org/fhir/us/core/StructureDefinition/us-core-race].extension.valueCoding"
                ],
                "US Core race (OMB category or detailed code)"
            ),
            param!(
                "ethnicity",
                Token,
                [
                    "extension[url=http://hl7.org/fhir/us/core/StructureDefinition/us-core-ethnicity].extension.valueCoding"
                ],
                "US Core ethnicity (OMB category or detailed code)"
            ),
        ],
    },
    TypeDef {
        name: "Observation",
        params: &[
            OBSERVATION_SUBJECT[0],
            OBSERVATION_SUBJECT[1],
            param!(
                "category",
                Token,
                ["category"],
                "The classification of the observation"
            ),
            param!("code", Token, ["code"], "The code of the observation"),
            param!(
                "combo-code",
                Token,
                ["code", "component.code"],
                "The code of the observation or of any of its components"
            ),
            param!(
                "component-code",
                Token,
                ["component.code"],
                "The code of a component"
            ),
            param!(
                "date",
                Date,
                ["effectiveDateTime", "effectivePeriod", "effectiveInstant"],
                "Clinically relevant time or period of the observation"
            ),
            param!("status", Token, ["status"], "The status of the observation"),
            reference!(
                "encounter",
                ["encounter"],
                ["Encounter"],
                "The encounter the observation was made in"
            ),
            param!(
                "value-quantity",
                Quantity,
                ["valueQuantity"],
                "The value of the observation, when it is a Quantity"
            ),
            param!(
                "component-value-quantity",
                Quantity,
                ["component.valueQuantity"],
                "The value of a component, when it is a Quantity"
            ),
            param!(
                "combo-value-quantity",
                Quantity,
                ["valueQuantity", "component.valueQuantity"],
                "The value of the observation or of any component, when it is a Quantity"
            ),
            param!(
                "value-concept",
                Token,
                ["valueCodeableConcept"],
                "The value of the observation, when it is a CodeableConcept"
            ),
            reference!(
                "performer",
                ["performer"],
                [
                    "Practitioner",
                    "PractitionerRole",
                    "Organization",
                    "CareTeam",
                    "Patient",
                    "RelatedPerson"
                ],
                "Who performed the observation",
                compartment
            ),
        ],
    },
    TypeDef {
        name: "Condition",
        params: &[
            CONDITION_SUBJECT[0],
            CONDITION_SUBJECT[1],
            param!(
                "category",
                Token,
                ["category"],
                "The category of the condition"
            ),
            param!(
                "clinical-status",
                Token,
                ["clinicalStatus"],
                "The clinical status of the condition"
            ),
            param!(
                "verification-status",
                Token,
                ["verificationStatus"],
                "The verification status of the condition"
            ),
            param!("code", Token, ["code"], "The code of the condition"),
            param!(
                "onset-date",
                Date,
                ["onsetDateTime", "onsetPeriod"],
                "When the condition started, as a dateTime or period"
            ),
            param!(
                "abatement-date",
                Date,
                ["abatementDateTime", "abatementPeriod"],
                "When the condition resolved, as a dateTime or period"
            ),
            param!(
                "recorded-date",
                Date,
                ["recordedDate"],
                "When the condition was first recorded"
            ),
            param!(
                "asserted-date",
                Date,
                [
                    "extension[url=http://hl7.org/fhir/StructureDefinition/condition-assertedDate].valueDateTime"
                ],
                "When the condition was asserted (assertedDate extension)"
            ),
            reference!(
                "encounter",
                ["encounter"],
                ["Encounter"],
                "The encounter the condition was recorded in"
            ),
        ],
    },
    TypeDef {
        name: "Encounter",
        params: &[
            ENCOUNTER_SUBJECT[0],
            ENCOUNTER_SUBJECT[1],
            param!("date", Date, ["period"], "The period of the encounter"),
            param!(
                "class",
                Token,
                ["class"],
                "The class of the encounter (inpatient, ambulatory...)"
            ),
            param!(
                "type",
                Token,
                ["type"],
                "The specific type of the encounter"
            ),
            param!("status", Token, ["status"], "The status of the encounter"),
            param!(
                "identifier",
                Token,
                ["identifier"],
                "An encounter identifier"
            ),
            reference!(
                "location",
                ["location.location"],
                ["Location"],
                "A location where the encounter took place"
            ),
            reference!(
                "practitioner",
                ["participant.individual"],
                ["Practitioner"],
                "A practitioner who took part in the encounter"
            ),
            reference!(
                "participant",
                ["participant.individual"],
                ["Practitioner", "PractitionerRole", "RelatedPerson"],
                "Anyone who took part in the encounter"
            ),
            param!(
                "reason-code",
                Token,
                ["reasonCode"],
                "Coded reason the encounter took place"
            ),
            reference!(
                "service-provider",
                ["serviceProvider"],
                ["Organization"],
                "The organization responsible for the encounter"
            ),
            param!(
                "discharge-disposition",
                Token,
                ["hospitalization.dischargeDisposition"],
                "Where the patient went after discharge"
            ),
        ],
    },
    TypeDef {
        name: "MedicationRequest",
        params: &[
            MEDREQ_SUBJECT[0],
            MEDREQ_SUBJECT[1],
            param!(
                "status",
                Token,
                ["status"],
                "The status of the prescription"
            ),
            param!(
                "intent",
                Token,
                ["intent"],
                "The kind of request (order, plan, proposal...)"
            ),
            param!(
                "authoredon",
                Date,
                ["authoredOn"],
                "When the prescription was written"
            ),
            reference!(
                "encounter",
                ["encounter"],
                ["Encounter"],
                "The encounter the prescription was written in"
            ),
            reference!(
                "requester",
                ["requester"],
                [
                    "Practitioner",
                    "PractitionerRole",
                    "Organization",
                    "Patient",
                    "RelatedPerson",
                    "Device"
                ],
                "Who asked for the medication"
            ),
            param!(
                "code",
                Token,
                ["medicationCodeableConcept"],
                "The medication code, when given inline"
            ),
            reference!(
                "medication",
                ["medicationReference"],
                ["Medication"],
                "The medication, when given as a reference"
            ),
        ],
    },
    TypeDef {
        name: "AllergyIntolerance",
        params: &[
            reference!(
                "patient",
                ["patient"],
                ["Patient"],
                "Who the allergy or intolerance is for",
                compartment
            ),
            param!(
                "clinical-status",
                Token,
                ["clinicalStatus"],
                "The clinical status of the allergy"
            ),
            param!(
                "code",
                Token,
                ["code", "reaction.substance"],
                "The substance, or a reaction substance"
            ),
            param!(
                "date",
                Date,
                ["recordedDate"],
                "When the allergy was recorded"
            ),
        ],
    },
    TypeDef {
        name: "Immunization",
        params: &[
            reference!(
                "patient",
                ["patient"],
                ["Patient"],
                "The patient who was immunized",
                compartment
            ),
            param!(
                "date",
                Date,
                ["occurrenceDateTime"],
                "When the vaccine was administered (dateTime form only)"
            ),
            param!(
                "status",
                Token,
                ["status"],
                "The status of the immunization"
            ),
            param!(
                "vaccine-code",
                Token,
                ["vaccineCode"],
                "The vaccine product administered"
            ),
        ],
    },
    TypeDef {
        name: "Procedure",
        params: &[
            PROCEDURE_SUBJECT[0],
            PROCEDURE_SUBJECT[1],
            param!(
                "date",
                Date,
                ["performedDateTime", "performedPeriod"],
                "When the procedure was performed"
            ),
            param!("code", Token, ["code"], "The code of the procedure"),
            param!("status", Token, ["status"], "The status of the procedure"),
            reference!(
                "encounter",
                ["encounter"],
                ["Encounter"],
                "The encounter the procedure was performed in"
            ),
        ],
    },
    TypeDef {
        name: "DiagnosticReport",
        params: &[
            DIAGREPORT_SUBJECT[0],
            DIAGREPORT_SUBJECT[1],
            param!(
                "category",
                Token,
                ["category"],
                "The service category of the report"
            ),
            param!("code", Token, ["code"], "The code of the report"),
            param!(
                "date",
                Date,
                ["effectiveDateTime", "effectivePeriod"],
                "The clinically relevant time of the report"
            ),
            param!("status", Token, ["status"], "The status of the report"),
            reference!(
                "encounter",
                ["encounter"],
                ["Encounter"],
                "The encounter the report belongs to"
            ),
            reference!(
                "result",
                ["result"],
                ["Observation"],
                "An observation that is part of the report"
            ),
        ],
    },
    TypeDef {
        name: "DocumentReference",
        params: &[
            DOCREF_SUBJECT[0],
            DOCREF_SUBJECT[1],
            param!(
                "category",
                Token,
                ["category"],
                "The category of the document"
            ),
            param!("type", Token, ["type"], "The kind of document"),
            param!(
                "date",
                Date,
                ["date"],
                "When the document reference was created"
            ),
            param!(
                "period",
                Date,
                ["context.period"],
                "The time of service the document is about"
            ),
            param!(
                "status",
                Token,
                ["status"],
                "The status of the document reference"
            ),
            reference!(
                "encounter",
                ["context.encounter"],
                ["Encounter"],
                "The encounter the document is about"
            ),
        ],
    },
    TypeDef {
        name: "CareTeam",
        params: &[
            CARETEAM_SUBJECT[0],
            CARETEAM_SUBJECT[1],
            param!("status", Token, ["status"], "The status of the care team"),
            reference!(
                "participant",
                ["participant.member"],
                [
                    "Practitioner",
                    "PractitionerRole",
                    "RelatedPerson",
                    "Patient",
                    "Organization",
                    "CareTeam"
                ],
                "A member of the care team",
                compartment
            ),
            param!("category", Token, ["category"], "The type of care team"),
            param!(
                "role",
                Token,
                ["participant.role"],
                "The role of a care team member"
            ),
        ],
    },
    TypeDef {
        name: "Coverage",
        params: &[
            reference!(
                "patient",
                ["beneficiary"],
                ["Patient"],
                "The patient covered by the plan",
                compartment
            ),
            reference!(
                "beneficiary",
                ["beneficiary"],
                ["Patient"],
                "The patient covered by the plan",
                compartment
            ),
            reference!(
                "payor",
                ["payor"],
                ["Organization", "Patient", "RelatedPerson"],
                "Who pays for the coverage",
                compartment
            ),
            param!("status", Token, ["status"], "The status of the coverage"),
            param!(
                "identifier",
                Token,
                ["identifier"],
                "A coverage identifier (member id)"
            ),
        ],
    },
    TypeDef {
        name: "Practitioner",
        params: &[
            param!(
                "identifier",
                Token,
                ["identifier"],
                "A practitioner identifier such as the NPI"
            ),
            param!(
                "name",
                String,
                ["name"],
                "Any part of a name: family, given, prefix, suffix or text"
            ),
            param!("family", String, ["name.family"], "A family name"),
            param!("given", String, ["name.given"], "A given name"),
        ],
    },
    TypeDef {
        name: "PractitionerRole",
        params: &[
            reference!(
                "practitioner",
                ["practitioner"],
                ["Practitioner"],
                "The practitioner who has the role"
            ),
            param!(
                "specialty",
                Token,
                ["specialty"],
                "The practitioner's specialty in the role"
            ),
            reference!(
                "organization",
                ["organization"],
                ["Organization"],
                "The organization where the role is available"
            ),
            reference!(
                "location",
                ["location"],
                ["Location"],
                "A location where the role is performed"
            ),
            reference!(
                "endpoint",
                ["endpoint"],
                ["Endpoint"],
                "Technical endpoints for the role"
            ),
        ],
    },
    TypeDef {
        name: "Organization",
        params: &[
            param!(
                "identifier",
                Token,
                ["identifier"],
                "An organization identifier such as the NPI"
            ),
            param!(
                "name",
                String,
                ["name", "alias"],
                "The name or an alias of the organization"
            ),
            param!(
                "address",
                String,
                ["address"],
                "Any part of an address: line, city, district, state, postal code, country or text"
            ),
        ],
    },
    TypeDef {
        name: "Location",
        params: &[
            param!(
                "name",
                String,
                ["name", "alias"],
                "The name or an alias of the location"
            ),
            param!(
                "address",
                String,
                ["address"],
                "Any part of the address: line, city, district, state, postal code, country or text"
            ),
            param!(
                "address-city",
                String,
                ["address.city"],
                "The city of the address"
            ),
            param!(
                "address-state",
                String,
                ["address.state"],
                "The state of the address"
            ),
            param!(
                "address-postalcode",
                String,
                ["address.postalCode"],
                "The postal code of the address"
            ),
            reference!(
                "organization",
                ["managingOrganization"],
                ["Organization"],
                "The organization responsible for the location"
            ),
        ],
    },
    TypeDef {
        name: "Group",
        params: &[
            reference!(
                "member",
                ["member.entity"],
                [
                    "Patient",
                    "Practitioner",
                    "PractitionerRole",
                    "Device",
                    "Medication",
                    "Substance",
                    "Group"
                ],
                "A member of the group",
                compartment
            ),
            param!(
                "name",
                String,
                ["name"],
                "The label of the group (fhirdrill extension: not an R4 base parameter)"
            ),
            param!("identifier", Token, ["identifier"], "A group identifier"),
            param!(
                "type",
                Token,
                ["type"],
                "The kind of members (person, animal...)"
            ),
            param!("code", Token, ["code"], "The kind of group"),
        ],
    },
    TypeDef {
        name: "AuditEvent",
        params: &[
            param!("date", Date, ["recorded"], "When the event was recorded"),
            reference!(
                "agent",
                ["agent.who"],
                [
                    "Practitioner",
                    "PractitionerRole",
                    "Organization",
                    "Device",
                    "Patient",
                    "RelatedPerson"
                ],
                "Who took part in the event"
            ),
            reference!(
                "entity",
                ["entity.what"],
                [],
                "An entity the event was about"
            ),
            reference!(
                "patient",
                ["agent.who", "entity.what"],
                ["Patient"],
                "A patient that took part in, or was the subject of, the event",
                compartment
            ),
            param!("type", Token, ["type"], "The type of event"),
            param!(
                "subtype",
                Token,
                ["subtype"],
                "The more specific type of event"
            ),
            param!(
                "action",
                Token,
                ["action"],
                "The kind of action (C, R, U, D, E)"
            ),
            param!(
                "outcome",
                Token,
                ["outcome"],
                "Whether the event succeeded (0, 4, 8, 12)"
            ),
            reference!(
                "source",
                ["source.observer"],
                [
                    "Practitioner",
                    "PractitionerRole",
                    "Organization",
                    "Device",
                    "Patient",
                    "RelatedPerson"
                ],
                "Who reported the event"
            ),
        ],
    },
    TypeDef {
        name: "Provenance",
        params: &[
            reference!(
                "target",
                ["target"],
                [],
                "The resource the provenance is about"
            ),
            reference!(
                "patient",
                ["target"],
                ["Patient"],
                "The patient the provenance is about",
                compartment
            ),
            reference!(
                "agent",
                ["agent.who"],
                [
                    "Practitioner",
                    "PractitionerRole",
                    "Organization",
                    "Device",
                    "Patient",
                    "RelatedPerson"
                ],
                "Who took part in the activity"
            ),
            param!(
                "recorded",
                Date,
                ["recorded"],
                "When the activity was recorded"
            ),
        ],
    },
];

/// Looks up a type's table entry.
fn type_def(resource_type: &str) -> Option<&'static TypeDef> {
    TYPES.iter().find(|t| t.name == resource_type)
}

/// The resource types that can be searched, in CapabilityStatement order.
pub fn supported_types() -> Vec<&'static str> {
    TYPES.iter().map(|t| t.name).collect()
}

/// True when `resource_type` can be searched.
pub fn is_supported(resource_type: &str) -> bool {
    type_def(resource_type).is_some()
}

/// Every parameter of a type (the common `_id`, `_lastUpdated`... first); empty for unknown types.
pub fn params_for(resource_type: &str) -> Vec<&'static SearchParamDef> {
    match type_def(resource_type) {
        Some(t) => COMMON.iter().chain(t.params.iter()).collect(),
        None => Vec::new(),
    }
}

/// The parameter `name` of `resource_type`, if the type is supported and defines it.
pub fn lookup(resource_type: &str, name: &str) -> Option<&'static SearchParamDef> {
    let t = type_def(resource_type)?;
    COMMON
        .iter()
        .chain(t.params.iter())
        .find(|p| p.name == name)
}

/// The reference parameters of a type that define membership of the patient compartment.
pub fn compartment_params(resource_type: &str) -> Vec<&'static SearchParamDef> {
    params_for(resource_type)
        .into_iter()
        .filter(|p| p.patient_compartment)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashSet;

    #[test]
    fn names_are_unique_per_type() {
        for t in supported_types() {
            let mut seen = HashSet::new();
            for p in params_for(t) {
                assert!(seen.insert(p.name), "{t}.{} is defined twice", p.name);
            }
        }
    }

    #[test]
    fn only_references_have_targets_or_compartment_flags() {
        for t in supported_types() {
            for p in params_for(t) {
                if p.kind != ParamType::Reference {
                    assert!(p.targets.is_empty(), "{t}.{}", p.name);
                    assert!(!p.patient_compartment, "{t}.{}", p.name);
                }
                assert!(!p.paths.is_empty(), "{t}.{}", p.name);
                assert!(!p.doc.is_empty(), "{t}.{}", p.name);
            }
        }
    }

    #[test]
    fn filtered_paths_are_well_formed() {
        for t in supported_types() {
            for p in params_for(t) {
                for path in p.paths {
                    let opens = path.matches('[').count();
                    assert_eq!(opens, path.matches(']').count(), "{t}.{}: {path}", p.name);
                    if opens > 0 {
                        assert!(path.contains('='), "{t}.{}: {path}", p.name);
                    }
                    assert!(!path.starts_with('.') && !path.ends_with('.'), "{path}");
                }
            }
        }
    }

    #[test]
    fn lookup_finds_common_and_specific_params() {
        let id = lookup("Observation", "_id").map(|p| p.kind);
        assert_eq!(id, Some(ParamType::Token));
        let patient = lookup("Observation", "patient");
        assert_eq!(patient.map(|p| p.targets), Some(&["Patient"][..]));
        assert!(lookup("Observation", "birthdate").is_none());
        assert!(lookup("Spaceship", "_id").is_none());
        assert!(params_for("Spaceship").is_empty());
        assert!(is_supported("AuditEvent"));
        assert!(!is_supported("observation"));
    }

    #[test]
    fn compartment_params_cover_patient_links() {
        let names: Vec<_> = compartment_params("Observation")
            .iter()
            .map(|p| p.name)
            .collect();
        assert_eq!(names, ["patient", "subject", "performer"]);
        assert!(compartment_params("Practitioner").is_empty());
        let coverage: Vec<_> = compartment_params("Coverage")
            .iter()
            .map(|p| p.name)
            .collect();
        assert!(coverage.contains(&"beneficiary"));
    }

    #[test]
    fn subject_targets_constant_matches_the_macro() {
        let subject = lookup("Condition", "subject").map(|p| p.targets);
        assert_eq!(
            subject,
            Some(&["Patient", "Group", "Device", "Location"][..])
        );
    }
}

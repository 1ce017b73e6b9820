//! The FHIR R4 (4.0.1) resource types, and validation of resource ids and bodies.

use serde_json::Value;

use crate::outcome::{FhirError, IssueType};

/// Every resource type of FHIR R4 (4.0.1).
pub const R4_RESOURCE_TYPES: &[&str] = &[
    "Account",
    "ActivityDefinition",
    "AdverseEvent",
    "AllergyIntolerance",
    "Appointment",
    "AppointmentResponse",
    "AuditEvent",
    "Basic",
    "Binary",
    "BiologicallyDerivedProduct",
    "BodyStructure",
    "Bundle",
    "CapabilityStatement",
    "CarePlan",
    "CareTeam",
    "CatalogEntry",
    "ChargeItem",
    "ChargeItemDefinition",
    "Claim",
    "ClaimResponse",
    "ClinicalImpression",
    "CodeSystem",
    "Communication",
    "CommunicationRequest",
    "CompartmentDefinition",
    "Composition",
    "ConceptMap",
    "Condition",
    "Consent",
    "Contract",
    "Coverage",
    "CoverageEligibilityRequest",
    "CoverageEligibilityResponse",
    "DetectedIssue",
    "Device",
    "DeviceDefinition",
    "DeviceMetric",
    "DeviceRequest",
    "DeviceUseStatement",
    "DiagnosticReport",
    "DocumentManifest",
    "DocumentReference",
    "EffectEvidenceSynthesis",
    "Encounter",
    "Endpoint",
    "EnrollmentRequest",
    "EnrollmentResponse",
    "EpisodeOfCare",
    "EventDefinition",
    "Evidence",
    "EvidenceVariable",
    "ExampleScenario",
    "ExplanationOfBenefit",
    "FamilyMemberHistory",
    "Flag",
    "Goal",
    "GraphDefinition",
    "Group",
    "GuidanceResponse",
    "HealthcareService",
    "ImagingStudy",
    "Immunization",
    "ImmunizationEvaluation",
    "ImmunizationRecommendation",
    "ImplementationGuide",
    "InsurancePlan",
    "Invoice",
    "Library",
    "Linkage",
    "List",
    "Location",
    "Measure",
    "MeasureReport",
    "Media",
    "Medication",
    "MedicationAdministration",
    "MedicationDispense",
    "MedicationKnowledge",
    "MedicationRequest",
    "MedicationStatement",
    "MedicinalProduct",
    "MedicinalProductAuthorization",
    "MedicinalProductContraindication",
    "MedicinalProductIndication",
    "MedicinalProductIngredient",
    "MedicinalProductInteraction",
    "MedicinalProductManufactured",
    "MedicinalProductPackaged",
    "MedicinalProductPharmaceutical",
    "MedicinalProductUndesirableEffect",
    "MessageDefinition",
    "MessageHeader",
    "MolecularSequence",
    "NamingSystem",
    "NutritionOrder",
    "Observation",
    "ObservationDefinition",
    "OperationDefinition",
    "OperationOutcome",
    "Organization",
    "OrganizationAffiliation",
    "Parameters",
    "Patient",
    "PaymentNotice",
    "PaymentReconciliation",
    "Person",
    "PlanDefinition",
    "Practitioner",
    "PractitionerRole",
    "Procedure",
    "Provenance",
    "Questionnaire",
    "QuestionnaireResponse",
    "RelatedPerson",
    "RequestGroup",
    "ResearchDefinition",
    "ResearchElementDefinition",
    "ResearchStudy",
    "ResearchSubject",
    "RiskAssessment",
    "RiskEvidenceSynthesis",
    "Schedule",
    "SearchParameter",
    "ServiceRequest",
    "Slot",
    "Specimen",
    "SpecimenDefinition",
    "StructureDefinition",
    "StructureMap",
    "Subscription",
    "Substance",
    "SubstanceNucleicAcid",
    "SubstancePolymer",
    "SubstanceProtein",
    "SubstanceReferenceInformation",
    "SubstanceSourceMaterial",
    "SubstanceSpecification",
    "SupplyDelivery",
    "SupplyRequest",
    "Task",
    "TerminologyCapabilities",
    "TestReport",
    "TestScript",
    "ValueSet",
    "VerificationResult",
    "VisionPrescription",
];

/// Types that are protocol messages, never stored through the REST API.
const NOT_STORED: &[&str] = &["OperationOutcome", "Parameters", "CapabilityStatement"];

/// Whether `name` is a FHIR R4 resource type this server stores.
pub fn is_storable_type(name: &str) -> bool {
    R4_RESOURCE_TYPES.binary_search(&name).is_ok() && !NOT_STORED.contains(&name)
}

/// Checks that `name` is a storable type, or explains.
pub fn check_type(name: &str) -> Result<(), FhirError> {
    if is_storable_type(name) {
        Ok(())
    } else if R4_RESOURCE_TYPES.binary_search(&name).is_ok() {
        Err(FhirError::new(
            404,
            IssueType::NotSupported,
            format!("{name} resources are not stored by this server"),
        ))
    } else {
        Err(FhirError::not_found(format!(
            "unknown resource type {name:?}: not a FHIR R4 resource type"
        )))
    }
}

/// Whether `id` is a valid FHIR id: 1 to 64 of `A-Z a-z 0-9 - .`.
pub fn is_valid_id(id: &str) -> bool {
    (1..=64).contains(&id.len())
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'.')
}

/// Checks the shape every stored resource must have: `resourceType` of the expected type, an
/// optional valid `id`, and an object `meta`.
pub fn check_resource(resource: &Value, expected_type: &str) -> Result<(), FhirError> {
    let structure =
        |msg: String, at: &str| FhirError::new(400, IssueType::Structure, msg).at(at.to_string());
    let Some(found) = resource.get("resourceType").and_then(Value::as_str) else {
        return Err(structure(
            "the resource has no resourceType".into(),
            "resourceType",
        ));
    };
    if found != expected_type {
        return Err(FhirError::bad_request(format!(
            "resourceType {found} does not match the URL's type {expected_type}"
        ))
        .at("resourceType"));
    }
    if let Some(id) = resource.get("id") {
        let valid = id.as_str().is_some_and(is_valid_id);
        if !valid {
            return Err(structure(
                format!("invalid id {id}: use 1 to 64 letters, digits, '-' or '.'"),
                "id",
            ));
        }
    }
    if let Some(meta) = resource.get("meta")
        && !meta.is_object()
    {
        return Err(structure("meta must be an object".into(), "meta"));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn the_type_list_is_sorted_for_binary_search() {
        assert!(R4_RESOURCE_TYPES.windows(2).all(|w| w[0] < w[1]));
        assert_eq!(R4_RESOURCE_TYPES.len(), 146);
    }

    #[test]
    fn checks() {
        assert!(is_storable_type("Observation"));
        assert!(!is_storable_type("OperationOutcome"));
        assert_eq!(check_type("Banana").map_err(|e| e.status), Err(404));
        assert!(is_valid_id("a-b.C9"));
        assert!(!is_valid_id("a/b") && !is_valid_id("") && !is_valid_id(&"x".repeat(65)));
        let ok = json!({"resourceType": "Patient", "id": "p1"});
        assert!(check_resource(&ok, "Patient").is_ok());
        assert!(check_resource(&ok, "Observation").is_err());
        assert!(check_resource(&json!({"id": "x"}), "Patient").is_err());
        assert!(check_resource(&json!({"resourceType": "Patient", "id": 3}), "Patient").is_err());
    }
}

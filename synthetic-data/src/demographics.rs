//! Who a synthetic patient is: name, sex, birth date, address, contact details, race,
//! ethnicity and language, and the US Core Patient resource that records them.

use fake::Fake;
use fake::faker::address::en::{BuildingNumber, CityName, StateAbbr, StreetName, ZipCode};
use fake::faker::name::en::LastName;
use serde_json::{Value, json};
use time::Date;

use crate::clinical::Sex;
use crate::dates::{add_days, fhir_date};
use crate::fhir::{Code, reference, reference_with_display, resource, system, with};
use crate::identifiers;
use crate::names::given_name;
use crate::rng::Dice;

/// The identifying facts of one patient: these are the canary values.
#[derive(Debug, Clone)]
pub struct Person {
    /// Sex assigned at birth (also the administrative gender here).
    pub sex: Sex,
    /// Given name.
    pub given: String,
    /// Family name.
    pub family: String,
    /// Date of birth.
    pub birth_date: Date,
    /// Medical record number.
    pub mrn: String,
    /// SSN-shaped value from a never-issued range.
    pub ssn: String,
    /// Home phone.
    pub phone: String,
    /// Email address.
    pub email: String,
}

impl Person {
    /// "Given Family", exactly as written in `Patient.name.text`.
    pub fn full_name(&self) -> String {
        format!("{} {}", self.given, self.family)
    }
}

/// Age bands (years) and their weights, roughly the shape of the US population.
const AGE_BANDS: [(i64, i64, u32); 7] = [
    (0, 17, 22),
    (18, 29, 16),
    (30, 44, 19),
    (45, 59, 19),
    (60, 74, 16),
    (75, 89, 7),
    (90, 99, 1),
];

/// Draws the person of patient `index`.
pub fn draw_person(dice: &mut Dice, seed: u64, index: u64, reference: Date) -> Person {
    let sex = if dice.chance(0.51) {
        Sex::Female
    } else {
        Sex::Male
    };
    let (lo, hi, _) = AGE_BANDS[dice.weighted(&AGE_BANDS.map(|(_, _, w)| w))];
    let age_days = dice.between(lo * 365, hi * 365 + 364).max(30);
    let birth_date = add_days(reference, -age_days);
    let given = given_name(dice, sex);
    let family: String = LastName().fake_with_rng(dice.rng());
    Person {
        sex,
        email: identifiers::email(seed, index, &given, &family),
        given,
        family,
        birth_date,
        mrn: identifiers::mrn(seed, index),
        ssn: identifiers::ssn(seed, index),
        phone: identifiers::phone(seed, index),
    }
}

const RACES: [(&str, &str, u32); 5] = [
    ("2106-3", "White", 60),
    ("2054-5", "Black or African American", 13),
    ("2028-9", "Asian", 6),
    ("1002-5", "American Indian or Alaska Native", 1),
    ("2076-8", "Native Hawaiian or Other Pacific Islander", 1),
];

const LANGUAGES: [(&str, &str, u32); 4] = [
    ("en-US", "English (United States)", 85),
    ("es", "Spanish", 12),
    ("zh", "Chinese", 2),
    ("vi", "Vietnamese", 1),
];

/// The links from a Patient to the rest of the record.
#[derive(Debug, Clone, Copy)]
pub struct PatientLinks<'a> {
    /// The Patient resource id.
    pub id: &'a str,
    /// The identifier system of MRNs in this environment.
    pub mrn_system: &'a str,
    /// The primary care practitioner (id, display).
    pub primary_care: (&'a str, &'a str),
    /// The managing organization (id, display).
    pub organization: (&'a str, &'a str),
    /// `meta.lastUpdated`.
    pub last_updated: &'a str,
}

/// The US Core Patient resource of `person`.
pub fn patient_resource(dice: &mut Dice, person: &Person, links: PatientLinks<'_>) -> Value {
    let (race_code, race_display, _) = RACES[dice.weighted(&RACES.map(|(_, _, w)| w))];
    let hispanic = dice.chance(0.19);
    let (ethnicity_code, ethnicity_display) = if hispanic {
        ("2135-2", "Hispanic or Latino")
    } else {
        ("2186-5", "Not Hispanic or Latino")
    };
    let (language, language_display, _) = LANGUAGES[dice.weighted(&LANGUAGES.map(|(_, _, w)| w))];
    let (gender, birth_sex) = match person.sex {
        Sex::Female => ("female", "F"),
        Sex::Male => ("male", "M"),
    };
    let number: String = BuildingNumber().fake_with_rng(dice.rng());
    let street: String = StreetName().fake_with_rng(dice.rng());
    let city: String = CityName().fake_with_rng(dice.rng());
    let state: String = StateAbbr().fake_with_rng(dice.rng());
    let zip: String = ZipCode().fake_with_rng(dice.rng());
    with(
        resource("Patient", links.id, "us-core-patient", links.last_updated),
        json!({
            "extension": [
                omb_extension("us-core-race", race_code, race_display),
                omb_extension("us-core-ethnicity", ethnicity_code, ethnicity_display),
                {"url": "http://hl7.org/fhir/us/core/StructureDefinition/us-core-birthsex", "valueCode": birth_sex}
            ],
            "identifier": [
                {
                    "use": "usual",
                    "type": identifier_type("MR", "Medical record number"),
                    "system": links.mrn_system,
                    "value": person.mrn
                },
                {
                    "use": "secondary",
                    "type": identifier_type("SS", "Social Security number"),
                    "system": system::US_SSN,
                    "value": person.ssn
                }
            ],
            "active": true,
            "name": [{"use": "official", "text": person.full_name(), "family": person.family, "given": [person.given]}],
            "telecom": [
                {"system": "phone", "value": person.phone, "use": "home"},
                {"system": "email", "value": person.email, "use": "home"}
            ],
            "gender": gender,
            "birthDate": fhir_date(person.birth_date),
            "address": [{
                "use": "home",
                "line": [format!("{number} {street}")],
                "city": city,
                "state": state,
                "postalCode": zip,
                "country": "US"
            }],
            "communication": [{
                "language": {"coding": [{"system": system::BCP47, "code": language, "display": language_display}], "text": language_display}
            }],
            "generalPractitioner": [reference_with_display("Practitioner", links.primary_care.0, links.primary_care.1)],
            "managingOrganization": reference_with_display("Organization", links.organization.0, links.organization.1)
        }),
    )
}

fn identifier_type(code: &'static str, display: &'static str) -> Value {
    Code {
        system: system::V2_0203,
        code,
        display,
    }
    .concept()
}

/// A US Core race or ethnicity extension with one OMB category and its text.
fn omb_extension(name: &str, code: &str, display: &str) -> Value {
    json!({
        "url": format!("http://hl7.org/fhir/us/core/StructureDefinition/{name}"),
        "extension": [
            {"url": "ombCategory", "valueCoding": {"system": system::CDC_RACE_ETHNICITY, "code": code, "display": display}},
            {"url": "text", "valueString": display}
        ]
    })
}

/// A reference to the patient, used by every resource of the record.
pub fn subject(patient_id: &str) -> Value {
    reference("Patient", patient_id)
}

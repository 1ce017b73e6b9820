//! Resources shared by every patient of a seed: organizations, locations, practitioners and
//! their roles.
//!
//! The directory has a fixed size whatever the population size, so patient `i` can pick its
//! practitioners without knowing how many patients there are (determinism per `(seed, i)`).

use fake::Fake;
use fake::faker::address::en::{BuildingNumber, CityName, StateAbbr, StreetName, ZipCode};
use fake::faker::name::en::LastName;
use serde_json::{Value, json};

use crate::clinical::Sex;
use crate::clinical::Specialty;
use crate::fhir::{Code, reference, reference_with_display, resource, system, with};
use crate::identifiers::npi;
use crate::names::given_name;
use crate::rng::Dice;

/// How many practitioners of each specialty the directory holds.
const STAFFING: [(Specialty, usize); 8] = [
    (Specialty::FamilyMedicine, 8),
    (Specialty::InternalMedicine, 4),
    (Specialty::Cardiology, 2),
    (Specialty::Endocrinology, 2),
    (Specialty::Pulmonology, 2),
    (Specialty::Nephrology, 2),
    (Specialty::Psychiatry, 2),
    (Specialty::Obstetrics, 2),
];

/// The kinds of care site, one organization and one location each.
const SITES: [&str; 3] = [
    "General Hospital",
    "Family Health Center",
    "Specialty Clinic",
];

/// Fictional payers for Coverage.
const PAYERS: [&str; 2] = [
    "Synthetic Mutual Health Plan",
    "Synthetic Senior Advantage Plan",
];

/// A practitioner of the directory, as patients reference it.
#[derive(Debug, Clone)]
pub struct Practitioner {
    /// The Practitioner resource id.
    pub id: String,
    /// The PractitionerRole resource id.
    pub role_id: String,
    /// "Dr. Given Family".
    pub display: String,
    /// The specialty.
    pub specialty: Specialty,
    /// The index of the care site (organization and location) where they work.
    pub site: usize,
}

/// A care site: a provider organization and its location.
#[derive(Debug, Clone)]
pub struct Site {
    /// The Organization resource id.
    pub organization_id: String,
    /// The Location resource id.
    pub location_id: String,
    /// The organization's name.
    pub name: String,
}

/// A payer organization.
#[derive(Debug, Clone)]
pub struct Payer {
    /// The Organization resource id.
    pub organization_id: String,
    /// The payer's name.
    pub name: String,
}

/// The shared directory of a seed and the resources that describe it.
#[derive(Debug, Clone)]
pub struct Directory {
    /// Every practitioner, in a fixed order.
    pub practitioners: Vec<Practitioner>,
    /// Every care site.
    pub sites: Vec<Site>,
    /// Every payer.
    pub payers: Vec<Payer>,
    /// The FHIR resources: Organization, Location, Practitioner, PractitionerRole.
    pub resources: Vec<Value>,
}

impl Directory {
    /// Builds the directory of `seed`.
    pub fn new(seed: u64, last_updated: &str) -> Self {
        let mut dice = Dice::for_shared(seed);
        let mut resources = Vec::new();
        let mut sites = Vec::new();
        for (i, kind) in SITES.iter().enumerate() {
            let city: String = CityName().fake_with_rng(dice.rng());
            let site = Site {
                organization_id: dice.uuid(),
                location_id: dice.uuid(),
                name: format!("{city} {kind}"),
            };
            let address = address(&mut dice, &city);
            let phone = site_phone(i);
            resources.push(organization(
                &site.organization_id,
                &site.name,
                &address,
                &phone,
                PROVIDER_TYPE,
                &mut dice,
                last_updated,
            ));
            resources.push(location(&site, &address, &phone, last_updated));
            sites.push(site);
        }
        let mut payers = Vec::new();
        for (i, name) in PAYERS.iter().enumerate() {
            let payer = Payer {
                organization_id: dice.uuid(),
                name: (*name).to_string(),
            };
            let address = address(&mut dice, "Springfield");
            resources.push(organization(
                &payer.organization_id,
                name,
                &address,
                &site_phone(10 + i),
                PAYER_TYPE,
                &mut dice,
                last_updated,
            ));
            payers.push(payer);
        }
        let mut practitioners = Vec::new();
        for (specialty, count) in STAFFING {
            for _ in 0..count {
                let (practitioner, mut pair) =
                    practitioner(&mut dice, specialty, &sites, last_updated);
                resources.append(&mut pair);
                practitioners.push(practitioner);
            }
        }
        Self {
            practitioners,
            sites,
            payers,
            resources,
        }
    }

    /// The practitioners of one specialty, in directory order.
    pub fn of_specialty(&self, specialty: Specialty) -> Vec<&Practitioner> {
        self.practitioners
            .iter()
            .filter(|p| p.specialty == specialty)
            .collect()
    }

    /// The care site a practitioner works at.
    pub fn site_of(&self, practitioner: &Practitioner) -> &Site {
        &self.sites[practitioner.site]
    }
}

const PROVIDER_TYPE: Code = Code {
    system: system::ORGANIZATION_TYPE,
    code: "prov",
    display: "Healthcare Provider",
};

const PAYER_TYPE: Code = Code {
    system: system::ORGANIZATION_TYPE,
    code: "pay",
    display: "Payer",
};

/// Organization phone numbers use the reserved 555-01xx block of a reserved area code.
fn site_phone(i: usize) -> String {
    format!("370-555-01{:02}", i % 100)
}

fn address(dice: &mut Dice, city: &str) -> Value {
    let number: String = BuildingNumber().fake_with_rng(dice.rng());
    let street: String = StreetName().fake_with_rng(dice.rng());
    let state: String = StateAbbr().fake_with_rng(dice.rng());
    let zip: String = ZipCode().fake_with_rng(dice.rng());
    json!({
        "line": [format!("{number} {street}")],
        "city": city,
        "state": state,
        "postalCode": zip,
        "country": "US"
    })
}

fn organization(
    id: &str,
    name: &str,
    address: &Value,
    phone: &str,
    kind: Code,
    dice: &mut Dice,
    last_updated: &str,
) -> Value {
    let map = resource("Organization", id, "us-core-organization", last_updated);
    with(
        map,
        json!({
            "identifier": [{"system": system::US_NPI, "value": npi(dice.below(1_000_000_000))}],
            "active": true,
            "type": [kind.concept()],
            "name": name,
            "telecom": [{"system": "phone", "value": phone, "use": "work"}],
            "address": [address]
        }),
    )
}

fn location(site: &Site, address: &Value, phone: &str, last_updated: &str) -> Value {
    let map = resource(
        "Location",
        &site.location_id,
        "us-core-location",
        last_updated,
    );
    with(
        map,
        json!({
            "status": "active",
            "name": site.name,
            "telecom": [{"system": "phone", "value": phone, "use": "work"}],
            "address": address,
            "managingOrganization": reference_with_display("Organization", &site.organization_id, &site.name)
        }),
    )
}

fn practitioner(
    dice: &mut Dice,
    specialty: Specialty,
    sites: &[Site],
    last_updated: &str,
) -> (Practitioner, Vec<Value>) {
    let sex = if dice.chance(0.5) {
        Sex::Female
    } else {
        Sex::Male
    };
    let given = given_name(dice, sex);
    let family: String = LastName().fake_with_rng(dice.rng());
    // Primary care works at the health center, specialists at the clinic or the hospital.
    let site = if specialty.is_primary_care() {
        1
    } else {
        [0, 2][dice.below(2) as usize]
    };
    let p = Practitioner {
        id: dice.uuid(),
        role_id: dice.uuid(),
        display: format!("Dr. {given} {family}"),
        specialty,
        site,
    };
    let npi_value = npi(dice.below(1_000_000_000));
    let gender = match sex {
        Sex::Female => "female",
        Sex::Male => "male",
    };
    let practitioner = with(
        resource("Practitioner", &p.id, "us-core-practitioner", last_updated),
        json!({
            "identifier": [{"system": system::US_NPI, "value": npi_value}],
            "active": true,
            "name": [{"use": "official", "text": format!("{given} {family}"), "family": family, "given": [given], "prefix": ["Dr."]}],
            "gender": gender
        }),
    );
    let site_info = &sites[site];
    let role = with(
        resource(
            "PractitionerRole",
            &p.role_id,
            "us-core-practitionerrole",
            last_updated,
        ),
        json!({
            "active": true,
            "practitioner": reference_with_display("Practitioner", &p.id, &p.display),
            "organization": reference_with_display("Organization", &site_info.organization_id, &site_info.name),
            "code": [{"coding": [{"system": "http://terminology.hl7.org/CodeSystem/practitioner-role", "code": "doctor", "display": "Doctor"}]}],
            "specialty": [specialty.code().concept()],
            "location": [reference("Location", &site_info.location_id)],
            "telecom": [{"system": "phone", "value": site_phone(site), "use": "work"}]
        }),
    );
    (p, vec![practitioner, role])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn directory_is_deterministic_and_staffed() {
        let a = Directory::new(7, "2026-01-01T00:00:00Z");
        let b = Directory::new(7, "2026-01-01T00:00:00Z");
        assert_eq!(a.resources, b.resources);
        assert_eq!(a.practitioners.len(), 24);
        for (specialty, count) in STAFFING {
            assert_eq!(a.of_specialty(specialty).len(), count);
        }
        assert_ne!(
            a.resources,
            Directory::new(8, "2026-01-01T00:00:00Z").resources
        );
    }
}

//! The condition model: which chronic conditions a synthetic patient has, and what follows.
//!
//! Prevalence depends on age and sex. The figures are rounded from published US national
//! estimates (CDC surveys) and aim at plausibility, not epidemiology:
//!
//! | condition              | who                    | probability                       |
//! |------------------------|------------------------|-----------------------------------|
//! | hypertension           | adults                 | 18–39: 8%, 40–59: 33%, 60+: 58%   |
//! | type 2 diabetes        | adults                 | 18–44: 3%, 45–64: 13%, 65+: 24% (×1.8 with BMI ≥ 30) |
//! | hyperlipidemia         | 20 and older           | 20–39: 8%, 40–59: 25%, 60+: 40%   |
//! | asthma                 | everyone               | children 7%, women 10%, men 6%    |
//! | COPD                   | 40 and older           | 7% of current or former smokers, 1% of never smokers |
//! | major depression       | 12 and older           | women 10%, men 6%                 |
//! | CKD stage 3            | 40 and older           | 40–59: 3%, 60+: 11% (×2 with diabetes or hypertension) |
//! | obesity                | adults                 | whenever the patient's BMI is 30 or more |
//! | osteoarthritis of knee | 50 and older           | 14%                               |
//! | pregnancy              | women 18–44            | 5% (prenatal visits follow)       |
//!
//! Each condition carries its SNOMED CT code with an ICD-10-CM translation, the medication that
//! treats it (if any) and the specialty that follows it, so labs, vitals, medications and care
//! teams stay consistent with the problem list.

use crate::fhir::{Code, icd, rx, sct, system};

/// Sex assigned at birth, which drives prevalence, reference ranges and pregnancy.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Sex {
    /// Female.
    Female,
    /// Male.
    Male,
}

/// A tobacco smoking history.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Smoking {
    /// Never smoked tobacco.
    Never,
    /// Smoked in the past.
    Former,
    /// Smokes every day.
    Current,
}

/// The chronic conditions the generator knows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Chronic {
    /// Essential hypertension.
    Hypertension,
    /// Type 2 diabetes mellitus.
    Type2Diabetes,
    /// Hyperlipidemia.
    Hyperlipidemia,
    /// Asthma.
    Asthma,
    /// Chronic obstructive pulmonary disease.
    Copd,
    /// Major depressive disorder.
    Depression,
    /// Chronic kidney disease, stage 3.
    ChronicKidneyDisease,
    /// Obesity (BMI 30 or more).
    Obesity,
    /// Osteoarthritis of the knee.
    KneeOsteoarthritis,
    /// Pregnancy, with prenatal care.
    Pregnancy,
}

/// Medical specialties of the practitioner pool (NUCC provider taxonomy codes).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Specialty {
    /// Family medicine (primary care).
    FamilyMedicine,
    /// Internal medicine (primary care).
    InternalMedicine,
    /// Cardiovascular disease.
    Cardiology,
    /// Endocrinology, diabetes and metabolism.
    Endocrinology,
    /// Pulmonary disease.
    Pulmonology,
    /// Nephrology.
    Nephrology,
    /// Psychiatry.
    Psychiatry,
    /// Obstetrics and gynecology.
    Obstetrics,
}

impl Specialty {
    /// The NUCC taxonomy code of this specialty.
    pub fn code(self) -> Code {
        let (code, display) = match self {
            Self::FamilyMedicine => ("207Q00000X", "Family Medicine Physician"),
            Self::InternalMedicine => ("207R00000X", "Internal Medicine Physician"),
            Self::Cardiology => ("207RC0000X", "Cardiovascular Disease Physician"),
            Self::Endocrinology => (
                "207RE0101X",
                "Endocrinology, Diabetes & Metabolism Physician",
            ),
            Self::Pulmonology => ("207RP1001X", "Pulmonary Disease Physician"),
            Self::Nephrology => ("207RN0300X", "Nephrology Physician"),
            Self::Psychiatry => ("2084P0800X", "Psychiatry Physician"),
            Self::Obstetrics => ("207V00000X", "Obstetrics & Gynecology Physician"),
        };
        Code {
            system: system::NUCC_TAXONOMY,
            code,
            display,
        }
    }

    /// True for the specialties that act as a primary care practitioner.
    pub fn is_primary_care(self) -> bool {
        matches!(self, Self::FamilyMedicine | Self::InternalMedicine)
    }
}

/// What the generator needs to know about one chronic condition.
#[derive(Debug, Clone, Copy)]
pub struct ConditionSpec {
    /// The SNOMED CT code.
    pub snomed: Code,
    /// The ICD-10-CM translation.
    pub icd10: Code,
    /// A short label for notes.
    pub label: &'static str,
    /// The youngest age (years) at which the condition may start.
    pub min_onset_age: i64,
    /// The specialty that follows it, when not only primary care.
    pub specialty: Option<Specialty>,
    /// The medications that treat it (one is prescribed).
    pub medications: &'static [Code],
}

const HYPERTENSION_MEDS: &[Code] = &[
    rx("314076", "lisinopril 10 MG Oral Tablet"),
    rx("197361", "amlodipine 5 MG Oral Tablet"),
    rx("310798", "hydrochlorothiazide 25 MG Oral Tablet"),
];
const DIABETES_MEDS: &[Code] = &[
    rx("861007", "metformin hydrochloride 500 MG Oral Tablet"),
    rx(
        "860975",
        "24 HR metformin hydrochloride 500 MG Extended Release Oral Tablet",
    ),
    rx(
        "106892",
        "insulin isophane, human 70 UNT/ML / insulin regular, human 30 UNT/ML Injectable Suspension [Humulin]",
    ),
];
const STATINS: &[Code] = &[
    rx("617310", "atorvastatin 20 MG Oral Tablet"),
    rx("312961", "simvastatin 20 MG Oral Tablet"),
];
const ASTHMA_MEDS: &[Code] = &[
    rx(
        "745679",
        "200 ACTUAT albuterol 0.09 MG/ACTUAT Metered Dose Inhaler",
    ),
    rx(
        "895994",
        "120 ACTUAT fluticasone propionate 0.044 MG/ACTUAT Metered Dose Inhaler",
    ),
];
const COPD_MEDS: &[Code] = &[rx(
    "745679",
    "200 ACTUAT albuterol 0.09 MG/ACTUAT Metered Dose Inhaler",
)];
const ANTIDEPRESSANTS: &[Code] = &[
    rx("312940", "sertraline 50 MG Oral Tablet"),
    rx("310385", "fluoxetine 20 MG Oral Capsule"),
];
const ANALGESICS: &[Code] = &[rx("310965", "ibuprofen 200 MG Oral Tablet")];

impl Chronic {
    /// Every condition, in the fixed order the generator draws them.
    pub const ALL: [Chronic; 10] = [
        Self::Hypertension,
        Self::Type2Diabetes,
        Self::Hyperlipidemia,
        Self::Asthma,
        Self::Copd,
        Self::Depression,
        Self::ChronicKidneyDisease,
        Self::Obesity,
        Self::KneeOsteoarthritis,
        Self::Pregnancy,
    ];

    /// The codes, onset age, specialty and treatment of this condition.
    pub fn spec(self) -> ConditionSpec {
        match self {
            Self::Hypertension => ConditionSpec {
                snomed: sct("59621000", "Essential hypertension (disorder)"),
                icd10: icd("I10", "Essential (primary) hypertension"),
                label: "hypertension",
                min_onset_age: 18,
                specialty: Some(Specialty::Cardiology),
                medications: HYPERTENSION_MEDS,
            },
            Self::Type2Diabetes => ConditionSpec {
                snomed: sct("44054006", "Diabetes mellitus type 2 (disorder)"),
                icd10: icd("E11.9", "Type 2 diabetes mellitus without complications"),
                label: "type 2 diabetes",
                min_onset_age: 18,
                specialty: Some(Specialty::Endocrinology),
                medications: DIABETES_MEDS,
            },
            Self::Hyperlipidemia => ConditionSpec {
                snomed: sct("55822004", "Hyperlipidemia (disorder)"),
                icd10: icd("E78.5", "Hyperlipidemia, unspecified"),
                label: "hyperlipidemia",
                min_onset_age: 20,
                specialty: None,
                medications: STATINS,
            },
            Self::Asthma => ConditionSpec {
                snomed: sct("195967001", "Asthma (disorder)"),
                icd10: icd("J45.909", "Unspecified asthma, uncomplicated"),
                label: "asthma",
                min_onset_age: 2,
                specialty: Some(Specialty::Pulmonology),
                medications: ASTHMA_MEDS,
            },
            Self::Copd => ConditionSpec {
                snomed: sct("13645005", "Chronic obstructive lung disease (disorder)"),
                icd10: icd(
                    "J44.9",
                    "Chronic obstructive pulmonary disease, unspecified",
                ),
                label: "COPD",
                min_onset_age: 40,
                specialty: Some(Specialty::Pulmonology),
                medications: COPD_MEDS,
            },
            Self::Depression => ConditionSpec {
                snomed: sct("370143000", "Major depressive disorder (disorder)"),
                icd10: icd(
                    "F32.9",
                    "Major depressive disorder, single episode, unspecified",
                ),
                label: "major depression",
                min_onset_age: 12,
                specialty: Some(Specialty::Psychiatry),
                medications: ANTIDEPRESSANTS,
            },
            Self::ChronicKidneyDisease => ConditionSpec {
                snomed: sct("433144002", "Chronic kidney disease stage 3 (disorder)"),
                icd10: icd("N18.30", "Chronic kidney disease, stage 3 unspecified"),
                label: "chronic kidney disease stage 3",
                min_onset_age: 40,
                specialty: Some(Specialty::Nephrology),
                medications: &[],
            },
            Self::Obesity => ConditionSpec {
                snomed: sct("414916001", "Obesity (disorder)"),
                icd10: icd("E66.9", "Obesity, unspecified"),
                label: "obesity",
                min_onset_age: 18,
                specialty: None,
                medications: &[],
            },
            Self::KneeOsteoarthritis => ConditionSpec {
                snomed: sct("239873007", "Osteoarthritis of knee (disorder)"),
                icd10: icd("M17.9", "Osteoarthritis of knee, unspecified"),
                label: "osteoarthritis of knee",
                min_onset_age: 50,
                specialty: None,
                medications: ANALGESICS,
            },
            Self::Pregnancy => ConditionSpec {
                snomed: sct("72892002", "Normal pregnancy (finding)"),
                icd10: icd(
                    "Z34.90",
                    "Encounter for supervision of normal pregnancy, unspecified, unspecified trimester",
                ),
                label: "pregnancy",
                min_onset_age: 18,
                specialty: Some(Specialty::Obstetrics),
                medications: &[],
            },
        }
    }
}

/// What the prevalence model needs to know about a patient at the reference date.
#[derive(Debug, Clone, Copy)]
pub struct RiskFactors {
    /// Age in whole years.
    pub age: i64,
    /// Sex assigned at birth.
    pub sex: Sex,
    /// Adult body-mass index (kg/m²), or a child's.
    pub bmi: f64,
    /// Smoking history.
    pub smoking: Smoking,
}

/// The probability that a patient with these risk factors has `condition`, given the conditions
/// already drawn (conditions are drawn in [`Chronic::ALL`] order, so later ones may depend on
/// earlier ones).
pub fn prevalence(condition: Chronic, risk: &RiskFactors, already: &[Chronic]) -> f64 {
    let RiskFactors {
        age,
        sex,
        bmi,
        smoking,
    } = *risk;
    let female = sex == Sex::Female;
    let has = |c| already.contains(&c);
    match condition {
        Chronic::Hypertension => band(age, &[(18, 0.08), (40, 0.33), (60, 0.58)]),
        Chronic::Type2Diabetes => {
            let base = band(age, &[(18, 0.03), (45, 0.13), (65, 0.24)]);
            if bmi >= 30.0 { base * 1.8 } else { base }
        }
        Chronic::Hyperlipidemia => band(age, &[(20, 0.08), (40, 0.25), (60, 0.40)]),
        Chronic::Asthma => match (age < 18, female) {
            (true, _) if age >= 2 => 0.07,
            (true, _) => 0.0,
            (false, true) => 0.10,
            (false, false) => 0.06,
        },
        Chronic::Copd if age < 40 => 0.0,
        Chronic::Copd => match smoking {
            Smoking::Never => 0.01,
            Smoking::Former | Smoking::Current => 0.07,
        },
        Chronic::Depression if age < 12 => 0.0,
        Chronic::Depression => {
            if female {
                0.10
            } else {
                0.06
            }
        }
        Chronic::ChronicKidneyDisease => {
            let base = band(age, &[(40, 0.03), (60, 0.11)]);
            if has(Chronic::Type2Diabetes) || has(Chronic::Hypertension) {
                base * 2.0
            } else {
                base
            }
        }
        Chronic::Obesity => {
            if age >= 18 && bmi >= 30.0 {
                1.0
            } else {
                0.0
            }
        }
        Chronic::KneeOsteoarthritis => band(age, &[(50, 0.14)]),
        Chronic::Pregnancy => {
            if female && (18..=44).contains(&age) {
                0.05
            } else {
                0.0
            }
        }
    }
}

/// The probability for `age` from `(from_age, probability)` steps (0 below the first step).
fn band(age: i64, steps: &[(i64, f64)]) -> f64 {
    steps
        .iter()
        .rev()
        .find(|(from, _)| age >= *from)
        .map_or(0.0, |(_, p)| *p)
}

/// The SNOMED CT code for a smoking history, from the US Core smoking status value set.
pub fn smoking_code(smoking: Smoking) -> Code {
    match smoking {
        Smoking::Never => sct("266919005", "Never smoked tobacco (finding)"),
        Smoking::Former => sct("8517006", "Ex-smoker (finding)"),
        Smoking::Current => sct("449868002", "Smokes tobacco daily (finding)"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn risk(age: i64, sex: Sex) -> RiskFactors {
        RiskFactors {
            age,
            sex,
            bmi: 24.0,
            smoking: Smoking::Never,
        }
    }

    #[test]
    fn prevalence_rises_with_age() {
        let young = prevalence(Chronic::Hypertension, &risk(25, Sex::Male), &[]);
        let old = prevalence(Chronic::Hypertension, &risk(70, Sex::Male), &[]);
        assert!(young < old);
        assert_eq!(
            prevalence(Chronic::Hypertension, &risk(10, Sex::Male), &[]),
            0.0
        );
    }

    #[test]
    fn pregnancy_only_for_adult_women_of_childbearing_age() {
        assert_eq!(
            prevalence(Chronic::Pregnancy, &risk(30, Sex::Male), &[]),
            0.0
        );
        assert_eq!(
            prevalence(Chronic::Pregnancy, &risk(60, Sex::Female), &[]),
            0.0
        );
        assert!(prevalence(Chronic::Pregnancy, &risk(30, Sex::Female), &[]) > 0.0);
    }

    #[test]
    fn every_condition_has_both_codings() {
        for c in Chronic::ALL {
            let spec = c.spec();
            assert_eq!(spec.snomed.system, system::SNOMED);
            assert_eq!(spec.icd10.system, system::ICD10CM);
        }
    }
}

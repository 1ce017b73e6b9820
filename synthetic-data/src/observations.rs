//! Vital signs, laboratory results and smoking status: LOINC-coded US Core Observations and
//! lab DiagnosticReports, with values that follow the patient's body and conditions.

use serde_json::{Map, Value, json};

use crate::clinical::{Chronic, Sex, Smoking, smoking_code};
use crate::fhir::{Code, loinc, quantity, reference, resource, system, with};
use crate::rng::{Dice, round_to};

/// Where and when an observation was made, and about whom.
#[derive(Debug, Clone, Copy)]
pub struct Context<'a> {
    /// The Patient id.
    pub patient_id: &'a str,
    /// The Encounter id.
    pub encounter_id: &'a str,
    /// When the observation was made (FHIR dateTime).
    pub effective: &'a str,
    /// `meta.lastUpdated`.
    pub last_updated: &'a str,
}

/// What an observation's value depends on at the moment it is taken.
#[derive(Debug, Clone)]
pub struct Physiology<'a> {
    /// Sex assigned at birth.
    pub sex: Sex,
    /// Age in years (fractional) at the time.
    pub age: f64,
    /// Conditions active at the time.
    pub active: &'a [Chronic],
    /// Height in cm at the time.
    pub height_cm: f64,
    /// Body-mass index at the time.
    pub bmi: f64,
}

impl Physiology<'_> {
    fn has(&self, condition: Chronic) -> bool {
        self.active.contains(&condition)
    }
}

/// A patient's growth: adult height and BMI, from which height and weight at any age follow.
#[derive(Debug, Clone, Copy)]
pub struct Body {
    /// Adult height (cm).
    pub adult_height_cm: f64,
    /// Adult body-mass index (kg/m²).
    pub adult_bmi: f64,
    /// A child's BMI offset from the median for age.
    pub child_bmi_offset: f64,
}

/// Fraction of adult height reached at each age (years), roughly the median growth curve.
const GROWTH: [(f64, f64); 11] = [
    (0.0, 0.30),
    (1.0, 0.44),
    (2.0, 0.51),
    (4.0, 0.60),
    (6.0, 0.68),
    (8.0, 0.75),
    (10.0, 0.81),
    (12.0, 0.87),
    (14.0, 0.94),
    (16.0, 0.98),
    (18.0, 1.0),
];

impl Body {
    /// Draws a body for someone of `sex`.
    pub fn draw(dice: &mut Dice, sex: Sex) -> Self {
        let mean = if sex == Sex::Female { 162.0 } else { 176.0 };
        Self {
            adult_height_cm: dice.normal(mean, 7.0),
            adult_bmi: dice.normal(28.0, 5.5).clamp(17.0, 48.0),
            child_bmi_offset: dice.normal(0.0, 1.8),
        }
    }

    /// Height (cm) at `age` years.
    pub fn height_at(&self, age: f64) -> f64 {
        let fraction = GROWTH.windows(2).find(|w| age < w[1].0).map_or(1.0, |w| {
            let (a0, f0) = w[0];
            let (a1, f1) = w[1];
            f0 + (f1 - f0) * (age.max(0.0) - a0) / (a1 - a0)
        });
        self.adult_height_cm * fraction
    }

    /// Body-mass index at `age` years.
    pub fn bmi_at(&self, age: f64) -> f64 {
        if age >= 18.0 {
            self.adult_bmi
        } else {
            // Children's median BMI dips from about 17 in infancy to 15.5 at six, then rises.
            let median = if age < 6.0 {
                17.0 - age * 0.25
            } else {
                15.5 + (age - 6.0) * 0.45
            };
            (median + self.child_bmi_offset).clamp(12.0, 40.0)
        }
    }
}

/// Vital signs US Core expects at a visit, in a fixed order.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Vital {
    /// Blood pressure panel (systolic and diastolic components).
    BloodPressure,
    /// Heart rate.
    HeartRate,
    /// Respiratory rate.
    RespiratoryRate,
    /// Body temperature.
    Temperature,
    /// Oxygen saturation by pulse oximetry.
    PulseOximetry,
    /// Body height.
    Height,
    /// Body weight.
    Weight,
    /// Body-mass index.
    Bmi,
}

impl Vital {
    /// The full set taken at a check-up.
    pub const CHECKUP: [Vital; 8] = [
        Self::BloodPressure,
        Self::HeartRate,
        Self::RespiratoryRate,
        Self::Temperature,
        Self::PulseOximetry,
        Self::Height,
        Self::Weight,
        Self::Bmi,
    ];

    /// The short set taken at a follow-up or prenatal visit.
    pub const FOLLOW_UP: [Vital; 3] = [Self::BloodPressure, Self::HeartRate, Self::Weight];
}

/// The LOINC code, UCUM unit and US Core profile of each vital sign.
fn vital_spec(vital: Vital) -> (Code, &'static str, &'static str) {
    match vital {
        Vital::BloodPressure => (
            loinc("85354-9", "Blood pressure panel with all children optional"),
            "mm[Hg]",
            "us-core-blood-pressure",
        ),
        Vital::HeartRate => (loinc("8867-4", "Heart rate"), "/min", "us-core-heart-rate"),
        Vital::RespiratoryRate => (
            loinc("9279-1", "Respiratory rate"),
            "/min",
            "us-core-respiratory-rate",
        ),
        Vital::Temperature => (
            loinc("8310-5", "Body temperature"),
            "Cel",
            "us-core-body-temperature",
        ),
        Vital::PulseOximetry => (
            loinc(
                "59408-5",
                "Oxygen saturation in Arterial blood by Pulse oximetry",
            ),
            "%",
            "us-core-pulse-oximetry",
        ),
        Vital::Height => (loinc("8302-2", "Body height"), "cm", "us-core-body-height"),
        Vital::Weight => (loinc("29463-7", "Body weight"), "kg", "us-core-body-weight"),
        Vital::Bmi => (
            loinc("39156-5", "Body mass index (BMI) [Ratio]"),
            "kg/m2",
            "us-core-bmi",
        ),
    }
}

fn category(code: &str, display: &str) -> Value {
    json!([{"coding": [{"system": system::OBSERVATION_CATEGORY, "code": code, "display": display}], "text": display}])
}

/// The start of an Observation: status, category, code, subject, encounter, time.
fn observation_base(
    id: &str,
    profile: &str,
    category_code: (&str, &str),
    code: Value,
    ctx: &Context<'_>,
) -> Map<String, Value> {
    let mut map = resource("Observation", id, profile, ctx.last_updated);
    map.insert("status".into(), json!("final"));
    map.insert(
        "category".into(),
        category(category_code.0, category_code.1),
    );
    map.insert("code".into(), code);
    map.insert("subject".into(), reference("Patient", ctx.patient_id));
    map.insert("encounter".into(), reference("Encounter", ctx.encounter_id));
    map.insert("effectiveDateTime".into(), json!(ctx.effective));
    map.insert("issued".into(), json!(ctx.effective));
    map
}

/// A blood pressure (systolic, diastolic) for this physiology.
fn blood_pressure(dice: &mut Dice, p: &Physiology<'_>) -> (f64, f64) {
    let (sys, dia) = if p.age < 18.0 {
        (
            dice.normal(98.0 + p.age, 6.0),
            dice.normal(58.0 + p.age / 2.0, 5.0),
        )
    } else if p.has(Chronic::Hypertension) {
        (dice.normal(142.0, 9.0), dice.normal(89.0, 5.0))
    } else {
        (dice.normal(118.0, 7.0), dice.normal(76.0, 5.0))
    };
    (sys.round(), dia.round().min(sys.round() - 20.0))
}

/// One vital-sign Observation.
pub fn vital_sign(dice: &mut Dice, vital: Vital, p: &Physiology<'_>, ctx: &Context<'_>) -> Value {
    let id = dice.uuid();
    let (code, unit, profile) = vital_spec(vital);
    let concept = if vital == Vital::PulseOximetry {
        // US Core requires both the pulse-oximetry code and the generic oxygen-saturation code.
        json!({"coding": [code.coding(), loinc("2708-6", "Oxygen saturation in Arterial blood").coding()], "text": code.display})
    } else {
        code.concept()
    };
    let mut map = observation_base(&id, profile, ("vital-signs", "Vital Signs"), concept, ctx);
    let value = match vital {
        Vital::BloodPressure => {
            let (sys, dia) = blood_pressure(dice, p);
            map.insert(
                "component".into(),
                json!([
                    {"code": loinc("8480-6", "Systolic blood pressure").concept(), "valueQuantity": quantity(sys, unit)},
                    {"code": loinc("8462-4", "Diastolic blood pressure").concept(), "valueQuantity": quantity(dia, unit)}
                ]),
            );
            return Value::Object(map);
        }
        Vital::HeartRate => {
            let mean = if p.age < 12.0 {
                120.0 - 4.0 * p.age
            } else {
                72.0
            };
            dice.normal(mean, 7.0).round()
        }
        Vital::RespiratoryRate => {
            let mean = if p.age < 12.0 {
                30.0 - 1.2 * p.age
            } else {
                15.0
            };
            dice.normal(mean, 1.5).round()
        }
        Vital::Temperature => round_to(dice.normal(36.8, 0.2), 1),
        Vital::PulseOximetry => {
            if p.has(Chronic::Copd) {
                dice.between(89, 94) as f64
            } else {
                dice.between(96, 100) as f64
            }
        }
        Vital::Height => round_to(p.height_cm, 1),
        Vital::Weight => round_to(weight_kg(p), 1),
        Vital::Bmi => round_to(p.bmi, 1),
    };
    map.insert("valueQuantity".into(), quantity(value, unit));
    Value::Object(map)
}

fn weight_kg(p: &Physiology<'_>) -> f64 {
    let metres = p.height_cm / 100.0;
    p.bmi * metres * metres
}

/// The smoking-status Observation (US Core smokingstatus).
pub fn smoking_status(dice: &mut Dice, smoking: Smoking, ctx: &Context<'_>) -> Value {
    let id = dice.uuid();
    let mut map = observation_base(
        &id,
        "us-core-smokingstatus",
        ("social-history", "Social History"),
        loinc("72166-2", "Tobacco smoking status").concept(),
        ctx,
    );
    map.insert(
        "valueCodeableConcept".into(),
        smoking_code(smoking).concept(),
    );
    Value::Object(map)
}

/// Laboratory panels ordered at visits.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Panel {
    /// Complete blood count.
    CompleteBloodCount,
    /// Basic metabolic panel.
    BasicMetabolic,
    /// Lipid panel.
    Lipid,
    /// Hemoglobin A1c (a single test reported as its own report).
    HemoglobinA1c,
}

impl Panel {
    fn code(self) -> Code {
        match self {
            Self::CompleteBloodCount => loinc("58410-2", "CBC panel - Blood by Automated count"),
            Self::BasicMetabolic => loinc("51990-0", "Basic metabolic panel - Blood"),
            Self::Lipid => loinc("57698-3", "Lipid panel with direct LDL - Serum or Plasma"),
            Self::HemoglobinA1c => loinc("4548-4", "Hemoglobin A1c/Hemoglobin.total in Blood"),
        }
    }

    fn analytes(self) -> &'static [Analyte] {
        use Analyte::*;
        match self {
            Self::CompleteBloodCount => {
                &[Leukocytes, Erythrocytes, Hemoglobin, Hematocrit, Platelets]
            }
            Self::BasicMetabolic => &[
                Glucose,
                UreaNitrogen,
                Creatinine,
                Sodium,
                Potassium,
                Chloride,
                CarbonDioxide,
                Calcium,
            ],
            Self::Lipid => &[Cholesterol, Triglycerides, Hdl, Ldl],
            Self::HemoglobinA1c => &[HemoglobinA1c],
        }
    }
}

/// Single laboratory tests.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Analyte {
    Leukocytes,
    Erythrocytes,
    Hemoglobin,
    Hematocrit,
    Platelets,
    Glucose,
    UreaNitrogen,
    Creatinine,
    Sodium,
    Potassium,
    Chloride,
    CarbonDioxide,
    Calcium,
    Cholesterol,
    Triglycerides,
    Hdl,
    Ldl,
    HemoglobinA1c,
}

/// How one analyte is coded and reported, and how its value is drawn.
struct AnalyteSpec {
    code: Code,
    unit: &'static str,
    places: u32,
    low: Option<f64>,
    high: Option<f64>,
    mean: f64,
    sd: f64,
}

#[allow(clippy::too_many_arguments)]
const fn spec(
    code: &'static str,
    display: &'static str,
    unit: &'static str,
    places: u32,
    low: Option<f64>,
    high: Option<f64>,
    mean: f64,
    sd: f64,
) -> AnalyteSpec {
    AnalyteSpec {
        code: loinc(code, display),
        unit,
        places,
        low,
        high,
        mean,
        sd,
    }
}

/// The coding, reference range and value distribution of `analyte` for this physiology.
fn analyte_spec(analyte: Analyte, p: &Physiology<'_>) -> AnalyteSpec {
    use Analyte::*;
    let female = p.sex == Sex::Female;
    let diabetic = p.has(Chronic::Type2Diabetes);
    let ckd = p.has(Chronic::ChronicKidneyDisease);
    let lipids = p.has(Chronic::Hyperlipidemia);
    match analyte {
        Leukocytes => spec(
            "6690-2",
            "Leukocytes [#/volume] in Blood by Automated count",
            "10*3/uL",
            1,
            Some(4.5),
            Some(11.0),
            7.0,
            1.4,
        ),
        Erythrocytes if female => spec(
            "789-8",
            "Erythrocytes [#/volume] in Blood by Automated count",
            "10*6/uL",
            2,
            Some(4.1),
            Some(5.1),
            4.5,
            0.25,
        ),
        Erythrocytes => spec(
            "789-8",
            "Erythrocytes [#/volume] in Blood by Automated count",
            "10*6/uL",
            2,
            Some(4.5),
            Some(5.9),
            5.1,
            0.3,
        ),
        Hemoglobin if female => spec(
            "718-7",
            "Hemoglobin [Mass/volume] in Blood",
            "g/dL",
            1,
            Some(12.0),
            Some(15.5),
            13.6,
            0.9,
        ),
        Hemoglobin => spec(
            "718-7",
            "Hemoglobin [Mass/volume] in Blood",
            "g/dL",
            1,
            Some(13.5),
            Some(17.5),
            15.2,
            1.0,
        ),
        Hematocrit if female => spec(
            "4544-3",
            "Hematocrit [Volume Fraction] of Blood by Automated count",
            "%",
            1,
            Some(36.0),
            Some(46.0),
            40.5,
            2.5,
        ),
        Hematocrit => spec(
            "4544-3",
            "Hematocrit [Volume Fraction] of Blood by Automated count",
            "%",
            1,
            Some(41.0),
            Some(53.0),
            45.5,
            2.8,
        ),
        Platelets => spec(
            "777-3",
            "Platelets [#/volume] in Blood by Automated count",
            "10*3/uL",
            0,
            Some(150.0),
            Some(400.0),
            255.0,
            45.0,
        ),
        Glucose => spec(
            "2345-7",
            "Glucose [Mass/volume] in Serum or Plasma",
            "mg/dL",
            0,
            Some(70.0),
            Some(99.0),
            if diabetic { 165.0 } else { 88.0 },
            if diabetic { 28.0 } else { 7.0 },
        ),
        UreaNitrogen => spec(
            "3094-0",
            "Urea nitrogen [Mass/volume] in Serum or Plasma",
            "mg/dL",
            0,
            Some(7.0),
            Some(20.0),
            if ckd { 31.0 } else { 14.0 },
            if ckd { 5.0 } else { 3.0 },
        ),
        Creatinine => {
            let (low, high, mean) = if female {
                (0.59, 1.04, 0.8)
            } else {
                (0.74, 1.35, 1.0)
            };
            spec(
                "2160-0",
                "Creatinine [Mass/volume] in Serum or Plasma",
                "mg/dL",
                2,
                Some(low),
                Some(high),
                if ckd { 1.9 } else { mean },
                if ckd { 0.3 } else { 0.1 },
            )
        }
        Sodium => spec(
            "2951-2",
            "Sodium [Moles/volume] in Serum or Plasma",
            "mmol/L",
            0,
            Some(135.0),
            Some(145.0),
            140.0,
            1.8,
        ),
        Potassium => spec(
            "2823-3",
            "Potassium [Moles/volume] in Serum or Plasma",
            "mmol/L",
            1,
            Some(3.5),
            Some(5.1),
            if ckd { 4.9 } else { 4.2 },
            0.3,
        ),
        Chloride => spec(
            "2075-0",
            "Chloride [Moles/volume] in Serum or Plasma",
            "mmol/L",
            0,
            Some(98.0),
            Some(107.0),
            102.0,
            2.0,
        ),
        CarbonDioxide => spec(
            "2028-9",
            "Carbon dioxide, total [Moles/volume] in Serum or Plasma",
            "mmol/L",
            0,
            Some(22.0),
            Some(29.0),
            25.0,
            1.8,
        ),
        Calcium => spec(
            "17861-6",
            "Calcium [Mass/volume] in Serum or Plasma",
            "mg/dL",
            1,
            Some(8.6),
            Some(10.3),
            9.5,
            0.3,
        ),
        Cholesterol => spec(
            "2093-3",
            "Cholesterol [Mass/volume] in Serum or Plasma",
            "mg/dL",
            0,
            None,
            Some(199.0),
            if lipids { 248.0 } else { 178.0 },
            18.0,
        ),
        Triglycerides => spec(
            "2571-8",
            "Triglyceride [Mass/volume] in Serum or Plasma",
            "mg/dL",
            0,
            None,
            Some(149.0),
            if lipids || diabetic { 205.0 } else { 115.0 },
            30.0,
        ),
        Hdl => spec(
            "2085-9",
            "Cholesterol in HDL [Mass/volume] in Serum or Plasma",
            "mg/dL",
            0,
            Some(40.0),
            None,
            if female { 58.0 } else { 48.0 },
            8.0,
        ),
        Ldl => spec(
            "18262-6",
            "Cholesterol in LDL [Mass/volume] in Serum or Plasma by Direct assay",
            "mg/dL",
            0,
            None,
            Some(129.0),
            if lipids { 168.0 } else { 102.0 },
            16.0,
        ),
        HemoglobinA1c => spec(
            "4548-4",
            "Hemoglobin A1c/Hemoglobin.total in Blood",
            "%",
            1,
            Some(4.0),
            Some(5.6),
            if diabetic { 8.1 } else { 5.2 },
            if diabetic { 0.8 } else { 0.2 },
        ),
    }
}

fn interpretation(value: f64, low: Option<f64>, high: Option<f64>) -> Value {
    let (code, display) = match (low, high) {
        (Some(l), _) if value < l => ("L", "Low"),
        (_, Some(h)) if value > h => ("H", "High"),
        _ => ("N", "Normal"),
    };
    json!([{"coding": [{"system": system::V3_INTERPRETATION, "code": code, "display": display}], "text": display}])
}

fn reference_range(unit: &str, low: Option<f64>, high: Option<f64>) -> Value {
    let mut range = Map::new();
    if let Some(l) = low {
        range.insert("low".into(), quantity(l, unit));
    }
    if let Some(h) = high {
        range.insert("high".into(), quantity(h, unit));
    }
    json!([range])
}

/// One lab result Observation.
fn lab_result(dice: &mut Dice, analyte: Analyte, p: &Physiology<'_>, ctx: &Context<'_>) -> Value {
    let id = dice.uuid();
    let s = analyte_spec(analyte, p);
    let value = round_to(dice.normal(s.mean, s.sd).max(0.1), s.places);
    let mut map = observation_base(
        &id,
        "us-core-observation-lab",
        ("laboratory", "Laboratory"),
        s.code.concept(),
        ctx,
    );
    map.insert("valueQuantity".into(), quantity(value, s.unit));
    map.insert(
        "interpretation".into(),
        interpretation(value, s.low, s.high),
    );
    map.insert(
        "referenceRange".into(),
        reference_range(s.unit, s.low, s.high),
    );
    Value::Object(map)
}

/// A lab panel: its result Observations followed by the DiagnosticReport that lists them.
pub fn lab_panel(
    dice: &mut Dice,
    panel: Panel,
    p: &Physiology<'_>,
    ctx: &Context<'_>,
    performer: (&str, &str),
) -> Vec<Value> {
    let mut out: Vec<Value> = panel
        .analytes()
        .iter()
        .map(|a| lab_result(dice, *a, p, ctx))
        .collect();
    let results: Vec<Value> = out
        .iter()
        .filter_map(|o| o["id"].as_str().map(|id| reference("Observation", id)))
        .collect();
    let id = dice.uuid();
    let report = with(
        resource(
            "DiagnosticReport",
            &id,
            "us-core-diagnosticreport-lab",
            ctx.last_updated,
        ),
        json!({
            "status": "final",
            "category": [{"coding": [{"system": system::V2_0074, "code": "LAB", "display": "Laboratory"}], "text": "Laboratory"}],
            "code": panel.code().concept(),
            "subject": reference("Patient", ctx.patient_id),
            "encounter": reference("Encounter", ctx.encounter_id),
            "effectiveDateTime": ctx.effective,
            "issued": ctx.effective,
            "performer": [{"reference": format!("Organization/{}", performer.0), "display": performer.1}],
            "result": results
        }),
    );
    out.push(report);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn physiology(active: &[Chronic]) -> Physiology<'_> {
        Physiology {
            sex: Sex::Male,
            age: 55.0,
            active,
            height_cm: 175.0,
            bmi: 27.0,
        }
    }

    const CTX: Context<'static> = Context {
        patient_id: "p",
        encounter_id: "e",
        effective: "2024-01-01T10:00:00Z",
        last_updated: "2026-01-01T00:00:00Z",
    };

    fn mean_of(panel: Panel, active: &[Chronic], code: &str) -> f64 {
        let mut dice = Dice::for_patient(1, 1);
        let p = physiology(active);
        let values: Vec<f64> = (0..200)
            .flat_map(|_| lab_panel(&mut dice, panel, &p, &CTX, ("o", "Org")))
            .filter(|r| r["code"]["coding"][0]["code"] == code)
            .filter_map(|r| r["valueQuantity"]["value"].as_f64())
            .collect();
        values.iter().sum::<f64>() / values.len() as f64
    }

    #[test]
    fn diabetic_patients_have_elevated_a1c() {
        assert!(mean_of(Panel::HemoglobinA1c, &[Chronic::Type2Diabetes], "4548-4") > 7.0);
        assert!(mean_of(Panel::HemoglobinA1c, &[], "4548-4") < 5.7);
    }

    #[test]
    fn hypertensive_patients_have_raised_blood_pressure() {
        let mut dice = Dice::for_patient(1, 2);
        let sick = physiology(&[Chronic::Hypertension]);
        let well = physiology(&[]);
        let systolic = |dice: &mut Dice, p: &Physiology<'_>| {
            (0..200).map(|_| blood_pressure(dice, p).0).sum::<f64>() / 200.0
        };
        assert!(systolic(&mut dice, &sick) > 135.0);
        assert!(systolic(&mut dice, &well) < 125.0);
    }

    #[test]
    fn report_lists_every_result_of_its_panel() {
        let mut dice = Dice::for_patient(1, 3);
        let out = lab_panel(
            &mut dice,
            Panel::Lipid,
            &physiology(&[]),
            &CTX,
            ("o", "Org"),
        );
        assert_eq!(out.len(), 5);
        let report = &out[4];
        assert_eq!(report["resourceType"], "DiagnosticReport");
        assert_eq!(report["result"].as_array().map(Vec::len), Some(4));
    }

    #[test]
    fn children_grow() {
        let body = Body {
            adult_height_cm: 170.0,
            adult_bmi: 24.0,
            child_bmi_offset: 0.0,
        };
        assert!(body.height_at(2.0) < body.height_at(10.0));
        assert!(body.height_at(10.0) < body.height_at(30.0));
        assert_eq!(body.height_at(30.0), 170.0);
    }
}

//! One patient's whole record, built from `(seed, index)` alone: the timeline of visits and the
//! resources each visit produces.

use serde::Serialize;
use serde_json::Value;
use time::Date;

use crate::care::{
    self, ALLERGIES, ConditionDates, RecordContext, Visit, VisitKind, procedures, vaccines,
};
use crate::clinical::{Chronic, RiskFactors, Smoking, Specialty, prevalence};
use crate::dates::{add_days, age_on, days_between, fhir_date, fhir_instant, in_flu_season};
use crate::demographics::{self, PatientLinks, Person};
use crate::fhir::Code;
use crate::notes::progress_note;
use crate::observations::{self, Body, Context, Panel, Physiology, Vital};
use crate::rng::Dice;
use crate::shared::{Directory, Practitioner};

/// How many years of history a record covers at most.
const HISTORY_YEARS: i64 = 10;
/// The chance of a yearly check-up in each year of the history.
const CHECKUP_RATE: f64 = 0.5;
/// The chance, per year and chronic condition, of a follow-up visit.
const FOLLOW_UP_RATE: f64 = 0.3;

/// The identifying values of one patient, exactly as they appear in its records: the strings
/// the harness searches for, byte for byte, in logs and network traffic.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Canary {
    /// The Patient resource id.
    pub patient_id: String,
    /// The patient's index in the population.
    pub index: u64,
    /// Medical record number.
    pub mrn: String,
    /// SSN-shaped value (never-issued range).
    pub ssn: String,
    /// Home phone number.
    pub phone: String,
    /// Email address.
    pub email: String,
    /// Full name, as in `Patient.name.text`.
    pub name: String,
    /// Birth date (`YYYY-MM-DD`).
    pub birth_date: String,
}

/// Everything generated for one patient.
#[derive(Debug, Clone)]
pub struct PatientRecord {
    /// The patient's index in the population.
    pub index: u64,
    /// The Patient resource id.
    pub patient_id: String,
    /// Every resource of the record, the Patient first, then in timeline order.
    pub resources: Vec<Value>,
    /// The patient's canary values.
    pub canary: Canary,
    /// The ids of the practitioners on the patient's care team (primary care first).
    pub care_team: Vec<String>,
}

/// A chronic condition a patient has, with its dates.
#[derive(Debug, Clone, Copy)]
struct Diagnosis {
    kind: Chronic,
    onset: Date,
    /// When it ended (a delivered pregnancy).
    abatement: Option<Date>,
}

impl Diagnosis {
    fn active_on(&self, date: Date) -> bool {
        self.onset <= date && self.abatement.is_none_or(|end| date < end)
    }
}

/// A planned visit before it becomes resources.
#[derive(Debug, Clone, Copy)]
struct PlannedVisit {
    date: Date,
    kind: VisitKind,
    reason: Option<Chronic>,
}

/// The part of a patient that does not change over the timeline.
struct Profile {
    index: u64,
    patient_id: String,
    person: Person,
    body: Body,
    smoking: Smoking,
    diagnoses: Vec<Diagnosis>,
    primary_care: usize,
    specialists: Vec<usize>,
}

/// Builds records for one seed and reference date.
#[derive(Debug, Clone)]
pub struct Generator {
    seed: u64,
    reference_date: Date,
    mrn_system: String,
    last_updated: String,
    directory: Directory,
}

impl Generator {
    /// A generator for `seed`, dated `reference_date`, whose MRNs belong to `environment`.
    pub fn new(seed: u64, reference_date: Date, environment: &str) -> Self {
        let last_updated = fhir_instant(reference_date, 0);
        Self {
            seed,
            reference_date,
            mrn_system: mrn_system(environment),
            directory: Directory::new(seed, &last_updated),
            last_updated,
        }
    }

    /// The seed.
    pub fn seed(&self) -> u64 {
        self.seed
    }

    /// The shared directory: organizations, locations, practitioners and their roles.
    pub fn directory(&self) -> &Directory {
        &self.directory
    }

    /// The resources shared by every patient (Organization, Location, Practitioner,
    /// PractitionerRole).
    pub fn shared_resources(&self) -> &[Value] {
        &self.directory.resources
    }

    /// The MRN identifier system of this generator's environment.
    pub fn mrn_system(&self) -> &str {
        &self.mrn_system
    }

    /// The Patient id of patient `index`, without generating the record.
    pub fn patient_id(&self, index: u64) -> String {
        Dice::for_patient(self.seed, index).uuid()
    }

    /// Generates patient `index`: the same value on every machine, whatever else was generated.
    pub fn patient(&self, index: u64) -> PatientRecord {
        let mut dice = Dice::for_patient(self.seed, index);
        let profile = self.draw_profile(&mut dice, index);
        let plan = self.plan_visits(&mut dice, &profile);
        let mut builder = RecordBuilder::new(self, &profile);
        builder.patient(&mut dice);
        for planned in &plan {
            builder.visit(&mut dice, planned);
        }
        builder.finish(&mut dice)
    }

    fn draw_profile(&self, dice: &mut Dice, index: u64) -> Profile {
        let patient_id = dice.uuid();
        let person = demographics::draw_person(dice, self.seed, index, self.reference_date);
        let age = age_on(person.birth_date, self.reference_date);
        let body = Body::draw(dice, person.sex);
        let smoking = if age >= 15 {
            [Smoking::Never, Smoking::Former, Smoking::Current][dice.weighted(&[60, 25, 15])]
        } else {
            Smoking::Never
        };
        let risk = RiskFactors {
            age,
            sex: person.sex,
            bmi: body.bmi_at(age as f64),
            smoking,
        };
        let diagnoses = self.draw_diagnoses(dice, &person, &risk);
        let (primary_care, specialists) = self.draw_care_team(dice, age, &diagnoses);
        Profile {
            index,
            patient_id,
            person,
            body,
            smoking,
            diagnoses,
            primary_care,
            specialists,
        }
    }

    fn draw_diagnoses(
        &self,
        dice: &mut Dice,
        person: &Person,
        risk: &RiskFactors,
    ) -> Vec<Diagnosis> {
        let mut drawn: Vec<Chronic> = Vec::new();
        let mut diagnoses = Vec::new();
        let latest = add_days(self.reference_date, -1);
        for kind in Chronic::ALL {
            if !dice.chance(prevalence(kind, risk, &drawn)) {
                continue;
            }
            drawn.push(kind);
            let earliest = add_days(person.birth_date, kind.spec().min_onset_age * 365 + 1);
            let diagnosis = if kind == Chronic::Pregnancy {
                let onset = add_days(self.reference_date, -dice.between(30, 700)).max(earliest);
                let delivery = add_days(onset, 280);
                Diagnosis {
                    kind,
                    onset,
                    abatement: (delivery < self.reference_date).then_some(delivery),
                }
            } else {
                let span = days_between(earliest, latest).max(0);
                Diagnosis {
                    kind,
                    onset: add_days(earliest, dice.between(0, span)).min(latest),
                    abatement: None,
                }
            };
            diagnoses.push(diagnosis);
        }
        diagnoses
    }

    /// Picks the primary care practitioner and one specialist per specialty the conditions need.
    fn draw_care_team(
        &self,
        dice: &mut Dice,
        age: i64,
        diagnoses: &[Diagnosis],
    ) -> (usize, Vec<usize>) {
        let primary_specialty = if age < 18 || dice.chance(0.6) {
            Specialty::FamilyMedicine
        } else {
            Specialty::InternalMedicine
        };
        let primary_care = self.pick_practitioner(dice, primary_specialty);
        let mut specialists: Vec<usize> = Vec::new();
        for d in diagnoses {
            let Some(specialty) = d.kind.spec().specialty else {
                continue;
            };
            let already = specialists
                .iter()
                .any(|i| self.directory.practitioners[*i].specialty == specialty);
            // Most hypertension is managed in primary care; some patients also see a cardiologist.
            if already || (d.kind == Chronic::Hypertension && !dice.chance(0.4)) {
                continue;
            }
            specialists.push(self.pick_practitioner(dice, specialty));
        }
        (primary_care, specialists)
    }

    fn pick_practitioner(&self, dice: &mut Dice, specialty: Specialty) -> usize {
        let candidates: Vec<usize> = (0..self.directory.practitioners.len())
            .filter(|i| self.directory.practitioners[*i].specialty == specialty)
            .collect();
        *dice.pick(&candidates)
    }

    /// The visits of the record window, in date order.
    fn plan_visits(&self, dice: &mut Dice, profile: &Profile) -> Vec<PlannedVisit> {
        let reference = self.reference_date;
        let birth = profile.person.birth_date;
        let window_start = add_days(reference, -HISTORY_YEARS * 365).max(add_days(birth, 3));
        let window_days = days_between(window_start, reference);
        let mut plan = Vec::new();
        let push = |plan: &mut Vec<PlannedVisit>, date: Date, kind, reason| {
            if date >= window_start && date < reference {
                plan.push(PlannedVisit { date, kind, reason });
            }
        };
        for year in 0..=(window_days / 365) {
            let date = add_days(window_start, year * 365 + dice.between(0, 364));
            if dice.chance(CHECKUP_RATE) {
                push(&mut plan, date, VisitKind::CheckUp, None);
            }
        }
        if !plan.iter().any(|v| v.kind == VisitKind::CheckUp) {
            let back = dice.between(1, window_days.clamp(1, 300));
            push(
                &mut plan,
                add_days(reference, -back),
                VisitKind::CheckUp,
                None,
            );
        }
        for d in &profile.diagnoses {
            plan_condition_visits(dice, &mut plan, d, window_start, reference, push);
        }
        plan.sort_by_key(|v| v.date);
        plan
    }
}

/// Follow-ups of a chronic condition, or the prenatal visits of a pregnancy, and a diagnosing
/// visit when no planned visit falls on or after the onset.
fn plan_condition_visits(
    dice: &mut Dice,
    plan: &mut Vec<PlannedVisit>,
    d: &Diagnosis,
    window_start: Date,
    reference: Date,
    push: impl Fn(&mut Vec<PlannedVisit>, Date, VisitKind, Option<Chronic>),
) {
    match d.kind {
        Chronic::Obesity => {}
        Chronic::Pregnancy => {
            let last = d.abatement.unwrap_or(reference).min(reference);
            let mut date = add_days(d.onset, 56);
            let mut kind = VisitKind::PrenatalInitial;
            while date < last {
                push(plan, date, kind, Some(d.kind));
                kind = VisitKind::Prenatal;
                date = add_days(date, 28 + dice.between(-3, 3));
            }
        }
        _ => {
            let from = d.onset.max(window_start);
            for year in 0..=(days_between(from, reference) / 365) {
                if dice.chance(FOLLOW_UP_RATE) {
                    let date = add_days(from, year * 365 + dice.between(20, 340));
                    push(plan, date, VisitKind::FollowUp, Some(d.kind));
                }
            }
        }
    }
    let recorded_later = plan.iter().any(|v| v.date >= d.onset);
    if !recorded_later {
        let kind = if d.kind == Chronic::Pregnancy {
            VisitKind::PrenatalInitial
        } else {
            VisitKind::FollowUp
        };
        push(plan, d.onset.max(window_start), kind, Some(d.kind));
    }
}

/// The MRN identifier system of an environment.
pub fn mrn_system(environment: &str) -> String {
    format!("urn:fhirdrill:{environment}:mrn")
}

/// Accumulates a record's resources visit by visit.
struct RecordBuilder<'a> {
    generator: &'a Generator,
    profile: &'a Profile,
    resources: Vec<Value>,
    /// Condition resource ids, once recorded (parallel to `profile.diagnoses`).
    condition_ids: Vec<Option<String>>,
    /// The medication prescribed for each diagnosis, if any.
    medicated: Vec<Option<&'static str>>,
    allergies_recorded: bool,
    given_once: Vec<&'static str>,
    checkups: usize,
}

impl<'a> RecordBuilder<'a> {
    fn new(generator: &'a Generator, profile: &'a Profile) -> Self {
        Self {
            generator,
            profile,
            resources: Vec::with_capacity(160),
            condition_ids: vec![None; profile.diagnoses.len()],
            medicated: vec![None; profile.diagnoses.len()],
            allergies_recorded: false,
            given_once: Vec::new(),
            checkups: 0,
        }
    }

    fn rc(&self) -> RecordContext<'a> {
        RecordContext {
            patient_id: &self.profile.patient_id,
            last_updated: &self.generator.last_updated,
        }
    }

    fn practitioner(&self, index: usize) -> &'a Practitioner {
        &self.generator.directory.practitioners[index]
    }

    fn patient(&mut self, dice: &mut Dice) {
        let primary = self.practitioner(self.profile.primary_care);
        let site = self.generator.directory.site_of(primary);
        let links = PatientLinks {
            id: &self.profile.patient_id,
            mrn_system: &self.generator.mrn_system,
            primary_care: (&primary.id, &primary.display),
            organization: (&site.organization_id, &site.name),
            last_updated: &self.generator.last_updated,
        };
        let patient = demographics::patient_resource(dice, &self.profile.person, links);
        self.resources.push(patient);
    }

    /// The practitioner who sees the patient for a visit.
    fn clinician_for(&self, planned: &PlannedVisit) -> &'a Practitioner {
        let wanted = planned.reason.and_then(|c| c.spec().specialty);
        wanted
            .and_then(|specialty| {
                self.profile
                    .specialists
                    .iter()
                    .map(|i| self.practitioner(*i))
                    .find(|p| p.specialty == specialty)
            })
            .unwrap_or_else(|| self.practitioner(self.profile.primary_care))
    }

    fn visit(&mut self, dice: &mut Dice, planned: &PlannedVisit) {
        let encounter_id = dice.uuid();
        let minute = 8 * 60 + 15 * dice.between(0, 32) as u32;
        let start = fhir_instant(planned.date, minute);
        let end = fhir_instant(planned.date, minute + 30);
        let practitioner = self.clinician_for(planned);
        let site = self.generator.directory.site_of(practitioner);
        let reason_spec = planned.reason.map(Chronic::spec);
        let visit = Visit {
            id: &encounter_id,
            kind: planned.kind,
            start: &start,
            end: &end,
            practitioner,
            site,
            reason: reason_spec.as_ref(),
        };
        let rc = self.rc();
        self.resources.push(care::encounter(&visit, &rc));
        self.record_diagnoses(dice, planned.date, &visit);
        if !self.allergies_recorded {
            self.record_allergies(dice, &visit);
        }
        let active: Vec<Chronic> = self
            .profile
            .diagnoses
            .iter()
            .filter(|d| d.active_on(planned.date))
            .map(|d| d.kind)
            .collect();
        let age_days = days_between(self.profile.person.birth_date, planned.date);
        let age = age_days as f64 / 365.25;
        let physiology = Physiology {
            sex: self.profile.person.sex,
            age,
            active: &active,
            height_cm: self.profile.body.height_at(age),
            bmi: self.profile.body.bmi_at(age),
        };
        let ctx = Context {
            patient_id: &self.profile.patient_id,
            encounter_id: &encounter_id,
            effective: &start,
            last_updated: &self.generator.last_updated,
        };
        let vitals_start = self.resources.len();
        self.vitals(dice, planned.kind, &physiology, &ctx);
        let vitals_end = self.resources.len();
        if planned.kind == VisitKind::CheckUp {
            self.checkups += 1;
            if age >= 13.0 {
                let smoking = observations::smoking_status(dice, self.profile.smoking, &ctx);
                self.resources.push(smoking);
            }
        }
        self.labs(dice, planned, &physiology, &ctx, &visit);
        self.immunizations(dice, planned, age, &visit);
        self.procedures(dice, planned, age, &active, &visit);
        let note = progress_note(
            &visit,
            &active,
            &self.resources[vitals_start..vitals_end],
            &self.active_medications(planned.date),
        );
        let rc = self.rc();
        self.resources
            .push(care::clinical_note(dice, &note, &visit, &rc));
    }

    /// Records every diagnosis whose onset is on or before this visit and that is not yet on the
    /// problem list, and prescribes its treatment.
    fn record_diagnoses(&mut self, dice: &mut Dice, date: Date, visit: &Visit<'_>) {
        let rc = self.rc();
        for (i, d) in self.profile.diagnoses.iter().enumerate() {
            if self.condition_ids[i].is_some() || d.onset > date {
                continue;
            }
            let id = dice.uuid();
            let spec = d.kind.spec();
            let onset = fhir_date(d.onset);
            let abatement = d.abatement.filter(|end| *end <= date).map(fhir_date);
            let dates = ConditionDates {
                onset: &onset,
                recorded: visit.start,
                abatement: abatement.as_deref(),
            };
            self.resources
                .push(care::condition(&id, &spec, dates, visit, &rc));
            if !spec.medications.is_empty() && d.abatement.is_none() {
                let medication = pick_medication(dice, d.kind, spec.medications);
                let med_id = dice.uuid();
                self.resources.push(care::medication_request(
                    &med_id, medication, &id, visit, &rc,
                ));
                self.medicated[i] = Some(medication.display);
            }
            self.condition_ids[i] = Some(id);
        }
    }

    fn record_allergies(&mut self, dice: &mut Dice, visit: &Visit<'_>) {
        self.allergies_recorded = true;
        let rc = self.rc();
        let weights = ALLERGIES.map(|(_, w)| w);
        let mut chosen: Vec<usize> = Vec::new();
        for probability in [0.2, 0.05] {
            if dice.chance(probability) {
                let pick = dice.weighted(&weights);
                if !chosen.contains(&pick) {
                    chosen.push(pick);
                    let id = dice.uuid();
                    self.resources
                        .push(care::allergy(&id, &ALLERGIES[pick].0, visit, &rc));
                }
            }
        }
    }

    fn vitals(&mut self, dice: &mut Dice, kind: VisitKind, p: &Physiology<'_>, ctx: &Context<'_>) {
        let set: &[Vital] = if kind == VisitKind::CheckUp {
            &Vital::CHECKUP
        } else {
            &Vital::FOLLOW_UP
        };
        for vital in set {
            let skip = (*vital == Vital::BloodPressure && p.age < 3.0)
                || (*vital == Vital::Bmi && p.age < 2.0);
            if !skip {
                self.resources
                    .push(observations::vital_sign(dice, *vital, p, ctx));
            }
        }
    }

    fn labs(
        &mut self,
        dice: &mut Dice,
        planned: &PlannedVisit,
        p: &Physiology<'_>,
        ctx: &Context<'_>,
        visit: &Visit<'_>,
    ) {
        let has = |c| p.active.contains(&c);
        let panels: Vec<Panel> = match planned.kind {
            VisitKind::CheckUp if p.age >= 18.0 => {
                let routine = self.checkups % 2 == 1;
                let mut panels = Vec::new();
                // A blood count every fourth check-up (the first, fifth, ninth).
                if self.checkups % 4 == 1 {
                    panels.push(Panel::CompleteBloodCount);
                }
                if p.age >= 20.0 && (routine || has(Chronic::Hyperlipidemia)) {
                    panels.push(Panel::Lipid);
                }
                let metabolic_risk =
                    has(Chronic::Type2Diabetes) || has(Chronic::ChronicKidneyDisease);
                let routine_metabolic = routine && (p.age >= 40.0 || has(Chronic::Hypertension));
                if routine_metabolic || metabolic_risk {
                    panels.push(Panel::BasicMetabolic);
                }
                if has(Chronic::Type2Diabetes) || (p.age >= 45.0 && self.checkups.is_multiple_of(3))
                {
                    panels.push(Panel::HemoglobinA1c);
                }
                panels
            }
            VisitKind::FollowUp => match planned.reason {
                Some(Chronic::Type2Diabetes) => vec![Panel::HemoglobinA1c],
                Some(Chronic::ChronicKidneyDisease) => vec![Panel::BasicMetabolic],
                Some(Chronic::Hyperlipidemia) => vec![Panel::Lipid],
                _ => Vec::new(),
            },
            VisitKind::PrenatalInitial => vec![Panel::CompleteBloodCount],
            _ => Vec::new(),
        };
        let performer = (
            visit.site.organization_id.as_str(),
            visit.site.name.as_str(),
        );
        for panel in panels {
            let mut results = observations::lab_panel(dice, panel, p, ctx, performer);
            self.resources.append(&mut results);
        }
    }

    fn immunizations(
        &mut self,
        dice: &mut Dice,
        planned: &PlannedVisit,
        age: f64,
        visit: &Visit<'_>,
    ) {
        let mut given: Vec<Code> = Vec::new();
        match planned.kind {
            VisitKind::CheckUp => {
                if age < 2.0 {
                    given.extend(vaccines::INFANT_SERIES);
                }
                if age >= 1.0 && in_flu_season(planned.date) && dice.chance(0.6) {
                    given.push(vaccines::INFLUENZA);
                }
                let once = [
                    (vaccines::TD, age >= 19.0, 0.15),
                    (vaccines::PNEUMOCOCCAL, age >= 65.0, 0.5),
                    (vaccines::HPV, (11.0..27.0).contains(&age), 0.3),
                ];
                for (vaccine, eligible, probability) in once {
                    if eligible
                        && !self.given_once.contains(&vaccine.code)
                        && dice.chance(probability)
                    {
                        self.given_once.push(vaccine.code);
                        given.push(vaccine);
                    }
                }
            }
            VisitKind::Prenatal
                if !self.given_once.contains(&vaccines::TDAP.code) && dice.chance(0.3) =>
            {
                self.given_once.push(vaccines::TDAP.code);
                given.push(vaccines::TDAP);
            }
            _ => {}
        }
        let rc = self.rc();
        for vaccine in given {
            self.resources
                .push(care::immunization(dice, &vaccine, visit, &rc));
        }
    }

    fn procedures(
        &mut self,
        dice: &mut Dice,
        planned: &PlannedVisit,
        age: f64,
        active: &[Chronic],
        visit: &Visit<'_>,
    ) {
        let mut done: Vec<Code> = Vec::new();
        if !self.active_medications(planned.date).is_empty() {
            done.push(procedures::MEDICATION_REVIEW);
        }
        if planned.kind == VisitKind::CheckUp {
            if age >= 12.0 && (active.contains(&Chronic::Depression) || dice.chance(0.3)) {
                done.push(procedures::DEPRESSION_SCREENING);
            }
            let colonoscopy = procedures::COLONOSCOPY.code;
            if (45.0..=75.0).contains(&age)
                && !self.given_once.contains(&colonoscopy)
                && dice.chance(0.1)
            {
                self.given_once.push(colonoscopy);
                done.push(procedures::COLONOSCOPY);
            }
        }
        let rc = self.rc();
        for code in done {
            self.resources
                .push(care::procedure(dice, &code, visit, &rc));
        }
    }

    /// The medications prescribed so far that are still active on `date` (their displays).
    fn active_medications(&self, date: Date) -> Vec<&'static str> {
        self.profile
            .diagnoses
            .iter()
            .zip(&self.medicated)
            .filter(|(d, _)| d.active_on(date))
            .filter_map(|(_, medication)| *medication)
            .collect()
    }

    fn finish(mut self, dice: &mut Dice) -> PatientRecord {
        let primary = self.practitioner(self.profile.primary_care);
        let specialists: Vec<&Practitioner> = self
            .profile
            .specialists
            .iter()
            .map(|i| self.practitioner(*i))
            .collect();
        let rc = self.rc();
        let team_id = dice.uuid();
        self.resources
            .push(care::care_team(&team_id, primary, &specialists, &rc));
        let age = age_on(
            self.profile.person.birth_date,
            self.generator.reference_date,
        );
        let payer = &self.generator.directory.payers[usize::from(age >= 65)];
        let window_start = add_days(self.generator.reference_date, -HISTORY_YEARS * 365)
            .max(self.profile.person.birth_date);
        let start = fhir_date(window_start);
        let cover = care::coverage(
            dice,
            (&payer.organization_id, &payer.name),
            &start,
            age >= 65,
            &rc,
        );
        self.resources.push(cover);
        let person = &self.profile.person;
        let canary = Canary {
            patient_id: self.profile.patient_id.clone(),
            index: self.profile.index,
            mrn: person.mrn.clone(),
            ssn: person.ssn.clone(),
            phone: person.phone.clone(),
            email: person.email.clone(),
            name: person.full_name(),
            birth_date: fhir_date(person.birth_date),
        };
        let mut care_team = vec![primary.id.clone()];
        care_team.extend(specialists.iter().map(|s| s.id.clone()));
        PatientRecord {
            index: self.profile.index,
            patient_id: self.profile.patient_id.clone(),
            resources: self.resources,
            canary,
            care_team,
        }
    }
}

/// The medication prescribed for a condition: for diabetes mostly metformin, sometimes insulin.
fn pick_medication<'a>(dice: &mut Dice, kind: Chronic, medications: &'a [Code]) -> &'a Code {
    if kind == Chronic::Type2Diabetes && medications.len() == 3 {
        &medications[dice.weighted(&[50, 30, 20])]
    } else {
        dice.pick(medications)
    }
}

#[cfg(test)]
#[path = "record_tests.rs"]
mod tests;

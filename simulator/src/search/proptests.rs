//! Model-based property tests: random small populations and random queries, checked against a
//! brute-force oracle that works on the model (plain Rust structs and integer arithmetic), never
//! on the engine's JSON matching code. Also checks that paging through `_offset`/`_count` links
//! reproduces the full result list.

use super::evaluate::search;
use super::query::SearchQuery;
use super::test_support::{Index, MemorySource};
use proptest::prelude::*;
use serde_json::{Value, json};
use std::collections::HashSet;

/// LOINC.
const LOINC: &str = "http://loinc.org";
/// SNOMED CT.
const SNOMED: &str = "http://snomed.info/sct";
/// The observation-category code system.
const CAT: &str = "http://terminology.hl7.org/CodeSystem/observation-category";
/// UCUM.
const UCUM: &str = "http://unitsofmeasure.org";
/// Days before each month of 2020 (a leap year), plus the year length.
const CUM: [i64; 13] = [0, 31, 60, 91, 121, 152, 182, 213, 244, 274, 305, 335, 366];
/// Seconds per day.
const DAY: i64 = 86_400;

// ------------------------------------------------------------------------------------------
// The model
// ------------------------------------------------------------------------------------------

/// A date-like element of an observation, all in 2020.
#[derive(Debug, Clone)]
enum MDate {
    /// `effectiveDateTime` at a whole hour, UTC, second precision.
    Instant(i64, i64, i64),
    /// `effectiveDateTime` with day precision.
    Day(i64, i64),
    /// `effectiveDateTime` with month precision.
    Month(i64),
    /// `effectivePeriod` between two days (inclusive).
    Period((i64, i64), (i64, i64)),
}

/// Seconds from 2020-01-01T00:00:00Z to the start of a day of 2020.
fn day_start(m: i64, d: i64) -> i64 {
    (CUM[(m - 1) as usize] + d - 1) * DAY
}

impl MDate {
    /// The half-open range in seconds since 2020-01-01T00:00:00Z.
    fn range(&self) -> (i64, i64) {
        match *self {
            Self::Instant(m, d, h) => {
                let t = day_start(m, d) + h * 3600;
                (t, t + 1)
            }
            Self::Day(m, d) => (day_start(m, d), day_start(m, d) + DAY),
            Self::Month(m) => (CUM[(m - 1) as usize] * DAY, CUM[m as usize] * DAY),
            Self::Period(s, e) => (day_start(s.0, s.1), day_start(e.0, e.1) + DAY),
        }
    }

    /// The JSON member name and value.
    fn json(&self) -> (&'static str, Value) {
        match *self {
            Self::Instant(m, d, h) => (
                "effectiveDateTime",
                json!(format!("2020-{m:02}-{d:02}T{h:02}:00:00Z")),
            ),
            Self::Day(m, d) => ("effectiveDateTime", json!(format!("2020-{m:02}-{d:02}"))),
            Self::Month(m) => ("effectiveDateTime", json!(format!("2020-{m:02}"))),
            Self::Period(s, e) => (
                "effectivePeriod",
                json!({"start": format!("2020-{:02}-{:02}", s.0, s.1),
                       "end": format!("2020-{:02}-{:02}", e.0, e.1)}),
            ),
        }
    }
}

/// One observation of the model.
#[derive(Debug, Clone)]
struct MObs {
    /// `status`.
    status: &'static str,
    /// `category` code (system is always [`CAT`]).
    category: Option<&'static str>,
    /// The code's system, if any.
    system: Option<&'static str>,
    /// The code.
    code: &'static str,
    /// `(type, id)` of the subject.
    subject: Option<(&'static str, &'static str)>,
    /// The effective date.
    date: Option<MDate>,
    /// The value in tenths, with its UCUM code.
    value: Option<(i64, &'static str)>,
}

/// The whole population.
#[derive(Debug, Clone)]
struct Model {
    /// Genders of patients `p0`, `p1`, `p2`.
    genders: Vec<&'static str>,
    /// Observations `o0`, `o1`...
    obs: Vec<MObs>,
    /// Conditions as `(patient index, code)`.
    conditions: Vec<(usize, &'static str)>,
}

/// Patient ids.
const PATIENTS: [&str; 3] = ["p0", "p1", "p2"];

/// The human-readable unit for a UCUM code.
fn unit_text(code: &str) -> &'static str {
    if code == "mg" {
        "milligram"
    } else {
        "kilogram"
    }
}

impl Model {
    /// The resources of the model as JSON.
    fn resources(&self) -> Vec<Value> {
        let mut out = Vec::new();
        for (i, g) in self.genders.iter().enumerate() {
            out.push(json!({"resourceType": "Patient", "id": PATIENTS[i], "gender": g}));
        }
        out.push(json!({"resourceType": "Group", "id": "g0"}));
        for (i, o) in self.obs.iter().enumerate() {
            let mut r =
                json!({"resourceType": "Observation", "id": format!("o{i}"), "status": o.status});
            let coding = match o.system {
                Some(s) => json!({"system": s, "code": o.code}),
                None => json!({"code": o.code}),
            };
            r["code"] = json!({"coding": [coding]});
            if let Some(c) = o.category {
                r["category"] = json!([{"coding": [{"system": CAT, "code": c}]}]);
            }
            if let Some((t, id)) = o.subject {
                r["subject"] = json!({"reference": format!("{t}/{id}")});
            }
            if let Some(d) = &o.date {
                let (k, v) = d.json();
                r[k] = v;
            }
            if let Some((tenths, code)) = o.value {
                r["valueQuantity"] = json!({"value": tenths as f64 / 10.0, "unit": unit_text(code),
                                            "system": UCUM, "code": code});
            }
            out.push(r);
        }
        for (i, (p, code)) in self.conditions.iter().enumerate() {
            out.push(json!({"resourceType": "Condition", "id": format!("c{i}"),
                "subject": {"reference": format!("Patient/{}", PATIENTS[*p])},
                "code": {"coding": [{"system": LOINC, "code": code}]}}));
        }
        out
    }
}

// ------------------------------------------------------------------------------------------
// The queries and the oracle
// ------------------------------------------------------------------------------------------

/// A search date value.
#[derive(Debug, Clone)]
enum SDate {
    /// A year (2019-2021).
    Year(i64),
    /// A month of 2020.
    Month(i64),
    /// A day of 2020.
    Day(i64, i64),
    /// A whole second at an hour, written with a zone offset of `+01:00`.
    Second(i64, i64, i64),
    /// A minute, written without seconds and zone.
    Minute(i64, i64, i64, i64),
}

impl SDate {
    /// As written in the query.
    fn text(&self) -> String {
        match *self {
            Self::Year(y) => format!("{y}"),
            Self::Month(m) => format!("2020-{m:02}"),
            Self::Day(m, d) => format!("2020-{m:02}-{d:02}"),
            // The same instant written one hour ahead in +01:00 (hour 23 stays in range: the
            // generator keeps hours below 23).
            Self::Second(m, d, h) => format!("2020-{m:02}-{d:02}T{:02}:00:00+01:00", h + 1),
            Self::Minute(m, d, h, mi) => format!("2020-{m:02}-{d:02}T{h:02}:{mi:02}"),
        }
    }

    /// The half-open range in seconds since 2020-01-01T00:00:00Z.
    fn range(&self) -> (i64, i64) {
        match *self {
            Self::Year(2019) => (-365 * DAY, 0),
            Self::Year(2020) => (0, 366 * DAY),
            Self::Year(_) => (366 * DAY, 731 * DAY),
            Self::Month(m) => (CUM[(m - 1) as usize] * DAY, CUM[m as usize] * DAY),
            Self::Day(m, d) => (day_start(m, d), day_start(m, d) + DAY),
            Self::Second(m, d, h) => {
                let t = day_start(m, d) + h * 3600;
                (t, t + 1)
            }
            Self::Minute(m, d, h, mi) => {
                let t = day_start(m, d) + h * 3600 + mi * 60;
                (t, t + 60)
            }
        }
    }
}

/// The spec's date prefix rules, on plain integer ranges.
fn oracle_date(prefix: &str, s: (i64, i64), t: (i64, i64)) -> bool {
    let eq = s.0 <= t.0 && t.1 <= s.1;
    match prefix {
        "" | "eq" => eq,
        "ne" => !eq,
        "gt" => t.1 > s.1,
        "lt" => t.0 < s.0,
        "ge" => t.1 > s.1 || eq,
        "le" => t.0 < s.0 || eq,
        "sa" => t.0 >= s.1,
        "eb" => t.1 <= s.0,
        other => panic!("prefix {other} not modelled"),
    }
}

/// A search number: `k` or `k.d`, in hundredths with its half-precision.
#[derive(Debug, Clone)]
enum SNum {
    /// An integer.
    Int(i64),
    /// One decimal place.
    Dec(i64, i64),
}

impl SNum {
    /// As written.
    fn text(&self) -> String {
        match *self {
            Self::Int(k) => format!("{k}"),
            Self::Dec(k, d) => format!("{k}.{d}"),
        }
    }

    /// `(value, half width of the precision range)` in hundredths.
    fn hundredths(&self) -> (i64, i64) {
        match *self {
            Self::Int(k) => (k * 100, 50),
            Self::Dec(k, d) => (k * 100 + d * 10, 5),
        }
    }
}

/// A search quantity: prefix, number and optional `(system, code)`.
type SQuantity = (&'static str, SNum, Option<(&'static str, &'static str)>);

/// One criterion of a random Observation query.
#[derive(Debug, Clone)]
enum Q {
    /// `patient=` with OR values (`id` or `Patient/id`).
    Patient(Vec<(bool, &'static str)>),
    /// `subject=` with OR values (`id`, or `Type/id` when typed).
    Subject(Vec<(Option<&'static str>, &'static str)>),
    /// `subject:Patient=id`.
    SubjectPatient(&'static str),
    /// `code=` (`code`, `sys|code`, `|code` or `sys|`), optionally `:not`.
    Code(Vec<(Option<&'static str>, Option<&'static str>)>, bool),
    /// `status=`, optionally `:not`; with the status system written or not.
    Status(Vec<&'static str>, bool, bool),
    /// `category=` as `code`, `system|code` or `|code`.
    Category(Option<&'static str>, &'static str),
    /// `date=` with OR values.
    Date(Vec<(&'static str, SDate)>),
    /// `value-quantity=` with OR values: prefix, number, optional `(system, code)`.
    Value(Vec<SQuantity>),
    /// `_id=` with OR values.
    Id(Vec<usize>),
    /// `<param>:missing=<bool>`.
    Missing(&'static str, bool),
    /// `patient.gender=`.
    PatientGender(&'static str),
}

impl Q {
    /// The request pair.
    fn pair(&self) -> (String, String) {
        let join = |v: Vec<String>| v.join(",");
        match self {
            Self::Patient(v) => (
                "patient".into(),
                join(
                    v.iter()
                        .map(|(typed, id)| {
                            if *typed {
                                format!("Patient/{id}")
                            } else {
                                (*id).to_owned()
                            }
                        })
                        .collect(),
                ),
            ),
            Self::Subject(v) => (
                "subject".into(),
                join(
                    v.iter()
                        .map(|(t, id)| t.map_or_else(|| (*id).to_owned(), |t| format!("{t}/{id}")))
                        .collect(),
                ),
            ),
            Self::SubjectPatient(id) => ("subject:Patient".into(), (*id).to_owned()),
            Self::Code(v, not) => (
                if *not { "code:not" } else { "code" }.into(),
                join(
                    v.iter()
                        .map(|(s, c)| match (s, c) {
                            (None, Some(c)) => (*c).to_owned(),
                            (Some(s), Some(c)) => format!("{s}|{c}"),
                            (Some(s), None) => format!("{s}|"),
                            (None, None) => unreachable!(),
                        })
                        .collect(),
                ),
            ),
            Self::Status(v, not, sys) => (
                if *not { "status:not" } else { "status" }.into(),
                join(
                    v.iter()
                        .map(|s| {
                            if *sys {
                                format!("http://hl7.org/fhir/observation-status|{s}")
                            } else {
                                (*s).to_owned()
                            }
                        })
                        .collect(),
                ),
            ),
            Self::Category(s, c) => (
                "category".into(),
                match s {
                    Some(s) => format!("{s}|{c}"),
                    None => (*c).to_owned(),
                },
            ),
            Self::Date(v) => (
                "date".into(),
                join(v.iter().map(|(p, d)| format!("{p}{}", d.text())).collect()),
            ),
            Self::Value(v) => (
                "value-quantity".into(),
                join(
                    v.iter()
                        .map(|(p, n, unit)| match unit {
                            Some((s, c)) => format!("{p}{}|{s}|{c}", n.text()),
                            None => format!("{p}{}", n.text()),
                        })
                        .collect(),
                ),
            ),
            Self::Id(v) => (
                "_id".into(),
                join(v.iter().map(|i| format!("o{i}")).collect()),
            ),
            Self::Missing(p, b) => (format!("{p}:missing"), b.to_string()),
            Self::PatientGender(g) => ("patient.gender".into(), (*g).to_owned()),
        }
    }

    /// The oracle: does observation `i` of `model` satisfy this criterion?
    fn holds(&self, model: &Model, i: usize) -> bool {
        let o = &model.obs[i];
        let subject_patient = o.subject.filter(|(t, _)| *t == "Patient").map(|(_, id)| id);
        match self {
            Self::Patient(v) => v.iter().any(|(_, id)| subject_patient == Some(*id)),
            Self::Subject(v) => v.iter().any(|(t, id)| match o.subject {
                Some((st, sid)) => sid == *id && t.is_none_or(|t| t == st),
                None => false,
            }),
            Self::SubjectPatient(id) => subject_patient == Some(*id),
            Self::Code(v, not) => {
                let any = v.iter().any(|(s, c)| {
                    let code_ok = c.is_none_or(|c| c == o.code);
                    let sys_ok = match s {
                        None => true,
                        Some("") => o.system.is_none(),
                        Some(s) => o.system == Some(*s),
                    };
                    code_ok && sys_ok
                });
                any != *not
            }
            Self::Status(v, not, _) => v.contains(&o.status) != *not,
            Self::Category(s, c) => match s {
                Some("") => false,
                Some(s) => *s == CAT && o.category == Some(*c),
                None => o.category == Some(*c),
            },
            Self::Date(v) => match &o.date {
                Some(d) => v.iter().any(|(p, s)| oracle_date(p, s.range(), d.range())),
                None => false,
            },
            Self::Value(v) => match o.value {
                Some((tenths, code)) => v.iter().any(|(p, n, unit)| {
                    let h = tenths * 10;
                    let (s, half) = n.hundredths();
                    let num_ok = match *p {
                        "" | "eq" => s - half <= h && h < s + half,
                        "ne" => !(s - half <= h && h < s + half),
                        "gt" | "sa" => h > s,
                        "lt" | "eb" => h < s,
                        "ge" => h >= s,
                        "le" => h <= s,
                        other => panic!("prefix {other} not modelled"),
                    };
                    let unit_ok = match unit {
                        None => true,
                        Some(("", c)) => *c == code || *c == unit_text(code),
                        Some((sys, c)) => *sys == UCUM && *c == code,
                    };
                    num_ok && unit_ok
                }),
                None => false,
            },
            Self::Id(v) => v.contains(&i),
            Self::Missing(p, missing) => {
                let present = match *p {
                    "date" => o.date.is_some(),
                    "value-quantity" => o.value.is_some(),
                    "patient" => subject_patient.is_some(),
                    "category" => o.category.is_some(),
                    other => panic!("{other} not modelled"),
                };
                present != *missing
            }
            Self::PatientGender(g) => match subject_patient {
                Some(p) => PATIENTS
                    .iter()
                    .position(|x| *x == p)
                    .is_some_and(|k| model.genders.get(k) == Some(g)),
                None => false,
            },
        }
    }
}

/// A sort key of the model.
#[derive(Debug, Clone, Copy)]
enum SortBy {
    /// `date` / `-date`.
    Date(bool),
    /// `value-quantity` / `-value-quantity`.
    Value(bool),
    /// `status` / `-status`.
    Status(bool),
    /// `_id` / `-_id`.
    Id(bool),
}

impl SortBy {
    /// As written in `_sort`.
    fn text(self) -> String {
        let (name, desc) = match self {
            Self::Date(d) => ("date", d),
            Self::Value(d) => ("value-quantity", d),
            Self::Status(d) => ("status", d),
            Self::Id(d) => ("_id", d),
        };
        format!("{}{name}", if desc { "-" } else { "" })
    }
}

/// The oracle's ordering: the sort keys (missing last), then id.
fn oracle_order(model: &Model, mut ids: Vec<usize>, keys: &[SortBy]) -> Vec<String> {
    /// A key value: dates and numbers as integers, texts as strings.
    #[derive(PartialEq, Eq, PartialOrd, Ord)]
    enum K {
        /// A number.
        N(i64),
        /// A text.
        S(String),
    }
    let key = |i: usize, k: SortBy| -> (Option<K>, bool) {
        let o = &model.obs[i];
        match k {
            SortBy::Date(d) => (o.date.as_ref().map(|x| K::N(x.range().0)), d),
            SortBy::Value(d) => (o.value.map(|(t, _)| K::N(t)), d),
            SortBy::Status(d) => (Some(K::S(o.status.to_owned())), d),
            SortBy::Id(d) => (Some(K::S(format!("o{i}"))), d),
        }
    };
    ids.sort_by(|&a, &b| {
        for k in keys {
            let ((ka, desc), (kb, _)) = (key(a, *k), key(b, *k));
            let ord = match (ka, kb) {
                (Some(x), Some(y)) if desc => y.cmp(&x),
                (Some(x), Some(y)) => x.cmp(&y),
                (Some(_), None) => std::cmp::Ordering::Less,
                (None, Some(_)) => std::cmp::Ordering::Greater,
                (None, None) => std::cmp::Ordering::Equal,
            };
            if ord.is_ne() {
                return ord;
            }
        }
        format!("o{a}").cmp(&format!("o{b}"))
    });
    ids.into_iter().map(|i| format!("o{i}")).collect()
}

// ------------------------------------------------------------------------------------------
// Strategies
// ------------------------------------------------------------------------------------------

/// A month and day in a small window, so that values collide often.
fn month_day() -> impl Strategy<Value = (i64, i64)> {
    (1i64..=2, 1i64..=5)
}

/// A model date.
fn mdate() -> impl Strategy<Value = MDate> {
    prop_oneof![
        (month_day(), 0i64..23).prop_map(|((m, d), h)| MDate::Instant(m, d, h)),
        month_day().prop_map(|(m, d)| MDate::Day(m, d)),
        (1i64..=2).prop_map(MDate::Month),
        (month_day(), 0i64..4).prop_map(|((m, d), len)| {
            let end = if d + len <= 28 { (m, d + len) } else { (m, d) };
            MDate::Period((m, d), end)
        }),
    ]
}

/// A model observation.
fn mobs() -> impl Strategy<Value = MObs> {
    (
        prop::sample::select(vec!["final", "amended", "preliminary"]),
        prop::option::of(prop::sample::select(vec!["vital-signs", "laboratory"])),
        prop::option::of(prop::sample::select(vec![LOINC, SNOMED])),
        prop::sample::select(vec!["a", "b", "c"]),
        prop::option::of(prop::sample::select(vec![
            ("Patient", "p0"),
            ("Patient", "p1"),
            ("Patient", "p2"),
            ("Group", "g0"),
            ("Group", "p1"),
        ])),
        prop::option::of(mdate()),
        prop::option::of((0i64..=300, prop::sample::select(vec!["mg", "kg"]))),
    )
        .prop_map(
            |(status, category, system, code, subject, date, value)| MObs {
                status,
                category,
                system,
                code,
                subject,
                date,
                value,
            },
        )
}

/// A model population.
fn model() -> impl Strategy<Value = Model> {
    (
        prop::collection::vec(prop::sample::select(vec!["male", "female"]), 3),
        prop::collection::vec(mobs(), 0..12),
        prop::collection::vec((0usize..3, prop::sample::select(vec!["a", "b"])), 0..4),
    )
        .prop_map(|(genders, obs, conditions)| Model {
            genders,
            obs,
            conditions,
        })
}

/// A search date value.
fn sdate() -> impl Strategy<Value = SDate> {
    prop_oneof![
        (2019i64..=2021).prop_map(SDate::Year),
        (1i64..=2).prop_map(SDate::Month),
        month_day().prop_map(|(m, d)| SDate::Day(m, d)),
        (month_day(), 0i64..23).prop_map(|((m, d), h)| SDate::Second(m, d, h)),
        (month_day(), 0i64..23, prop::sample::select(vec![0i64, 30]))
            .prop_map(|((m, d), h, mi)| SDate::Minute(m, d, h, mi)),
    ]
}

/// A prefix, or none.
fn prefix() -> impl Strategy<Value = &'static str> {
    prop::sample::select(vec!["", "eq", "ne", "gt", "lt", "ge", "le", "sa", "eb"])
}

/// A patient id, sometimes one that does not exist.
fn pid() -> impl Strategy<Value = &'static str> {
    prop::sample::select(vec!["p0", "p1", "p2", "g0", "zz"])
}

/// One query criterion.
fn criterion() -> impl Strategy<Value = Q> {
    let code_form = prop_oneof![
        prop::sample::select(vec!["a", "b", "c", "d"]).prop_map(|c| (None, Some(c))),
        (
            prop::sample::select(vec![LOINC, SNOMED, ""]),
            prop::sample::select(vec!["a", "b", "c"])
        )
            .prop_map(|(s, c)| (Some(s), Some(c))),
        prop::sample::select(vec![LOINC, SNOMED]).prop_map(|s| (Some(s), None)),
    ];
    prop_oneof![
        prop::collection::vec((any::<bool>(), pid()), 1..3).prop_map(Q::Patient),
        prop::collection::vec(
            (
                prop::option::of(prop::sample::select(vec!["Patient", "Group"])),
                pid()
            ),
            1..3
        )
        .prop_map(Q::Subject),
        pid().prop_map(Q::SubjectPatient),
        (prop::collection::vec(code_form, 1..3), any::<bool>()).prop_map(|(v, n)| Q::Code(v, n)),
        (
            prop::collection::vec(
                prop::sample::select(vec!["final", "amended", "preliminary", "entered-in-error"]),
                1..3
            ),
            any::<bool>(),
            any::<bool>()
        )
            .prop_map(|(v, n, s)| Q::Status(v, n, s)),
        (
            prop::option::of(prop::sample::select(vec![CAT, ""])),
            prop::sample::select(vec!["vital-signs", "laboratory"])
        )
            .prop_map(|(s, c)| Q::Category(s, c)),
        prop::collection::vec((prefix(), sdate()), 1..3).prop_map(Q::Date),
        prop::collection::vec(
            (
                prefix(),
                prop_oneof![
                    (0i64..=30).prop_map(SNum::Int),
                    (0i64..=30, 0i64..=9).prop_map(|(k, d)| SNum::Dec(k, d))
                ],
                prop::option::of(prop::sample::select(vec![
                    (UCUM, "mg"),
                    ("http://other.org", "mg"),
                    ("", "kg"),
                    ("", "milligram"),
                ])),
            ),
            1..3
        )
        .prop_map(Q::Value),
        prop::collection::vec(0usize..14, 1..3).prop_map(Q::Id),
        (
            prop::sample::select(vec!["date", "value-quantity", "patient", "category"]),
            any::<bool>()
        )
            .prop_map(|(p, b)| Q::Missing(p, b)),
        prop::sample::select(vec!["male", "female"]).prop_map(Q::PatientGender),
    ]
}

/// Sort keys.
fn sort_keys() -> impl Strategy<Value = Vec<SortBy>> {
    prop::collection::vec(
        (0u8..4, any::<bool>()).prop_map(|(k, d)| match k {
            0 => SortBy::Date(d),
            1 => SortBy::Value(d),
            2 => SortBy::Status(d),
            _ => SortBy::Id(d),
        }),
        0..3,
    )
}

/// Decodes `%XX` escapes of a query-string component (test-side, independent of the encoder).
fn percent_decode(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' && i + 3 <= bytes.len() {
            let hex = std::str::from_utf8(&bytes[i + 1..i + 3]).unwrap_or("zz");
            out.push(u8::from_str_radix(hex, 16).unwrap_or(b'?'));
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).unwrap_or_default()
}

/// Splits and decodes a rendered query string.
fn decode_query(q: &str) -> Vec<(String, String)> {
    q.split('&')
        .filter(|kv| !kv.is_empty())
        .map(|kv| {
            let (k, v) = kv.split_once('=').unwrap_or((kv, ""));
            (percent_decode(k), percent_decode(v))
        })
        .collect()
}

/// Runs an Observation query on a model and returns the ids in order.
fn run(model: &Model, pairs: &[(String, String)], reversed: bool, index: Index) -> Vec<String> {
    let mut source = MemorySource::new(model.resources()).with_index(index);
    if reversed {
        source = source.reversed();
    }
    let parsed =
        SearchQuery::parse("Observation", pairs, true).unwrap_or_else(|e| panic!("{pairs:?}: {e}"));
    search(&parsed, &source)
        .unwrap_or_else(|e| panic!("{e}"))
        .iter()
        .map(|r| r["id"].as_str().unwrap_or_default().to_owned())
        .collect()
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

    #[test]
    fn search_equals_brute_force_oracle(
        model in model(),
        criteria in prop::collection::vec(criterion(), 0..4),
        sort in sort_keys(),
    ) {
        let mut pairs: Vec<(String, String)> = criteria.iter().map(Q::pair).collect();
        if !sort.is_empty() {
            pairs.push(("_sort".into(), sort.iter().map(|s| s.text()).collect::<Vec<_>>().join(",")));
        }
        let got = run(&model, &pairs, false, Index::None);
        let indexed = run(&model, &pairs, true, Index::Exact);
        let matching: Vec<usize> = (0..model.obs.len())
            .filter(|&i| criteria.iter().all(|q| q.holds(&model, i)))
            .collect();
        let expected = oracle_order(&model, matching, &sort);
        prop_assert_eq!(&indexed, &expected, "query {:?} with the compartment index", pairs);
        prop_assert_eq!(got, expected, "query {:?}", pairs);
    }

    #[test]
    fn has_equals_brute_force_oracle(
        model in model(),
        code in prop::sample::select(vec!["a", "b", "c"]),
        status in prop::option::of(prop::sample::select(vec!["final", "amended"])),
        on_conditions in any::<bool>(),
    ) {
        let mut source_type = "Observation";
        let mut pairs = vec![];
        if on_conditions {
            source_type = "Condition";
            pairs.push(("_has:Condition:patient:code".to_owned(), code.to_owned()));
        } else {
            pairs.push(("_has:Observation:patient:code".to_owned(), code.to_owned()));
            if let Some(s) = status {
                pairs.push(("_has:Observation:subject:status".to_owned(), s.to_owned()));
            }
        }
        let source = MemorySource::new(model.resources());
        let parsed = SearchQuery::parse("Patient", &pairs, true).unwrap_or_else(|e| panic!("{e}"));
        let got: Vec<String> = search(&parsed, &source)
            .unwrap_or_default()
            .iter()
            .map(|r| r["id"].as_str().unwrap_or_default().to_owned())
            .collect();
        let expected: Vec<String> = PATIENTS
            .iter()
            .filter(|p| {
                if source_type == "Condition" {
                    model.conditions.iter().any(|(i, c)| PATIENTS[*i] == **p && *c == code)
                } else {
                    let refers = |o: &MObs| o.subject == Some(("Patient", **p));
                    model.obs.iter().any(|o| refers(o) && o.code == code)
                        && status.is_none_or(|s| model.obs.iter().any(|o| refers(o) && o.status == s))
                }
            })
            .map(|p| (*p).to_owned())
            .collect();
        prop_assert_eq!(got, expected, "query {:?}", pairs);
    }

    #[test]
    fn paging_reproduces_the_full_list(
        model in model(),
        criteria in prop::collection::vec(criterion(), 0..2),
        sort in sort_keys(),
        count in 1usize..5,
    ) {
        let mut pairs: Vec<(String, String)> = criteria.iter().map(Q::pair).collect();
        if !sort.is_empty() {
            pairs.push(("_sort".into(), sort.iter().map(|s| s.text()).collect::<Vec<_>>().join(",")));
        }
        let full = run(&model, &pairs, false, Index::None);
        let first = SearchQuery::parse("Observation", &pairs, true).unwrap_or_else(|e| panic!("{e}"));
        let mut link = first.query_string_for_page(count, 0);
        let mut collected: Vec<String> = Vec::new();
        let mut reversed = false;
        for _ in 0..=full.len() {
            // Every page is a fresh request, and the store's order changes between requests.
            let page_pairs = decode_query(&link);
            let parsed = SearchQuery::parse("Observation", &page_pairs, true).unwrap_or_else(|e| panic!("{e}"));
            reversed = !reversed;
            let all = run(&model, &page_pairs, reversed, Index::Exact);
            let range = parsed.page_range(all.len(), 20, 100);
            prop_assert!(range.len() <= count);
            collected.extend(all[range.clone()].iter().cloned());
            if range.end >= all.len() {
                break;
            }
            link = parsed.query_string_for_page(count, range.end);
        }
        let unique: HashSet<&String> = collected.iter().collect();
        prop_assert_eq!(unique.len(), collected.len(), "duplicates in {:?}", collected);
        prop_assert_eq!(collected, full);
    }
}

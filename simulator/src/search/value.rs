//! Search values and how they match resource elements: dates as ranges, exact decimals,
//! tokens, accent-folded strings, references and quantities.

use serde_json::Value;
use std::cmp::Ordering;

/// Nanoseconds in one second.
const NANOS_PER_SECOND: i128 = 1_000_000_000;
/// Nanoseconds in one day.
const NANOS_PER_DAY: i128 = 86_400 * NANOS_PER_SECOND;
/// Julian day number of 1970-01-01.
const UNIX_EPOCH_JULIAN_DAY: i128 = 2_440_588;

/// A comparison prefix of a date, number or quantity value.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum Prefix {
    /// Equal (the default): the search range contains the target.
    #[default]
    Eq,
    /// Not equal.
    Ne,
    /// Greater than.
    Gt,
    /// Less than.
    Lt,
    /// Greater than or equal.
    Ge,
    /// Less than or equal.
    Le,
    /// Starts after the end of the search range.
    Sa,
    /// Ends before the start of the search range.
    Eb,
    /// Approximately: within 10% (numbers) or a widened range (dates).
    Ap,
}

impl Prefix {
    /// Parses a two-letter prefix code.
    pub fn from_code(code: &str) -> Option<Self> {
        Some(match code {
            "eq" => Self::Eq,
            "ne" => Self::Ne,
            "gt" => Self::Gt,
            "lt" => Self::Lt,
            "ge" => Self::Ge,
            "le" => Self::Le,
            "sa" => Self::Sa,
            "eb" => Self::Eb,
            "ap" => Self::Ap,
            _ => return None,
        })
    }

    /// The two-letter code.
    pub fn code(self) -> &'static str {
        match self {
            Self::Eq => "eq",
            Self::Ne => "ne",
            Self::Gt => "gt",
            Self::Lt => "lt",
            Self::Ge => "ge",
            Self::Le => "le",
            Self::Sa => "sa",
            Self::Eb => "eb",
            Self::Ap => "ap",
        }
    }
}

/// Splits an optional two-letter prefix off a date/number/quantity value.
///
/// Returns an error message when the value starts with letters that are not a prefix.
pub(crate) fn split_prefix(value: &str) -> Result<(Prefix, &str), String> {
    let starts_alpha = value
        .chars()
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic());
    if !starts_alpha {
        return Ok((Prefix::Eq, value));
    }
    let code = value.get(..2).unwrap_or(value);
    match Prefix::from_code(code) {
        Some(p) => Ok((p, value.get(2..).unwrap_or_default())),
        None => Err(format!(
            "unknown prefix '{code}' in '{value}' (expected eq, ne, gt, lt, ge, le, sa, eb or ap)"
        )),
    }
}

// ---------------------------------------------------------------------------------------------
// Dates
// ---------------------------------------------------------------------------------------------

/// A half-open time range `[start, end)` in nanoseconds since 1970-01-01T00:00:00Z.
///
/// `i128::MIN` / `i128::MAX` stand for an open start or end (a Period without start or end).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct DateRange {
    /// Inclusive lower bound.
    pub start: i128,
    /// Exclusive upper bound.
    pub end: i128,
}

/// Reads exactly `n` ASCII digits at `*pos`, advancing it.
fn digits(bytes: &[u8], pos: &mut usize, n: usize) -> Option<u32> {
    let slice = bytes.get(*pos..*pos + n)?;
    let mut v = 0u32;
    for b in slice {
        if !b.is_ascii_digit() {
            return None;
        }
        v = v * 10 + u32::from(b - b'0');
    }
    *pos += n;
    Some(v)
}

/// Consumes the byte `want` at `*pos`, if it is there.
fn eat(bytes: &[u8], pos: &mut usize, want: u8) -> Option<()> {
    (bytes.get(*pos) == Some(&want)).then(|| *pos += 1)
}

/// Days since 1970-01-01 of a calendar date, validating it.
fn unix_day(year: u32, month: u32, day: u32) -> Option<i128> {
    let year = i32::try_from(year).ok()?;
    let month = time::Month::try_from(u8::try_from(month).ok()?).ok()?;
    let date = time::Date::from_calendar_date(year, month, u8::try_from(day).ok()?).ok()?;
    Some(i128::from(date.to_julian_day()) - UNIX_EPOCH_JULIAN_DAY)
}

/// Number of days in a month, validating the month.
fn month_days(year: u32, month: u32) -> Option<i128> {
    let year = i32::try_from(year).ok()?;
    let month = time::Month::try_from(u8::try_from(month).ok()?).ok()?;
    Some(i128::from(month.length(year)))
}

/// Parses a FHIR date, dateTime or instant (partial precision allowed) into its implicit range.
///
/// Accepted: `YYYY`, `YYYY-MM`, `YYYY-MM-DD`, `YYYY-MM-DDThh:mm[:ss[.f+]][Z|±hh:mm]`. A missing
/// zone is read as UTC; a space instead of `+` in the zone is accepted (a `+` that a form
/// decoder turned into a space).
pub(crate) fn parse_date(text: &str) -> Option<DateRange> {
    let b = text.as_bytes();
    let mut pos = 0usize;
    let year = digits(b, &mut pos, 4)?;
    if pos == b.len() {
        let start = unix_day(year, 1, 1)?;
        let days = if time::util::is_leap_year(i32::try_from(year).ok()?) {
            366
        } else {
            365
        };
        return Some(DateRange {
            start: start * NANOS_PER_DAY,
            end: (start + days) * NANOS_PER_DAY,
        });
    }
    eat(b, &mut pos, b'-')?;
    let month = digits(b, &mut pos, 2)?;
    if pos == b.len() {
        let start = unix_day(year, month, 1)?;
        return Some(DateRange {
            start: start * NANOS_PER_DAY,
            end: (start + month_days(year, month)?) * NANOS_PER_DAY,
        });
    }
    eat(b, &mut pos, b'-')?;
    let day = digits(b, &mut pos, 2)?;
    let day_start = unix_day(year, month, day)? * NANOS_PER_DAY;
    if pos == b.len() {
        return Some(DateRange {
            start: day_start,
            end: day_start + NANOS_PER_DAY,
        });
    }
    eat(b, &mut pos, b'T')?;
    let hour = digits(b, &mut pos, 2)?;
    eat(b, &mut pos, b':')?;
    let minute = digits(b, &mut pos, 2)?;
    let mut second = 0u32;
    let mut nanos = 0i128;
    let mut width = 60 * NANOS_PER_SECOND;
    if b.get(pos) == Some(&b':') {
        pos += 1;
        second = digits(b, &mut pos, 2)?;
        width = NANOS_PER_SECOND;
        if b.get(pos) == Some(&b'.') {
            pos += 1;
            let frac_start = pos;
            while b.get(pos).is_some_and(u8::is_ascii_digit) {
                pos += 1;
            }
            let frac = text.get(frac_start..pos)?;
            if frac.is_empty() || frac.len() > 9 {
                return None;
            }
            let scale = 10i128.pow(9 - u32::try_from(frac.len()).ok()?);
            nanos = frac.parse::<i128>().ok()? * scale;
            width = scale;
        }
    }
    if hour > 23 || minute > 59 || second > 59 {
        return None;
    }
    let offset_seconds: i128 = match b.get(pos) {
        None => 0,
        Some(b'Z') => {
            pos += 1;
            0
        }
        Some(&sign @ (b'+' | b'-' | b' ')) => {
            pos += 1;
            let oh = digits(b, &mut pos, 2)?;
            eat(b, &mut pos, b':')?;
            let om = digits(b, &mut pos, 2)?;
            if oh > 14 || om > 59 {
                return None;
            }
            let s = i128::from(oh * 3600 + om * 60);
            if sign == b'-' { -s } else { s }
        }
        Some(_) => return None,
    };
    if pos != b.len() {
        return None;
    }
    let local = i128::from(hour * 3600 + minute * 60 + second);
    let start = day_start + (local - offset_seconds) * NANOS_PER_SECOND + nanos;
    Some(DateRange {
        start,
        end: start + width,
    })
}

/// The ranges of a date-like element: a date/dateTime/instant string or a Period object.
pub(crate) fn date_ranges_of(v: &Value) -> Option<DateRange> {
    match v {
        Value::String(s) => parse_date(s),
        Value::Object(o) => {
            let start = o.get("start").and_then(Value::as_str).map(parse_date);
            let end = o.get("end").and_then(Value::as_str).map(parse_date);
            let start = match start {
                Some(Some(r)) => r.start,
                Some(None) => return None,
                None => i128::MIN,
            };
            let end = match end {
                Some(Some(r)) => r.end,
                Some(None) => return None,
                None => i128::MAX,
            };
            if start == i128::MIN && end == i128::MAX {
                return None;
            }
            Some(DateRange { start, end })
        }
        _ => None,
    }
}

/// Whether a target date range satisfies `prefix` against the search range (R4 search rules).
pub(crate) fn date_matches(prefix: Prefix, search: DateRange, target: DateRange) -> bool {
    let contains = search.start <= target.start && target.end <= search.end;
    match prefix {
        Prefix::Eq => contains,
        Prefix::Ne => !contains,
        // The range above the search value intersects the target.
        Prefix::Gt => target.end > search.end,
        // The range below the search value intersects the target.
        Prefix::Lt => target.start < search.start,
        Prefix::Ge => target.end > search.end || contains,
        Prefix::Le => target.start < search.start || contains,
        Prefix::Sa => target.start >= search.end,
        Prefix::Eb => target.end <= search.start,
        Prefix::Ap => {
            // Simplification: widen the search range by 10% of its width, at least one day.
            let width = search.end.saturating_sub(search.start);
            let margin = (width / 10).max(NANOS_PER_DAY);
            let lo = search.start.saturating_sub(margin);
            let hi = search.end.saturating_add(margin);
            target.start < hi && target.end > lo
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Numbers
// ---------------------------------------------------------------------------------------------

/// An exact decimal `mantissa × 10^exponent`, keeping the precision it was written with.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Decimal {
    /// The digits as an integer.
    pub mantissa: i128,
    /// The power of ten; `-2` for `1.25`.
    pub exponent: i32,
}

impl Decimal {
    /// Parses `[-+]digits[.digits][e[-+]digits]`; at most 30 significant digits.
    pub fn parse(text: &str) -> Option<Self> {
        let (negative, rest) = match text.as_bytes().first() {
            Some(b'-') => (true, text.get(1..)?),
            Some(b'+') => (false, text.get(1..)?),
            _ => (false, text),
        };
        let (number, exp) = match rest.find(['e', 'E']) {
            Some(i) => (rest.get(..i)?, rest.get(i + 1..)?.parse::<i32>().ok()?),
            None => (rest, 0),
        };
        let (int_part, frac_part) = number.split_once('.').unwrap_or((number, ""));
        if int_part.is_empty() && frac_part.is_empty() {
            return None;
        }
        let all = int_part.bytes().chain(frac_part.bytes());
        let mut mantissa: i128 = 0;
        let mut count = 0;
        for b in all {
            if !b.is_ascii_digit() {
                return None;
            }
            count += 1;
            if count > 30 {
                return None;
            }
            mantissa = mantissa * 10 + i128::from(b - b'0');
        }
        let frac_len = i32::try_from(frac_part.len()).ok()?;
        let exponent = exp.checked_sub(frac_len)?;
        if !(-60..=60).contains(&exponent) {
            return None;
        }
        Some(Self {
            mantissa: if negative { -mantissa } else { mantissa },
            exponent,
        })
    }

    /// Reads a JSON number (or a numeric string) as a decimal.
    pub(crate) fn from_json(v: &Value) -> Option<Self> {
        match v {
            Value::Number(n) => Self::parse(&n.to_string()),
            Value::String(s) => Self::parse(s),
            _ => None,
        }
    }

    /// The value as an (approximate) float, for comparisons that would overflow.
    fn approx(self) -> f64 {
        // Lossy by design: only used when exact alignment overflows.
        (self.mantissa as f64) * 10f64.powi(self.exponent)
    }

    /// Compares two decimals by value.
    pub fn compare(self, other: Self) -> Ordering {
        let (hi, lo, flipped) = if self.exponent >= other.exponent {
            (self, other, false)
        } else {
            (other, self, true)
        };
        let diff = u32::try_from(i64::from(hi.exponent) - i64::from(lo.exponent)).ok();
        let scaled = diff
            .and_then(|d| 10i128.checked_pow(d))
            .and_then(|f| hi.mantissa.checked_mul(f));
        let ord = match scaled {
            Some(h) => h.cmp(&lo.mantissa),
            None => hi
                .approx()
                .partial_cmp(&lo.approx())
                .unwrap_or(Ordering::Equal),
        };
        if flipped { ord.reverse() } else { ord }
    }

    /// The implicit range of the value given its precision: `[v - ½ unit, v + ½ unit)`.
    fn precision_range(self) -> (Self, Self) {
        let m = self.mantissa.saturating_mul(10);
        let e = self.exponent - 1;
        (
            Self {
                mantissa: m.saturating_sub(5),
                exponent: e,
            },
            Self {
                mantissa: m.saturating_add(5),
                exponent: e,
            },
        )
    }

    /// `self × k / 10` exactly (used for the ±10% of `ap`).
    fn tenths(self, k: i128) -> Self {
        Self {
            mantissa: self.mantissa.saturating_mul(k),
            exponent: self.exponent - 1,
        }
    }
}

/// Whether a target number satisfies `prefix` against the search number.
///
/// `eq`/`ne` use the search value's implicit precision range (`100` = `[99.5, 100.5)`); the
/// other prefixes compare with the exact value; `sa`/`eb` behave as `gt`/`lt`; `ap` accepts the
/// precision range or anything within 10% of the value.
pub(crate) fn number_matches(prefix: Prefix, search: Decimal, target: Decimal) -> bool {
    let in_range = || {
        let (lo, hi) = search.precision_range();
        target.compare(lo) != Ordering::Less && target.compare(hi) == Ordering::Less
    };
    let ord = target.compare(search);
    match prefix {
        Prefix::Eq => in_range(),
        Prefix::Ne => !in_range(),
        Prefix::Gt | Prefix::Sa => ord == Ordering::Greater,
        Prefix::Lt | Prefix::Eb => ord == Ordering::Less,
        Prefix::Ge => ord != Ordering::Less,
        Prefix::Le => ord != Ordering::Greater,
        Prefix::Ap => {
            let (a, b) = (search.tenths(9), search.tenths(11));
            let (lo, hi) = if a.compare(b) == Ordering::Greater {
                (b, a)
            } else {
                (a, b)
            };
            in_range()
                || (target.compare(lo) != Ordering::Less && target.compare(hi) != Ordering::Greater)
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Strings
// ---------------------------------------------------------------------------------------------

/// Folds one lower-case character to its unaccented form (Latin-1 and Latin Extended-A).
fn fold_char(c: char, out: &mut String) {
    let base = match c {
        'à'..='å' | 'ā' | 'ă' | 'ą' => 'a',
        'ç' | 'ć' | 'ĉ' | 'ċ' | 'č' => 'c',
        'ď' | 'đ' => 'd',
        'è'..='ë' | 'ē' | 'ĕ' | 'ė' | 'ę' | 'ě' => 'e',
        'ĝ' | 'ğ' | 'ġ' | 'ģ' => 'g',
        'ĥ' | 'ħ' => 'h',
        'ì'..='ï' | 'ĩ' | 'ī' | 'ĭ' | 'į' | 'ı' => 'i',
        'ĵ' => 'j',
        'ķ' => 'k',
        'ĺ' | 'ļ' | 'ľ' | 'ŀ' | 'ł' => 'l',
        'ñ' | 'ń' | 'ņ' | 'ň' => 'n',
        'ò'..='ö' | 'ø' | 'ō' | 'ŏ' | 'ő' => 'o',
        'ŕ' | 'ŗ' | 'ř' => 'r',
        'ś' | 'ŝ' | 'ş' | 'š' => 's',
        'ţ' | 'ť' | 'ŧ' => 't',
        'ù'..='ü' | 'ũ' | 'ū' | 'ŭ' | 'ů' | 'ű' | 'ų' => 'u',
        'ŵ' => 'w',
        'ý' | 'ÿ' | 'ŷ' => 'y',
        'ź' | 'ż' | 'ž' => 'z',
        'ß' => return out.push_str("ss"),
        'æ' => return out.push_str("ae"),
        'œ' => return out.push_str("oe"),
        // Combining diacritical marks (decomposed input) are dropped.
        '\u{0300}'..='\u{036f}' => return,
        other => other,
    };
    out.push(base);
}

/// Lower-cases and removes accents, for case- and accent-insensitive string search.
pub(crate) fn normalize(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars().flat_map(char::to_lowercase) {
        fold_char(c, &mut out);
    }
    out
}

/// The members of a HumanName or Address that string search looks at.
const STRING_PARTS: &[&str] = &[
    "text",
    "family",
    "given",
    "prefix",
    "suffix",
    "line",
    "city",
    "district",
    "state",
    "postalCode",
    "country",
];

/// The strings a string parameter compares with: the value itself, or the parts of a name/address.
pub(crate) fn string_values<'a>(v: &'a Value, out: &mut Vec<&'a str>) {
    match v {
        Value::String(s) => out.push(s),
        Value::Array(items) => items.iter().for_each(|i| string_values(i, out)),
        Value::Object(o) => {
            for key in STRING_PARTS {
                if let Some(part) = o.get(*key) {
                    match part {
                        Value::String(s) => out.push(s),
                        Value::Array(items) => {
                            out.extend(items.iter().filter_map(Value::as_str));
                        }
                        _ => {}
                    }
                }
            }
        }
        _ => {}
    }
}

/// How a string value is compared.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum StringMode {
    /// Case- and accent-insensitive starts-with (the default).
    StartsWith,
    /// Exact, case- and accent-sensitive equality (`:exact`).
    Exact,
    /// Case- and accent-insensitive substring (`:contains`).
    Contains,
}

/// Whether a target string matches a search string. `normalized` must be `normalize(raw)`.
pub(crate) fn string_matches(mode: StringMode, raw: &str, normalized: &str, target: &str) -> bool {
    match mode {
        StringMode::Exact => target == raw,
        StringMode::StartsWith => normalize(target).starts_with(normalized),
        StringMode::Contains => normalize(target).contains(normalized),
    }
}

// ---------------------------------------------------------------------------------------------
// Tokens
// ---------------------------------------------------------------------------------------------

/// A token search value: `code`, `system|code`, `|code` or `system|`.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct TokenValue {
    /// `None`: any system; `Some("")`: no system; `Some(s)`: that system.
    pub system: Option<String>,
    /// `None`: any code (the `system|` form).
    pub code: Option<String>,
}

impl TokenValue {
    /// Parses the token forms, splitting on the first unescaped `|`.
    pub(crate) fn parse(text: &str) -> Self {
        match split_unescaped(text, '|').as_slice() {
            [code] => Self {
                system: None,
                code: Some(unescape(code)),
            },
            [system, code, ..] => Self {
                system: Some(unescape(system)),
                code: (!code.is_empty()).then(|| unescape(code)),
            },
            [] => Self {
                system: None,
                code: None,
            },
        }
    }
}

/// One coded value of an element: its system (if any) and code/value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Coded<'a> {
    /// The system of a Coding/Identifier/ContactPoint, when present.
    pub(crate) system: Option<&'a str>,
    /// True for primitives (`code`, `string`, `boolean`...), which carry no system at all.
    pub(crate) primitive: bool,
    /// The code or value, as text (booleans become `true`/`false`).
    pub(crate) code: String,
}

/// Collects the coded values of a token element (CodeableConcept, Coding, Identifier,
/// ContactPoint, code, string, id, boolean).
pub(crate) fn token_codes<'a>(v: &'a Value, out: &mut Vec<Coded<'a>>) {
    match v {
        Value::String(s) => out.push(Coded {
            system: None,
            primitive: true,
            code: s.clone(),
        }),
        Value::Bool(b) => out.push(Coded {
            system: None,
            primitive: true,
            code: b.to_string(),
        }),
        Value::Array(items) => items.iter().for_each(|i| token_codes(i, out)),
        Value::Object(o) => {
            if let Some(codings) = o.get("coding") {
                token_codes(codings, out);
            } else {
                let value = o.get("code").or_else(|| o.get("value"));
                if let Some(code) = value.and_then(Value::as_str) {
                    out.push(Coded {
                        system: o.get("system").and_then(Value::as_str),
                        primitive: false,
                        code: code.to_owned(),
                    });
                }
            }
        }
        _ => {}
    }
}

/// Collects the human-readable texts of a token element (`text` and coding `display`), for `:text`.
pub(crate) fn token_texts<'a>(v: &'a Value, out: &mut Vec<&'a str>) {
    match v {
        Value::Array(items) => items.iter().for_each(|i| token_texts(i, out)),
        Value::Object(o) => {
            if let Some(t) = o.get("text").and_then(Value::as_str) {
                out.push(t);
            }
            if let Some(d) = o.get("display").and_then(Value::as_str) {
                out.push(d);
            }
            if let Some(codings) = o.get("coding") {
                token_texts(codings, out);
            }
            if let Some(t) = o.get("type") {
                token_texts(t, out);
            }
        }
        _ => {}
    }
}

/// Whether one coded value matches a token search value.
///
/// Simplification: primitives (`code`, `boolean`...) carry no system here, so `system|code`
/// matches them on the code alone, while `|code` (explicitly no system) also matches them.
pub(crate) fn token_matches(search: &TokenValue, target: &Coded<'_>) -> bool {
    let code_ok = search.code.as_deref().is_none_or(|c| c == target.code);
    let system_ok = match (search.system.as_deref(), target.system) {
        (None, _) => true,
        (Some(""), t) => t.is_none_or(str::is_empty),
        (Some(_), None) => target.primitive && search.code.is_some(),
        (Some(s), Some(t)) => s == t,
    };
    code_ok && system_ok
}

// ---------------------------------------------------------------------------------------------
// References
// ---------------------------------------------------------------------------------------------

/// True when `s` looks like a FHIR resource type name (`Patient`, `AuditEvent`).
pub(crate) fn is_type_name(s: &str) -> bool {
    let mut chars = s.chars();
    chars.next().is_some_and(|c| c.is_ascii_uppercase()) && chars.all(|c| c.is_ascii_alphanumeric())
}

/// True when `s` is a valid FHIR logical id (`[A-Za-z0-9\-\.]{1,64}`).
pub(crate) fn is_valid_id(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 64
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '.')
}

/// Splits a reference string into `(type, id)`: `id`, `Type/id`, `Type/id/_history/v` or an
/// absolute URL ending in `Type/id`. Contained (`#x`) and `urn:` references give `None`.
pub(crate) fn parse_reference(text: &str) -> Option<(Option<&str>, &str)> {
    if text.starts_with('#') || text.starts_with("urn:") || text.is_empty() {
        return None;
    }
    let text = text.split(['?', '#']).next().unwrap_or(text);
    let text = match text.find("/_history/") {
        Some(i) => text.get(..i)?,
        None => text,
    };
    let mut parts = text.rsplit('/');
    let id = parts.next().filter(|id| is_valid_id(id))?;
    match parts.next() {
        None => Some((None, id)),
        Some(t) if is_type_name(t) => Some((Some(t), id)),
        Some(_) => None,
    }
}

/// The `(type, id)` targets of a Reference element, with the type inferred from `targets` when
/// the reference is a bare id and the parameter allows exactly one type.
pub(crate) fn reference_targets<'a>(
    v: &'a Value,
    targets: &'a [&'a str],
) -> Option<(&'a str, &'a str)> {
    let text = v.get("reference").and_then(Value::as_str)?;
    let (ty, id) = parse_reference(text)?;
    let ty = match (ty, targets) {
        (Some(t), _) => t,
        (None, [only]) => only,
        (None, _) => return None,
    };
    (targets.is_empty() || targets.contains(&ty)).then_some((ty, id))
}

// ---------------------------------------------------------------------------------------------
// Escaping shared by the parser
// ---------------------------------------------------------------------------------------------

/// Splits on `sep` where it is not preceded by a backslash escape; pieces stay escaped.
pub(crate) fn split_unescaped(text: &str, sep: char) -> Vec<&str> {
    let mut out = Vec::new();
    let mut start = 0;
    let mut escaped = false;
    for (i, c) in text.char_indices() {
        if escaped {
            escaped = false;
        } else if c == '\\' {
            escaped = true;
        } else if c == sep {
            out.push(text.get(start..i).unwrap_or_default());
            start = i + c.len_utf8();
        }
    }
    out.push(text.get(start..).unwrap_or_default());
    out
}

/// Removes the backslash escapes of `\,`, `\|`, `\$` and `\\`.
pub(crate) fn unescape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut chars = text.chars();
    while let Some(c) = chars.next() {
        if c == '\\' {
            match chars.next() {
                Some(n @ (',' | '|' | '$' | '\\')) => out.push(n),
                Some(n) => {
                    out.push('\\');
                    out.push(n);
                }
                None => out.push('\\'),
            }
        } else {
            out.push(c);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    /// Shorthand for an exact instant (second precision) as nanoseconds.
    fn secs(s: i128) -> i128 {
        s * NANOS_PER_SECOND
    }

    #[test]
    fn partial_dates_are_ranges() {
        let y = parse_date("2020").unwrap();
        assert_eq!(y.start, secs(1_577_836_800));
        assert_eq!(y.end - y.start, 366 * NANOS_PER_DAY);
        let m = parse_date("2021-02").unwrap();
        assert_eq!(m.end - m.start, 28 * NANOS_PER_DAY);
        let d = parse_date("2020-02-29").unwrap();
        assert_eq!(d.end - d.start, NANOS_PER_DAY);
        let minute = parse_date("2020-01-01T10:00").unwrap();
        assert_eq!(minute.end - minute.start, secs(60));
        let s = parse_date("2020-01-01T10:00:00Z").unwrap();
        assert_eq!(s.start, secs(1_577_872_800));
        assert_eq!(s.end - s.start, secs(1));
        let ms = parse_date("2020-01-01T10:00:00.120Z").unwrap();
        assert_eq!(ms.start, secs(1_577_872_800) + 120_000_000);
        assert_eq!(ms.end - ms.start, 1_000_000);
    }

    #[test]
    fn zones_shift_the_instant() {
        let utc = parse_date("2020-01-01T10:00:00Z").unwrap();
        let plus = parse_date("2020-01-01T11:00:00+01:00").unwrap();
        let space = parse_date("2020-01-01T11:00:00 01:00").unwrap();
        let minus = parse_date("2020-01-01T05:00:00-05:00").unwrap();
        let none = parse_date("2020-01-01T10:00:00").unwrap();
        assert_eq!(utc, plus);
        assert_eq!(utc, space);
        assert_eq!(utc, minus);
        assert_eq!(utc, none);
    }

    #[test]
    fn bad_dates_are_rejected() {
        for bad in [
            "",
            "20",
            "2020-1",
            "2020-13",
            "2020-02-30",
            "2021-02-29",
            "20200101",
            "2020-01-01T",
            "2020-01-01T25:00",
            "2020-01-01T10:60",
            "2020-01-01T10:00:61Z",
            "2020-01-01T10:00:00.Z",
            "2020-01-01T10:00:00+1",
            "2020-01-01X",
            "2020-01-01T10:00:00Zjunk",
            "yesterday",
            "2020-01-01T10:00:00.1234567890Z",
            "2020-01-01T10:00:00+15:00",
        ] {
            assert_eq!(parse_date(bad), None, "{bad}");
        }
    }

    #[test]
    fn periods_use_start_of_start_and_end_of_end() {
        let p = date_ranges_of(&json!({"start": "2020-01-01", "end": "2020-01-31"})).unwrap();
        assert_eq!(p.start, parse_date("2020-01").unwrap().start);
        assert_eq!(p.end, parse_date("2020-01").unwrap().end);
        let open = date_ranges_of(&json!({"start": "2020"})).unwrap();
        assert_eq!(open.end, i128::MAX);
        let open_start = date_ranges_of(&json!({"end": "2020"})).unwrap();
        assert_eq!(open_start.start, i128::MIN);
        assert_eq!(date_ranges_of(&json!({})), None);
        assert_eq!(date_ranges_of(&json!({"start": "junk"})), None);
        assert_eq!(date_ranges_of(&json!(12)), None);
    }

    #[test]
    fn date_prefix_semantics() {
        let day = parse_date("2020-01-15").unwrap();
        let check = |p: Prefix, target: &str| date_matches(p, day, parse_date(target).unwrap());
        assert!(check(Prefix::Eq, "2020-01-15T10:00:00Z"));
        assert!(!check(Prefix::Eq, "2020-01"));
        assert!(check(Prefix::Ne, "2020-01-16"));
        assert!(!check(Prefix::Ne, "2020-01-15"));
        assert!(check(Prefix::Gt, "2020-01-16"));
        assert!(!check(Prefix::Gt, "2020-01-15T23:59:59Z"));
        // A month overlapping the day on both sides is both gt and lt.
        assert!(check(Prefix::Gt, "2020-01"));
        assert!(check(Prefix::Lt, "2020-01"));
        assert!(check(Prefix::Lt, "2020-01-14"));
        assert!(!check(Prefix::Lt, "2020-01-15"));
        assert!(check(Prefix::Ge, "2020-01-15"));
        assert!(check(Prefix::Le, "2020-01-15"));
        assert!(!check(Prefix::Ge, "2020-01-14"));
        assert!(!check(Prefix::Le, "2020-01-16"));
        assert!(check(Prefix::Sa, "2020-01-16"));
        assert!(!check(Prefix::Sa, "2020-01"));
        assert!(check(Prefix::Eb, "2020-01-14"));
        assert!(!check(Prefix::Eb, "2020-01-15"));
        assert!(check(Prefix::Ap, "2020-01-16"));
        assert!(!check(Prefix::Ap, "2020-01-18"));
    }

    #[test]
    fn decimals_parse_and_compare_exactly() {
        let d = |s: &str| Decimal::parse(s).unwrap();
        assert_eq!(
            d("1.25"),
            Decimal {
                mantissa: 125,
                exponent: -2
            }
        );
        assert_eq!(
            d("-3"),
            Decimal {
                mantissa: -3,
                exponent: 0
            }
        );
        assert_eq!(
            d("1e2"),
            Decimal {
                mantissa: 1,
                exponent: 2
            }
        );
        assert_eq!(
            d(".5"),
            Decimal {
                mantissa: 5,
                exponent: -1
            }
        );
        assert_eq!(d("100").compare(d("1e2")), Ordering::Equal);
        assert_eq!(d("99.95").compare(d("99.950")), Ordering::Equal);
        assert_eq!(d("-1").compare(d("0.5")), Ordering::Less);
        assert_eq!(d("1e40").compare(d("1e-40")), Ordering::Greater);
        for bad in [
            "",
            "-",
            ".",
            "1.2.3",
            "abc",
            "1e",
            "1x",
            "1234567890123456789012345678901",
        ] {
            assert_eq!(Decimal::parse(bad), None, "{bad}");
        }
        assert_eq!(Decimal::from_json(&json!(131.0)), Some(d("131.0")));
        assert_eq!(Decimal::from_json(&json!(7)), Some(d("7")));
        assert_eq!(Decimal::from_json(&json!(true)), None);
    }

    #[test]
    fn number_prefix_semantics() {
        let d = |s: &str| Decimal::parse(s).unwrap();
        let check = |p, s: &str, t: &str| number_matches(p, d(s), d(t));
        assert!(check(Prefix::Eq, "100", "99.5"));
        assert!(check(Prefix::Eq, "100", "100.4999"));
        assert!(!check(Prefix::Eq, "100", "100.5"));
        assert!(!check(Prefix::Eq, "100", "99.49"));
        assert!(check(Prefix::Eq, "100.0", "99.95"));
        assert!(!check(Prefix::Eq, "100.0", "99.94"));
        assert!(check(Prefix::Ne, "100", "101"));
        assert!(check(Prefix::Gt, "100", "100.1"));
        assert!(!check(Prefix::Gt, "100", "100"));
        assert!(check(Prefix::Ge, "100", "100"));
        assert!(check(Prefix::Lt, "100", "99.9"));
        assert!(check(Prefix::Le, "100", "100"));
        assert!(!check(Prefix::Le, "100", "100.01"));
        assert!(check(Prefix::Sa, "5", "6"));
        assert!(check(Prefix::Eb, "5", "4"));
        assert!(check(Prefix::Ap, "100", "110"));
        assert!(check(Prefix::Ap, "100", "90"));
        assert!(!check(Prefix::Ap, "100", "111"));
        assert!(check(Prefix::Ap, "-100", "-109"));
        assert!(!check(Prefix::Ap, "-100", "-89"));
    }

    #[test]
    fn prefixes_split_and_reject_unknown_letters() {
        assert_eq!(split_prefix("ge2020"), Ok((Prefix::Ge, "2020")));
        assert_eq!(split_prefix("2020"), Ok((Prefix::Eq, "2020")));
        assert_eq!(split_prefix("-5"), Ok((Prefix::Eq, "-5")));
        assert!(
            split_prefix("xx2020")
                .unwrap_err()
                .contains("unknown prefix 'xx'")
        );
        assert!(split_prefix("g").is_err());
        for p in ["eq", "ne", "gt", "lt", "ge", "le", "sa", "eb", "ap"] {
            assert_eq!(Prefix::from_code(p).map(Prefix::code), Some(p));
        }
    }

    #[test]
    fn normalization_folds_case_and_accents() {
        assert_eq!(normalize("Ærøskøbing"), "aeroskobing");
        assert_eq!(normalize("JOSÉ"), "jose");
        assert_eq!(normalize("Jose\u{301}"), "jose");
        assert_eq!(normalize("Straße"), "strasse");
        assert_eq!(normalize("Łódź"), "lodz");
    }

    #[test]
    fn string_modes() {
        let n = normalize("jos");
        assert!(string_matches(StringMode::StartsWith, "jos", &n, "José"));
        assert!(!string_matches(StringMode::StartsWith, "jos", &n, "Ajos"));
        assert!(string_matches(StringMode::Contains, "jos", &n, "Ajosé"));
        assert!(string_matches(StringMode::Exact, "José", "jose", "José"));
        assert!(!string_matches(StringMode::Exact, "José", "jose", "Jose"));
        assert!(!string_matches(StringMode::Exact, "José", "jose", "josé"));
    }

    #[test]
    fn string_values_of_names_and_addresses() {
        let name =
            json!({"use": "official", "text": "Ann Lee", "family": "Lee", "given": ["Ann", "M"]});
        let mut out = Vec::new();
        string_values(&name, &mut out);
        assert_eq!(out, vec!["Ann Lee", "Lee", "Ann", "M"]);
        let address = json!({"line": ["1 Main"], "city": "X", "use": "home"});
        let mut out = Vec::new();
        string_values(&address, &mut out);
        assert_eq!(out, vec!["1 Main", "X"]);
    }

    #[test]
    fn token_forms() {
        let t = TokenValue::parse;
        assert_eq!(t("a").system, None);
        assert_eq!(t("s|a").system.as_deref(), Some("s"));
        assert_eq!(t("|a").system.as_deref(), Some(""));
        assert_eq!(t("s|").code, None);
        assert_eq!(t(r"a\|b").code.as_deref(), Some("a|b"));
        assert_eq!(t("http://x|a|b").code.as_deref(), Some("a"));

        let cc = json!({"coding": [{"system": "s", "code": "a"}, {"code": "b"}], "text": "T"});
        let mut codes = Vec::new();
        token_codes(&cc, &mut codes);
        let matches = |q: &str| codes.iter().any(|c| token_matches(&t(q), c));
        assert!(matches("a"));
        assert!(matches("s|a"));
        assert!(!matches("s|b"));
        assert!(matches("|b"));
        assert!(!matches("|a"));
        assert!(matches("s|"));
        assert!(!matches("z|"));
        let mut texts = Vec::new();
        token_texts(&cc, &mut texts);
        assert_eq!(texts, vec!["T"]);
    }

    #[test]
    fn token_targets_of_other_shapes() {
        let inputs = [
            json!({"system": "urn:mrn", "value": "123"}),
            json!({"system": "phone", "value": "555"}),
            json!(true),
            json!("female"),
            json!({"system": "x", "code": "AMB", "display": "amb"}),
        ];
        let mut c = Vec::new();
        inputs.iter().for_each(|v| token_codes(v, &mut c));
        let codes: Vec<_> = c.iter().map(|c| (c.system, c.code.as_str())).collect();
        assert_eq!(
            codes,
            vec![
                (Some("urn:mrn"), "123"),
                (Some("phone"), "555"),
                (None, "true"),
                (None, "female"),
                (Some("x"), "AMB")
            ]
        );
        let female = &c[3];
        assert!(token_matches(&TokenValue::parse("|female"), female));
        assert!(token_matches(
            &TokenValue::parse("http://hl7.org/fhir/administrative-gender|female"),
            female
        ));
        assert!(!token_matches(&TokenValue::parse("http://x|"), female));
    }

    #[test]
    fn reference_forms() {
        assert_eq!(parse_reference("Patient/1"), Some((Some("Patient"), "1")));
        assert_eq!(parse_reference("1"), Some((None, "1")));
        assert_eq!(
            parse_reference("https://ehr.example/fhir/Patient/1/_history/3"),
            Some((Some("Patient"), "1"))
        );
        assert_eq!(parse_reference("#contained"), None);
        assert_eq!(parse_reference("urn:uuid:abc"), None);
        assert_eq!(parse_reference("patient/1"), None);
        assert_eq!(parse_reference(""), None);
        let r = json!({"reference": "Patient/7"});
        assert_eq!(reference_targets(&r, &["Patient"]), Some(("Patient", "7")));
        assert_eq!(reference_targets(&r, &["Group"]), None);
        assert_eq!(reference_targets(&r, &[]), Some(("Patient", "7")));
        let bare = json!({"reference": "7"});
        assert_eq!(
            reference_targets(&bare, &["Patient"]),
            Some(("Patient", "7"))
        );
        assert_eq!(reference_targets(&bare, &["Patient", "Group"]), None);
        assert_eq!(reference_targets(&json!({"display": "x"}), &[]), None);
    }

    #[test]
    fn escapes() {
        assert_eq!(split_unescaped(r"a,b\,c,d", ','), vec!["a", r"b\,c", "d"]);
        assert_eq!(split_unescaped("", ','), vec![""]);
        assert_eq!(unescape(r"b\,c\\d\x"), r"b,c\d\x");
    }
}

//! Parsing of search requests (already URL-decoded `(key, value)` pairs) into criteria and
//! control parameters, and rendering of the used parameters back into a query string.

use super::error::SearchError;
use super::registry::{self, ParamType, SearchParamDef};
use super::value::{
    self, DateRange, Decimal, Prefix, StringMode, TokenValue, parse_date, split_prefix,
    split_unescaped, unescape,
};
use std::ops::Range;

/// A reference search value: an id, optionally with its resource type.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct RefValue {
    /// The target type, from `Type/id`, an absolute URL or a `:Type` modifier.
    pub resource_type: Option<String>,
    /// The target's logical id.
    pub id: String,
}

/// A quantity search value: `[prefix]number|system|code`.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct QuantityValue {
    /// The comparison prefix.
    pub prefix: Prefix,
    /// The number.
    pub number: Decimal,
    /// The unit system, when given.
    pub system: Option<String>,
    /// The unit code, when given (matches `code`, or `unit` when no system is given).
    pub code: Option<String>,
}

/// A string search value, as written and normalized.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct StringValue {
    /// The value as written (unescaped), for `:exact`.
    pub raw: String,
    /// The case- and accent-folded value.
    pub normalized: String,
}

/// What a parameter criterion tests; each vector is an OR list.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Test {
    /// `:missing=true|false`: the parameter has no value (`true`) or some value (`false`).
    Missing(bool),
    /// Token match; `negate` is set by `:not` (no value of the resource matches).
    Token {
        /// The alternatives.
        values: Vec<TokenValue>,
        /// True for `:not`.
        negate: bool,
    },
    /// `:text` on a token: starts-with on the text and displays.
    TokenText(Vec<StringValue>),
    /// String match with the given mode.
    String {
        /// Starts-with (default), `:exact` or `:contains`.
        mode: StringMode,
        /// The alternatives.
        values: Vec<StringValue>,
    },
    /// Date ranges with prefixes.
    Date(Vec<(Prefix, DateRange)>),
    /// Numbers with prefixes.
    Number(Vec<(Prefix, Decimal)>),
    /// Quantities with prefixes.
    Quantity(Vec<QuantityValue>),
    /// References.
    Reference(Vec<RefValue>),
    /// Exact URIs.
    Uri(Vec<String>),
}

/// A criterion on one parameter of the resource being tested.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParamCriterion {
    /// The parameter definition.
    pub param: &'static SearchParamDef,
    /// What to test.
    pub test: Test,
}

/// A chained criterion such as `subject:Patient.name=peter` (one level).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChainCriterion {
    /// The reference parameter of the searched type.
    pub param: &'static SearchParamDef,
    /// For each candidate target type, the criterion the referenced resource must satisfy.
    pub targets: Vec<(&'static str, ParamCriterion)>,
}

/// A reverse-chained criterion such as `_has:Observation:patient:code=1234-5` (one level).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HasCriterion {
    /// The type of the referring resources.
    pub source_type: &'static str,
    /// The reference parameter of `source_type` that must point at the tested resource.
    pub reference: &'static SearchParamDef,
    /// The criterion the referring resource must satisfy.
    pub inner: ParamCriterion,
}

/// One criterion; all criteria of a search must hold (AND).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Criterion {
    /// A parameter of the searched type.
    Param(ParamCriterion),
    /// A chained parameter.
    Chain(ChainCriterion),
    /// A reverse chain (`_has`).
    Has(HasCriterion),
}

/// One `_sort` key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SortKey {
    /// The parameter to sort by.
    pub param: &'static SearchParamDef,
    /// True for a `-` prefix.
    pub descending: bool,
}

/// One `_include` or `_revinclude` directive: `SourceType:param[:TargetType]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IncludeSpec {
    /// The type holding the reference.
    pub source_type: &'static str,
    /// The reference parameter of `source_type`.
    pub param: &'static SearchParamDef,
    /// Only follow references to this type, when given.
    pub target_type: Option<String>,
}

/// The `_summary` modes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum SummaryMode {
    /// Only the elements marked as summary.
    True,
    /// The full resource.
    False,
    /// Only the total count, no entries.
    Count,
    /// Only text, id, meta and mandatory elements.
    Text,
    /// Everything except the narrative text.
    Data,
}

/// The `_total` modes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum TotalMode {
    /// Do not report a total.
    None,
    /// An estimate is enough.
    Estimate,
    /// An exact total.
    Accurate,
}

/// A parsed search request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParsedSearch {
    /// The searched resource type.
    pub resource_type: &'static str,
    /// The criteria, all of which must hold.
    pub criteria: Vec<Criterion>,
    /// `_count`, when given; the caller applies its default and maximum.
    pub count: Option<usize>,
    /// `_offset`, when given.
    pub offset: Option<usize>,
    /// `_sort` keys in order.
    pub sort: Vec<SortKey>,
    /// `_include` directives.
    pub include: Vec<IncludeSpec>,
    /// `_revinclude` directives.
    pub revinclude: Vec<IncludeSpec>,
    /// `_summary`, when given.
    pub summary: Option<SummaryMode>,
    /// `_elements` names (top-level element names, any `Type.` prefix removed).
    pub elements: Vec<String>,
    /// `_total`, when given.
    pub total: Option<TotalMode>,
    /// `_format` as given (not interpreted here).
    pub format: Option<String>,
    /// `_pretty` as given (not interpreted here).
    pub pretty: Option<String>,
    /// Parameters left out in lenient mode (unknown, or with an empty value), in request order.
    pub ignored: Vec<(String, String)>,
    /// The used parameters other than `_count`/`_offset`, in request order, for links.
    used: Vec<(String, String)>,
}

/// Entry point for parsing; see [`SearchQuery::parse`].
#[derive(Debug, Clone, Copy)]
pub struct SearchQuery;

impl SearchQuery {
    /// Parses URL-decoded `(key, value)` pairs, in request order, for a search on `resource_type`.
    ///
    /// Repeated parameters are ANDed, comma-separated values ORed (`\,` escapes a comma). With
    /// `strict`, unknown parameters are an error; otherwise they are collected in
    /// [`ParsedSearch::ignored`]. Parameters with an empty value are always ignored.
    pub fn parse(
        resource_type: &str,
        params: &[(String, String)],
        strict: bool,
    ) -> Result<ParsedSearch, SearchError> {
        let resource_type = registry::supported_types()
            .into_iter()
            .find(|t| *t == resource_type)
            .ok_or_else(|| SearchError::UnsupportedType(resource_type.to_owned()))?;
        let mut out = ParsedSearch {
            resource_type,
            criteria: Vec::new(),
            count: None,
            offset: None,
            sort: Vec::new(),
            include: Vec::new(),
            revinclude: Vec::new(),
            summary: None,
            elements: Vec::new(),
            total: None,
            format: None,
            pretty: None,
            ignored: Vec::new(),
            used: Vec::new(),
        };
        let mut seen_control: Vec<&str> = Vec::new();
        for (key, value) in params {
            if value.is_empty() {
                out.ignored.push((key.clone(), value.clone()));
                continue;
            }
            let outcome = if key.starts_with('_') && is_control(key) {
                if !matches!(key.as_str(), "_include" | "_revinclude") {
                    if seen_control.contains(&key.as_str()) {
                        return Err(SearchError::Repeated(key.clone()));
                    }
                    seen_control.push(key);
                }
                parse_control(&mut out, key, value)?;
                Parsed::Used
            } else {
                parse_criterion(resource_type, key, value)?
            };
            match outcome {
                Parsed::Used => {
                    if key != "_count" && key != "_offset" {
                        out.used.push((key.clone(), value.clone()));
                    }
                }
                Parsed::Criterion(c) => {
                    out.criteria.push(c);
                    out.used.push((key.clone(), value.clone()));
                }
                Parsed::Unknown => {
                    if strict {
                        return Err(SearchError::UnknownParameter {
                            param: key.clone(),
                            resource_type: resource_type.to_owned(),
                        });
                    }
                    out.ignored.push((key.clone(), value.clone()));
                }
            }
        }
        Ok(out)
    }
}

/// The result of looking at one request parameter.
enum Parsed {
    /// A control parameter that was stored.
    Used,
    /// A criterion.
    Criterion(Criterion),
    /// Not a known parameter.
    Unknown,
}

/// Control parameters: stored as settings, not criteria.
const CONTROL: &[&str] = &[
    "_count",
    "_offset",
    "_sort",
    "_include",
    "_revinclude",
    "_summary",
    "_elements",
    "_total",
    "_format",
    "_pretty",
];

/// True for a control parameter name, including unsupported forms such as `_include:iterate`.
fn is_control(key: &str) -> bool {
    let base = key.split(':').next().unwrap_or(key);
    CONTROL.contains(&base)
}

/// Parses a non-negative integer control value.
fn non_negative(key: &str, value: &str) -> Result<usize, SearchError> {
    if !value.bytes().all(|b| b.is_ascii_digit()) {
        return Err(SearchError::invalid(
            key,
            format!("expected a non-negative integer, got '{value}'"),
        ));
    }
    value
        .parse::<usize>()
        .map_err(|_| SearchError::invalid(key, format!("'{value}' is too large")))
}

/// Stores one control parameter in `out`.
fn parse_control(out: &mut ParsedSearch, key: &str, value: &str) -> Result<(), SearchError> {
    match key {
        "_count" => out.count = Some(non_negative(key, value)?),
        "_offset" => out.offset = Some(non_negative(key, value)?),
        "_sort" => out.sort = parse_sort(out.resource_type, value)?,
        "_include" => out
            .include
            .push(parse_include(out.resource_type, key, value, false)?),
        "_revinclude" => out
            .revinclude
            .push(parse_include(out.resource_type, key, value, true)?),
        "_summary" => {
            out.summary = Some(match value {
                "true" => SummaryMode::True,
                "false" => SummaryMode::False,
                "count" => SummaryMode::Count,
                "text" => SummaryMode::Text,
                "data" => SummaryMode::Data,
                _ => {
                    return Err(SearchError::invalid(
                        key,
                        format!("expected true, false, count, text or data, got '{value}'"),
                    ));
                }
            });
        }
        "_total" => {
            out.total = Some(match value {
                "none" => TotalMode::None,
                "estimate" => TotalMode::Estimate,
                "accurate" => TotalMode::Accurate,
                _ => {
                    return Err(SearchError::invalid(
                        key,
                        format!("expected none, estimate or accurate, got '{value}'"),
                    ));
                }
            });
        }
        "_elements" => {
            for piece in value.split(',') {
                let piece = piece.trim();
                let name = piece
                    .strip_prefix(out.resource_type)
                    .and_then(|rest| rest.strip_prefix('.'))
                    .unwrap_or(piece);
                let valid = !name.is_empty()
                    && name.chars().next().is_some_and(|c| c.is_ascii_alphabetic())
                    && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
                if !valid {
                    return Err(SearchError::invalid(
                        key,
                        format!("'{piece}' is not a top-level element name"),
                    ));
                }
                if !out.elements.iter().any(|e| e == name) {
                    out.elements.push(name.to_owned());
                }
            }
        }
        "_format" => out.format = Some(value.to_owned()),
        "_pretty" => out.pretty = Some(value.to_owned()),
        _ => {
            return Err(SearchError::unsupported(
                key,
                "this form is not supported (':iterate' and other modifiers on control parameters are not implemented)",
            ));
        }
    }
    Ok(())
}

/// Parses `_sort=a,-b`.
fn parse_sort(resource_type: &str, value: &str) -> Result<Vec<SortKey>, SearchError> {
    value
        .split(',')
        .map(|piece| {
            let piece = piece.trim();
            let (descending, name) = match piece.strip_prefix('-') {
                Some(n) => (true, n),
                None => (false, piece),
            };
            let param = registry::lookup(resource_type, name).ok_or_else(|| {
                SearchError::invalid(
                    "_sort",
                    format!("unknown sort parameter '{name}' for {resource_type}"),
                )
            })?;
            Ok(SortKey { param, descending })
        })
        .collect()
}

/// Parses `_include` / `_revinclude` values `Source:param[:Target]`.
fn parse_include(
    resource_type: &'static str,
    key: &str,
    value: &str,
    reverse: bool,
) -> Result<IncludeSpec, SearchError> {
    if value == "*" || value.ends_with(":*") {
        return Err(SearchError::unsupported(
            key,
            "wildcard '*' is not supported; name the reference parameter, e.g. Observation:patient",
        ));
    }
    let parts: Vec<&str> = value.split(':').collect();
    let (source, name, target) = match parts.as_slice() {
        [s, n] => (*s, *n, None),
        [s, n, t] => (*s, *n, Some(*t)),
        _ => {
            return Err(SearchError::invalid(
                key,
                format!("expected SourceType:parameter[:TargetType], got '{value}'"),
            ));
        }
    };
    let source_type = registry::supported_types()
        .into_iter()
        .find(|t| *t == source)
        .ok_or_else(|| {
            SearchError::invalid(key, format!("resource type '{source}' is not supported"))
        })?;
    if !reverse && source_type != resource_type {
        return Err(SearchError::invalid(
            key,
            format!("the source type must be {resource_type}, got '{source}'"),
        ));
    }
    let param = registry::lookup(source_type, name)
        .filter(|p| p.kind == ParamType::Reference)
        .ok_or_else(|| {
            SearchError::invalid(
                key,
                format!("'{name}' is not a reference parameter of {source_type}"),
            )
        })?;
    if let Some(t) = target.filter(|t| !value::is_type_name(t) || !param.allows_target(t)) {
        return Err(SearchError::invalid(
            key,
            format!("{source_type}.{name} cannot refer to '{t}'"),
        ));
    }
    if reverse && !param.allows_target(resource_type) {
        return Err(SearchError::invalid(
            key,
            format!("{source_type}.{name} cannot refer to {resource_type}"),
        ));
    }
    if let Some(t) = target.filter(|t| reverse && *t != resource_type) {
        return Err(SearchError::invalid(
            key,
            format!("the target type must be {resource_type}, got '{t}'"),
        ));
    }
    Ok(IncludeSpec {
        source_type,
        param,
        target_type: target.map(str::to_owned),
    })
}

/// Parses one criterion parameter (plain, chained or `_has`).
fn parse_criterion(
    resource_type: &'static str,
    key: &str,
    value: &str,
) -> Result<Parsed, SearchError> {
    if let Some(rest) = key.strip_prefix("_has:") {
        return parse_has(resource_type, key, rest, value);
    }
    if key == "_has" {
        return Err(SearchError::invalid(
            key,
            "expected _has:Type:reference:parameter",
        ));
    }
    let (left, chained) = match key.split_once('.') {
        Some((l, r)) => (l, Some(r)),
        None => (key, None),
    };
    let (name, modifier) = match left.split_once(':') {
        Some((n, m)) => (n, Some(m)),
        None => (left, None),
    };
    let Some(param) = registry::lookup(resource_type, name) else {
        return Ok(Parsed::Unknown);
    };
    match chained {
        None => Ok(Parsed::Criterion(Criterion::Param(parse_test(
            key, param, modifier, value,
        )?))),
        Some(rest) => parse_chain(key, param, modifier, rest, value),
    }
}

/// Parses the chained part of `param[:Type].inner[:modifier]`.
fn parse_chain(
    key: &str,
    param: &'static SearchParamDef,
    modifier: Option<&str>,
    rest: &str,
    value: &str,
) -> Result<Parsed, SearchError> {
    if param.kind != ParamType::Reference {
        return Err(SearchError::invalid(
            key,
            format!(
                "'{}' is not a reference parameter, so it cannot be chained",
                param.name
            ),
        ));
    }
    if rest.contains('.') {
        return Err(SearchError::unsupported(
            key,
            "chains of more than one level are not supported",
        ));
    }
    let (inner_name, inner_modifier) = match rest.split_once(':') {
        Some((n, m)) => (n, Some(m)),
        None => (rest, None),
    };
    let candidates: Vec<&'static str> = match modifier {
        Some(t) => vec![type_modifier(key, param, t)?],
        None => registry::supported_types()
            .into_iter()
            .filter(|t| param.allows_target(t))
            .collect(),
    };
    let mut targets = Vec::new();
    for t in candidates {
        if let Some(inner) = registry::lookup(t, inner_name) {
            targets.push((t, parse_test(key, inner, inner_modifier, value)?));
        }
    }
    if targets.is_empty() {
        return Ok(Parsed::Unknown);
    }
    Ok(Parsed::Criterion(Criterion::Chain(ChainCriterion {
        param,
        targets,
    })))
}

/// Parses `_has:Type:reference:parameter[:modifier]` (the part after `_has:` is `rest`).
fn parse_has(
    resource_type: &'static str,
    key: &str,
    rest: &str,
    value: &str,
) -> Result<Parsed, SearchError> {
    if rest.contains("_has:") {
        return Err(SearchError::unsupported(
            key,
            "nested _has is not supported",
        ));
    }
    let parts: Vec<&str> = rest.split(':').collect();
    let (source, reference, inner_name, inner_modifier) = match parts.as_slice() {
        [s, r, p] => (*s, *r, *p, None),
        [s, r, p, m] => (*s, *r, *p, Some(*m)),
        _ => {
            return Err(SearchError::invalid(
                key,
                "expected _has:Type:reference:parameter",
            ));
        }
    };
    if inner_name.contains('.') {
        return Err(SearchError::unsupported(
            key,
            "chained parameters inside _has are not supported",
        ));
    }
    let Some(source_type) = registry::supported_types()
        .into_iter()
        .find(|t| *t == source)
    else {
        return Ok(Parsed::Unknown);
    };
    let Some(reference) = registry::lookup(source_type, reference) else {
        return Ok(Parsed::Unknown);
    };
    if reference.kind != ParamType::Reference || !reference.allows_target(resource_type) {
        return Err(SearchError::invalid(
            key,
            format!(
                "{source_type}.{} is not a reference that can point to {resource_type}",
                reference.name
            ),
        ));
    }
    let Some(inner) = registry::lookup(source_type, inner_name) else {
        return Ok(Parsed::Unknown);
    };
    let inner = parse_test(key, inner, inner_modifier, value)?;
    Ok(Parsed::Criterion(Criterion::Has(HasCriterion {
        source_type,
        reference,
        inner,
    })))
}

/// Validates a `:Type` modifier on a reference parameter.
fn type_modifier(
    key: &str,
    param: &'static SearchParamDef,
    modifier: &str,
) -> Result<&'static str, SearchError> {
    if !value::is_type_name(modifier) {
        return Err(unsupported_modifier(key, modifier, ""));
    }
    if !param.allows_target(modifier) {
        return Err(unsupported_modifier(
            key,
            modifier,
            &format!(" ({} cannot refer to {modifier})", param.name),
        ));
    }
    registry::supported_types()
        .into_iter()
        .chain(param.targets.iter().copied())
        .find(|t| *t == modifier)
        .ok_or_else(|| unsupported_modifier(key, modifier, " (unknown resource type)"))
}

/// Builds an unsupported-modifier error.
fn unsupported_modifier(key: &str, modifier: &str, detail: &str) -> SearchError {
    SearchError::UnsupportedModifier {
        param: key.to_owned(),
        modifier: modifier.to_owned(),
        detail: detail.to_owned(),
    }
}

/// Splits a value into its comma-separated alternatives, rejecting empty ones.
fn alternatives<'v>(key: &str, value: &'v str) -> Result<Vec<&'v str>, SearchError> {
    let pieces = split_unescaped(value, ',');
    if pieces.iter().any(|p| p.is_empty()) {
        return Err(SearchError::invalid(
            key,
            format!("empty value in comma-separated list '{value}'"),
        ));
    }
    Ok(pieces)
}

/// Builds a string search value.
fn string_value(piece: &str) -> StringValue {
    let raw = unescape(piece);
    StringValue {
        normalized: value::normalize(&raw),
        raw,
    }
}

/// Parses the value (and modifier) of one parameter into a [`ParamCriterion`].
pub(crate) fn parse_test(
    key: &str,
    param: &'static SearchParamDef,
    modifier: Option<&str>,
    value: &str,
) -> Result<ParamCriterion, SearchError> {
    let kind = param.kind;
    if modifier == Some("missing") {
        let missing = match value {
            "true" => true,
            "false" => false,
            _ => {
                return Err(SearchError::invalid(
                    key,
                    format!(":missing expects true or false, got '{value}'"),
                ));
            }
        };
        return Ok(ParamCriterion {
            param,
            test: Test::Missing(missing),
        });
    }
    let mut type_restriction = None;
    match (kind, modifier) {
        (_, None)
        | (ParamType::Token, Some("not" | "text"))
        | (ParamType::String, Some("exact" | "contains")) => {}
        (ParamType::Reference, Some(m)) if value::is_type_name(m) => {
            type_restriction = Some(type_modifier(key, param, m)?);
        }
        (
            _,
            Some(m @ ("above" | "below" | "in" | "not-in" | "of-type" | "identifier" | "iterate")),
        ) => {
            return Err(unsupported_modifier(
                key,
                m,
                " (not implemented by this server)",
            ));
        }
        (_, Some(m)) => {
            return Err(unsupported_modifier(
                key,
                m,
                &format!(" for {} parameters", kind.as_str()),
            ));
        }
    }
    let pieces = alternatives(key, value)?;
    let test = match kind {
        ParamType::Token if modifier == Some("text") => {
            Test::TokenText(pieces.into_iter().map(string_value).collect())
        }
        ParamType::Token => {
            let values = pieces
                .into_iter()
                .map(|p| {
                    let t = TokenValue::parse(p);
                    if t.code.is_none() && t.system.as_deref().is_none_or(str::is_empty) {
                        Err(SearchError::invalid(
                            key,
                            format!("'{p}' has neither a system nor a code"),
                        ))
                    } else {
                        Ok(t)
                    }
                })
                .collect::<Result<_, _>>()?;
            Test::Token {
                values,
                negate: modifier == Some("not"),
            }
        }
        ParamType::String => Test::String {
            mode: match modifier {
                Some("exact") => StringMode::Exact,
                Some("contains") => StringMode::Contains,
                _ => StringMode::StartsWith,
            },
            values: pieces.into_iter().map(string_value).collect(),
        },
        ParamType::Date => Test::Date(
            pieces
                .into_iter()
                .map(|p| {
                    let (prefix, rest) = split_prefix(p).map_err(|m| SearchError::invalid(key, m))?;
                    let range = parse_date(rest).ok_or_else(|| {
                        SearchError::invalid(
                            key,
                            format!(
                                "invalid date '{rest}' (expected YYYY, YYYY-MM, YYYY-MM-DD or a dateTime such as 2020-01-31T10:00:00Z)"
                            ),
                        )
                    })?;
                    Ok((prefix, range))
                })
                .collect::<Result<_, SearchError>>()?,
        ),
        ParamType::Number => Test::Number(
            pieces
                .into_iter()
                .map(|p| {
                    let (prefix, rest) = split_prefix(p).map_err(|m| SearchError::invalid(key, m))?;
                    let n = Decimal::parse(rest).ok_or_else(|| {
                        SearchError::invalid(key, format!("invalid number '{rest}'"))
                    })?;
                    Ok((prefix, n))
                })
                .collect::<Result<_, SearchError>>()?,
        ),
        ParamType::Quantity => Test::Quantity(
            pieces
                .into_iter()
                .map(|p| parse_quantity(key, p))
                .collect::<Result<_, _>>()?,
        ),
        ParamType::Reference => Test::Reference(
            pieces
                .into_iter()
                .map(|p| parse_reference_value(key, param, type_restriction, p))
                .collect::<Result<_, _>>()?,
        ),
        ParamType::Uri => Test::Uri(pieces.into_iter().map(unescape).collect()),
    };
    Ok(ParamCriterion { param, test })
}

/// Parses `[prefix]number[|system|code]`.
fn parse_quantity(key: &str, piece: &str) -> Result<QuantityValue, SearchError> {
    let (prefix, rest) = split_prefix(piece).map_err(|m| SearchError::invalid(key, m))?;
    let parts = split_unescaped(rest, '|');
    let (number, system, code) = match parts.as_slice() {
        [n] => (*n, None, None),
        [n, s, c] => (
            *n,
            (!s.is_empty()).then(|| unescape(s)),
            (!c.is_empty()).then(|| unescape(c)),
        ),
        _ => {
            return Err(SearchError::invalid(
                key,
                format!(
                    "invalid quantity '{piece}' (expected [prefix]number or [prefix]number|system|code)"
                ),
            ));
        }
    };
    let number = Decimal::parse(number).ok_or_else(|| {
        SearchError::invalid(key, format!("invalid number '{number}' in quantity"))
    })?;
    Ok(QuantityValue {
        prefix,
        number,
        system,
        code,
    })
}

/// Parses a reference value: `id`, `Type/id` or a URL ending in `Type/id`.
fn parse_reference_value(
    key: &str,
    param: &'static SearchParamDef,
    type_restriction: Option<&'static str>,
    piece: &str,
) -> Result<RefValue, SearchError> {
    let text = unescape(piece);
    let (ty, id) = value::parse_reference(&text).ok_or_else(|| {
        SearchError::invalid(
            key,
            format!("invalid reference '{text}' (expected id, Type/id or a URL ending in Type/id)"),
        )
    })?;
    if let Some(t) = ty {
        if !param.allows_target(t) {
            return Err(SearchError::invalid(
                key,
                format!("{} cannot refer to {t}", param.name),
            ));
        }
        if type_restriction.is_some_and(|r| r != t) {
            return Err(SearchError::invalid(
                key,
                format!("reference '{text}' does not match the type modifier"),
            ));
        }
    }
    Ok(RefValue {
        resource_type: ty
            .map(str::to_owned)
            .or(type_restriction.map(str::to_owned)),
        id: id.to_owned(),
    })
}

/// Percent-encodes everything except RFC 3986 unreserved characters.
pub fn percent_encode(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for b in text.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
            out.push(char::from(b));
        } else {
            out.push('%');
            for nibble in [b >> 4, b & 0x0f] {
                let digit = char::from_digit(u32::from(nibble), 16).unwrap_or('0');
                out.push(digit.to_ascii_uppercase());
            }
        }
    }
    out
}

/// Renders `key=value` pairs joined by `&`.
fn render<'a>(pairs: impl Iterator<Item = (&'a str, String)>) -> String {
    pairs
        .map(|(k, v)| format!("{}={}", percent_encode(k), percent_encode(&v)))
        .collect::<Vec<_>>()
        .join("&")
}

impl ParsedSearch {
    /// The used parameters (criteria and control parameters, without the ignored ones) as a
    /// percent-encoded query string, in request order, with `_count`/`_offset` last: for `self`.
    pub fn query_string(&self) -> String {
        let paging = [
            self.count.map(|c| ("_count", c.to_string())),
            self.offset.map(|o| ("_offset", o.to_string())),
        ];
        render(
            self.used
                .iter()
                .map(|(k, v)| (k.as_str(), v.clone()))
                .chain(paging.into_iter().flatten()),
        )
    }

    /// Like [`ParsedSearch::query_string`] with the given page instead of the request's
    /// `_count`/`_offset`: for `next`/`previous`/`first` links.
    pub fn query_string_for_page(&self, count: usize, offset: usize) -> String {
        let paging = [
            ("_count", count.to_string()),
            ("_offset", offset.to_string()),
        ];
        render(
            self.used
                .iter()
                .map(|(k, v)| (k.as_str(), v.clone()))
                .chain(paging),
        )
    }

    /// The window of a result list of length `len` to return, applying `_offset`, `_count`, the
    /// server's default page size and its maximum.
    pub fn page_range(&self, len: usize, default_count: usize, max_count: usize) -> Range<usize> {
        let count = self.count.unwrap_or(default_count).min(max_count);
        let start = self.offset.unwrap_or(0).min(len);
        start..start.saturating_add(count).min(len)
    }

    /// True when the request asked only for a count (`_summary=count` or `_count=0`).
    pub fn count_only(&self) -> bool {
        self.summary == Some(SummaryMode::Count) || self.count == Some(0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Builds request pairs from `key=value` strings.
    fn pairs(items: &[&str]) -> Vec<(String, String)> {
        items
            .iter()
            .map(|kv| {
                let (k, v) = kv.split_once('=').unwrap_or((kv, ""));
                (k.to_owned(), v.to_owned())
            })
            .collect()
    }

    /// Parses leniently.
    fn parse(ty: &str, items: &[&str]) -> Result<ParsedSearch, SearchError> {
        SearchQuery::parse(ty, &pairs(items), false)
    }

    /// The error message of a failing lenient parse.
    fn error(ty: &str, items: &[&str]) -> String {
        match parse(ty, items) {
            Ok(p) => panic!("expected an error for {items:?}, got {p:?}"),
            Err(e) => e.to_string(),
        }
    }

    #[test]
    fn repeated_and_comma_values() {
        let p = parse("Observation", &["code=a,b", "code=c", r"status=x\,y"]).unwrap();
        assert_eq!(p.criteria.len(), 3);
        let Criterion::Param(c) = &p.criteria[0] else {
            panic!()
        };
        let Test::Token { values, negate } = &c.test else {
            panic!()
        };
        assert_eq!(values.len(), 2);
        assert!(!negate);
        let Criterion::Param(c) = &p.criteria[2] else {
            panic!()
        };
        let Test::Token { values, .. } = &c.test else {
            panic!()
        };
        assert_eq!(values[0].code.as_deref(), Some("x,y"));
    }

    #[test]
    fn unknown_parameters_lenient_and_strict() {
        let p = parse(
            "Patient",
            &["name=x", "foo=bar", "_text=x", "patient.foo=y"],
        )
        .unwrap();
        assert_eq!(p.criteria.len(), 1);
        assert_eq!(p.ignored, pairs(&["foo=bar", "_text=x", "patient.foo=y"]));
        let err = SearchQuery::parse("Patient", &pairs(&["foo=bar"]), true).unwrap_err();
        assert_eq!(
            err.to_string(),
            "parameter 'foo': unknown search parameter for Patient"
        );
        let err = SearchQuery::parse("Observation", &pairs(&["patient.foo=x"]), true).unwrap_err();
        assert!(err.to_string().contains("'patient.foo'"), "{err}");
    }

    #[test]
    fn empty_values_are_ignored() {
        let p = parse("Patient", &["name=", "_count="]).unwrap();
        assert!(p.criteria.is_empty());
        assert_eq!(p.count, None);
        assert_eq!(p.ignored.len(), 2);
        assert!(parse("Patient", &["name=a,,b"]).is_err());
    }

    #[test]
    fn unsupported_type() {
        assert_eq!(
            error("Spaceship", &["name=x"]),
            "resource type 'Spaceship' is not supported for search"
        );
    }

    #[test]
    fn malformed_values_have_clear_errors() {
        let cases: &[(&str, &[&str], &str)] = &[
            (
                "Patient",
                &["birthdate=2020-13-01"],
                "parameter 'birthdate': invalid date '2020-13-01'",
            ),
            (
                "Patient",
                &["birthdate=xx2020"],
                "parameter 'birthdate': unknown prefix 'xx'",
            ),
            (
                "Observation",
                &["value-quantity=abc"],
                "unknown prefix 'ab'",
            ),
            (
                "Observation",
                &["value-quantity=5|x"],
                "parameter 'value-quantity': invalid quantity '5|x'",
            ),
            (
                "Observation",
                &["value-quantity=gt5x"],
                "invalid number '5x' in quantity",
            ),
            (
                "Observation",
                &["_sort=foo"],
                "parameter '_sort': unknown sort parameter 'foo' for Observation",
            ),
            (
                "Observation",
                &["_count=-1"],
                "parameter '_count': expected a non-negative integer, got '-1'",
            ),
            (
                "Observation",
                &["_count=ten"],
                "parameter '_count': expected a non-negative integer",
            ),
            (
                "Observation",
                &["_offset=1.5"],
                "parameter '_offset': expected a non-negative integer",
            ),
            (
                "Observation",
                &["_count=1", "_count=2"],
                "parameter '_count': given more than once",
            ),
            (
                "Observation",
                &["_summary=maybe"],
                "parameter '_summary': expected true, false, count, text or data",
            ),
            (
                "Observation",
                &["_total=lots"],
                "parameter '_total': expected none, estimate or accurate",
            ),
            (
                "Observation",
                &["_elements=a.b"],
                "parameter '_elements': 'a.b' is not a top-level element name",
            ),
            (
                "Observation",
                &["code:exact=x"],
                "parameter 'code:exact': modifier ':exact' is not supported for token parameters",
            ),
            (
                "Observation",
                &["code:below=x"],
                "modifier ':below' is not supported (not implemented by this server)",
            ),
            (
                "Patient",
                &["name:not=x"],
                "modifier ':not' is not supported for string parameters",
            ),
            (
                "Observation",
                &["patient:missing=maybe"],
                ":missing expects true or false, got 'maybe'",
            ),
            (
                "Observation",
                &["patient=Group/1"],
                "parameter 'patient': patient cannot refer to Group",
            ),
            (
                "Observation",
                &["subject:Practitioner=1"],
                "modifier ':Practitioner' is not supported (subject cannot refer to Practitioner)",
            ),
            (
                "Observation",
                &["subject:Patient=Group/1"],
                "does not match the type modifier",
            ),
            ("Observation", &["patient=a b"], "invalid reference 'a b'"),
            (
                "Observation",
                &["code=|"],
                "'|' has neither a system nor a code",
            ),
            (
                "Observation",
                &["code.name=x"],
                "'code' is not a reference parameter",
            ),
            (
                "Observation",
                &["patient.organization.name=x"],
                "chains of more than one level are not supported",
            ),
            (
                "Patient",
                &["_has:Observation:patient=x"],
                "expected _has:Type:reference:parameter",
            ),
            (
                "Patient",
                &["_has:Observation:code:status=final"],
                "Observation.code is not a reference that can point to Patient",
            ),
            (
                "Patient",
                &["_has:Observation:patient:_has:Observation:patient:code=x"],
                "nested _has is not supported",
            ),
            (
                "Observation",
                &["_include=*"],
                "wildcard '*' is not supported",
            ),
            (
                "Observation",
                &["_include=Patient:organization"],
                "the source type must be Observation",
            ),
            (
                "Observation",
                &["_include=Observation:code"],
                "'code' is not a reference parameter of Observation",
            ),
            (
                "Observation",
                &["_include=Observation:patient:Group"],
                "Observation.patient cannot refer to 'Group'",
            ),
            (
                "Observation",
                &["_include=Observation"],
                "expected SourceType:parameter[:TargetType]",
            ),
            (
                "Patient",
                &["_revinclude=Observation:encounter"],
                "Observation.encounter cannot refer to Patient",
            ),
            (
                "Patient",
                &["_include:iterate=Patient:organization"],
                "parameter '_include:iterate': this form is not supported",
            ),
        ];
        for (ty, items, expected) in cases {
            let msg = error(ty, items);
            assert!(
                msg.contains(expected),
                "{items:?}: got '{msg}', expected '{expected}'"
            );
        }
    }

    #[test]
    fn control_parameters() {
        let p = parse(
            "Observation",
            &[
                "_count=5",
                "_offset=10",
                "_sort=-date,_id",
                "_include=Observation:patient",
                "_include=Observation:subject:Patient",
                "_revinclude=Provenance:target",
                "_summary=data",
                "_elements=Observation.status,code",
                "_total=accurate",
                "_format=json",
                "_pretty=true",
            ],
        )
        .unwrap();
        assert_eq!((p.count, p.offset), (Some(5), Some(10)));
        let sort: Vec<_> = p
            .sort
            .iter()
            .map(|s| (s.param.name, s.descending))
            .collect();
        assert_eq!(sort, vec![("date", true), ("_id", false)]);
        assert_eq!(p.include.len(), 2);
        assert_eq!(p.include[1].target_type.as_deref(), Some("Patient"));
        assert_eq!(p.revinclude[0].source_type, "Provenance");
        assert_eq!(p.summary, Some(SummaryMode::Data));
        assert_eq!(p.elements, vec!["status", "code"]);
        assert_eq!(p.total, Some(TotalMode::Accurate));
        assert_eq!(p.format.as_deref(), Some("json"));
        assert_eq!(p.pretty.as_deref(), Some("true"));
        assert!(p.criteria.is_empty());
        assert!(!p.count_only());
    }

    #[test]
    fn query_strings_for_links() {
        let p = parse(
            "Observation",
            &[
                "code=http://loinc.org|8480-6,x",
                "_count=5",
                "unknown=1",
                "date=ge2020-01-01T00:00:00+01:00",
                "subject:Patient=1",
            ],
        )
        .unwrap();
        assert_eq!(
            p.query_string(),
            "code=http%3A%2F%2Floinc.org%7C8480-6%2Cx&date=ge2020-01-01T00%3A00%3A00%2B01%3A00&subject%3APatient=1&_count=5"
        );
        assert_eq!(
            p.query_string_for_page(5, 10),
            "code=http%3A%2F%2Floinc.org%7C8480-6%2Cx&date=ge2020-01-01T00%3A00%3A00%2B01%3A00&subject%3APatient=1&_count=5&_offset=10"
        );
        assert_eq!(percent_encode("é ~"), "%C3%A9%20~");
    }

    #[test]
    fn page_ranges() {
        let p = parse("Patient", &["_count=5", "_offset=8"]).unwrap();
        assert_eq!(p.page_range(10, 20, 100), 8..10);
        assert_eq!(p.page_range(3, 20, 100), 3..3);
        let p = parse("Patient", &[]).unwrap();
        assert_eq!(p.page_range(50, 20, 100), 0..20);
        let p = parse("Patient", &["_count=500"]).unwrap();
        assert_eq!(p.page_range(1000, 20, 100), 0..100);
        let p = parse("Patient", &["_count=0"]).unwrap();
        assert!(p.count_only());
        assert_eq!(p.page_range(10, 20, 100), 0..0);
    }

    #[test]
    fn chains_pick_candidate_types() {
        let p = parse("Observation", &["subject.name=peter"]).unwrap();
        let Criterion::Chain(c) = &p.criteria[0] else {
            panic!()
        };
        let types: Vec<_> = c.targets.iter().map(|(t, _)| *t).collect();
        assert_eq!(types, vec!["Patient", "Location", "Group"]);
        let p = parse("Observation", &["subject:Patient.name=peter"]).unwrap();
        let Criterion::Chain(c) = &p.criteria[0] else {
            panic!()
        };
        assert_eq!(c.targets.len(), 1);
        let p = parse(
            "Observation",
            &["patient.identifier=s|v", "patient.name:exact=Ann"],
        )
        .unwrap();
        assert_eq!(p.criteria.len(), 2);
        assert!(error("Observation", &["patient.birthdate=2020-13"]).contains("invalid date"));
    }

    #[test]
    fn has_parses() {
        let p = parse("Patient", &["_has:Observation:patient:code=1234-5"]).unwrap();
        let Criterion::Has(h) = &p.criteria[0] else {
            panic!()
        };
        assert_eq!(
            (h.source_type, h.reference.name, h.inner.param.name),
            ("Observation", "patient", "code")
        );
        let p = parse("Patient", &["_has:Observation:patient:code:not=1"]).unwrap();
        assert_eq!(p.criteria.len(), 1);
        let p = parse(
            "Patient",
            &[
                "_has:Spaceship:patient:code=1",
                "_has:Observation:patient:nope=1",
            ],
        )
        .unwrap();
        assert!(p.criteria.is_empty());
        assert_eq!(p.ignored.len(), 2);
    }

    #[test]
    fn reference_values() {
        let p = parse(
            "Observation",
            &[
                "subject=1,Patient/2,https://x.org/fhir/Group/3/_history/2",
                "patient=4",
                "subject:Patient=5",
            ],
        )
        .unwrap();
        let refs: Vec<Vec<RefValue>> = p
            .criteria
            .iter()
            .map(|c| match c {
                Criterion::Param(ParamCriterion {
                    test: Test::Reference(r),
                    ..
                }) => r.clone(),
                other => panic!("{other:?}"),
            })
            .collect();
        let rv = |t: Option<&str>, id: &str| RefValue {
            resource_type: t.map(str::to_owned),
            id: id.to_owned(),
        };
        assert_eq!(
            refs[0],
            vec![
                rv(None, "1"),
                rv(Some("Patient"), "2"),
                rv(Some("Group"), "3")
            ]
        );
        assert_eq!(refs[1], vec![rv(None, "4")]);
        assert_eq!(refs[2], vec![rv(Some("Patient"), "5")]);
    }

    #[test]
    fn quantity_values() {
        let p = parse(
            "Observation",
            &["value-quantity=ge5.4|http://unitsofmeasure.org|mg,lt3||mg,7"],
        )
        .unwrap();
        let Criterion::Param(ParamCriterion {
            test: Test::Quantity(q),
            ..
        }) = &p.criteria[0]
        else {
            panic!()
        };
        assert_eq!(q[0].prefix, Prefix::Ge);
        assert_eq!(q[0].system.as_deref(), Some("http://unitsofmeasure.org"));
        assert_eq!(q[1].system, None);
        assert_eq!(q[1].code.as_deref(), Some("mg"));
        assert_eq!(q[2].code, None);
    }
}

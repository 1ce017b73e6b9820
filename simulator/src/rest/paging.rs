//! `_count` and `_offset` paging, and the `self`/`next`/`previous` links of a Bundle.

use serde_json::{Value, json};

use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

use crate::outcome::FhirError;

/// Page size when the client does not ask for one.
pub(crate) const DEFAULT_COUNT: usize = 50;
/// The largest page this server returns; a larger `_count` is reduced to it.
pub(crate) const MAX_COUNT: usize = 1000;

/// A window over a result list.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Page {
    /// Entries to skip.
    pub(crate) offset: usize,
    /// Entries to return.
    pub(crate) count: usize,
}

impl Page {
    /// The page asked for by `_count` and `_offset` (defaults: 50 and 0; `_count` capped at 1000).
    pub(crate) fn from_params(
        count: Option<&str>,
        offset: Option<&str>,
    ) -> Result<Self, FhirError> {
        let number = |name: &str, v: Option<&str>, default: usize| match v {
            None => Ok(default),
            Some(v) => v.parse::<usize>().map_err(|_| {
                FhirError::bad_request(format!("{name}={v:?} is not a whole number of 0 or more"))
                    .at(name.to_string())
            }),
        };
        Ok(Self {
            count: number("_count", count, DEFAULT_COUNT)?.min(MAX_COUNT),
            offset: number("_offset", offset, 0)?,
        })
    }

    /// The slice of `items` this page covers.
    pub(crate) fn slice<'a, T>(&self, items: &'a [T]) -> &'a [T] {
        let start = self.offset.min(items.len());
        let end = start.saturating_add(self.count).min(items.len());
        &items[start..end]
    }

    /// `self`, `next` (when more follow) and `previous` (when not on the first page) links.
    /// `url` is the request URL with its canonical parameters, without `_count`/`_offset`.
    pub(crate) fn links(&self, url: &str, total: usize) -> Value {
        let join = if url.contains('?') { '&' } else { '?' };
        let link = |relation: &str, offset: usize| json!({"relation": relation, "url": format!("{url}{join}_count={}&_offset={offset}", self.count)});
        let mut links = vec![link("self", self.offset)];
        if self.count > 0 && self.offset + self.count < total {
            links.push(link("next", self.offset + self.count));
        }
        if self.offset > 0 {
            links.push(link("previous", self.offset.saturating_sub(self.count)));
        }
        Value::Array(links)
    }
}

/// Parses a `_since` instant, or explains what is expected.
pub(crate) fn since(value: Option<&str>) -> Result<Option<OffsetDateTime>, FhirError> {
    value
        .map(|s| {
            OffsetDateTime::parse(s, &Rfc3339).map_err(|_| {
                FhirError::bad_request(format!(
                    "_since={s:?} is not an instant such as 2024-01-31T12:00:00Z"
                ))
                .at("_since")
            })
        })
        .transpose()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pages_and_links() {
        let p = Page::from_params(Some("10"), Some("10")).unwrap_or(Page {
            offset: 0,
            count: 0,
        });
        let items: Vec<u32> = (0..25).collect();
        assert_eq!(p.slice(&items), &items[10..20]);
        let links = p.links("http://x/fhir/Patient?name=a", 25);
        assert_eq!(links[1]["relation"], "next");
        assert_eq!(
            links[1]["url"],
            "http://x/fhir/Patient?name=a&_count=10&_offset=20"
        );
        assert_eq!(
            links[2]["url"],
            "http://x/fhir/Patient?name=a&_count=10&_offset=0"
        );
        assert_eq!(
            Page::from_params(Some("5000"), None).map(|p| p.count),
            Ok(MAX_COUNT)
        );
        assert_eq!(
            Page::from_params(Some("-1"), None).map_err(|e| e.status),
            Err(400)
        );
        let last = Page {
            offset: 20,
            count: 10,
        };
        assert_eq!(last.slice(&items).len(), 5);
        assert_eq!(
            last.links("http://x/fhir/Patient", 25)
                .as_array()
                .map(Vec::len),
            Some(2)
        );
    }
}

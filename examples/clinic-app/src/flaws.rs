//! The mistakes from the field the app can reproduce, each switched on alone.

use std::collections::BTreeSet;
use std::fmt;
use std::str::FromStr;

/// One switchable mistake.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Flaw {
    /// The API skips the patient-id authorization and serves any id.
    CrossPatientApi,
    /// A live FHIR call refused with the user's token is retried with the backend token.
    ServiceAccountFallback,
    /// The backend asks for (and is registered with) `system/*.read`.
    BroadSystemScope,
    /// The login asks for `patient/*.read` / `user/*.read` instead of three types.
    RequestsUnusedScopes,
    /// The granted `scope` of the token response is ignored: everything asked is assumed.
    IgnoresDownscopedGrant,
    /// A refresh asks for the requested scopes plus Condition.
    WidensOnRefresh,
}

/// Every flaw, in a fixed order.
pub const ALL_FLAWS: &[Flaw] = &[
    Flaw::CrossPatientApi,
    Flaw::ServiceAccountFallback,
    Flaw::BroadSystemScope,
    Flaw::RequestsUnusedScopes,
    Flaw::IgnoresDownscopedGrant,
    Flaw::WidensOnRefresh,
];

impl Flaw {
    /// The flaw's name as written in `--flaws` and config (`cross-patient-api`, …).
    pub fn as_str(self) -> &'static str {
        match self {
            Flaw::CrossPatientApi => "cross-patient-api",
            Flaw::ServiceAccountFallback => "service-account-fallback",
            Flaw::BroadSystemScope => "broad-system-scope",
            Flaw::RequestsUnusedScopes => "requests-unused-scopes",
            Flaw::IgnoresDownscopedGrant => "ignores-downscoped-grant",
            Flaw::WidensOnRefresh => "widens-on-refresh",
        }
    }
}

impl fmt::Display for Flaw {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A name that is not a flaw.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown flaw {0:?}: use one of {list}", list = ALL_FLAWS.iter().map(|f| f.as_str()).collect::<Vec<_>>().join(", "))]
pub struct UnknownFlaw(pub String);

impl FromStr for Flaw {
    type Err = UnknownFlaw;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        ALL_FLAWS
            .iter()
            .copied()
            .find(|f| f.as_str() == s.trim())
            .ok_or_else(|| UnknownFlaw(s.trim().to_string()))
    }
}

/// A set of flaws switched on (empty: the correct app).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Flaws(BTreeSet<Flaw>);

impl Flaws {
    /// No flaw: the correct app.
    pub fn none() -> Self {
        Self::default()
    }

    /// Exactly one flaw.
    pub fn only(flaw: Flaw) -> Self {
        Self(BTreeSet::from([flaw]))
    }

    /// Whether `flaw` is switched on.
    pub fn has(&self, flaw: Flaw) -> bool {
        self.0.contains(&flaw)
    }

    /// Switches `flaw` on.
    pub fn insert(&mut self, flaw: Flaw) {
        self.0.insert(flaw);
    }

    /// Whether no flaw is on.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// The flaws switched on, in order.
    pub fn iter(&self) -> impl Iterator<Item = Flaw> + '_ {
        self.0.iter().copied()
    }
}

impl fmt::Display for Flaws {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let names: Vec<&str> = self.iter().map(Flaw::as_str).collect();
        f.write_str(&names.join(","))
    }
}

impl FromStr for Flaws {
    type Err = UnknownFlaw;

    /// `""` is no flaw; otherwise comma-separated names.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let mut flaws = Flaws::none();
        for part in s.split(',').filter(|p| !p.trim().is_empty()) {
            flaws.insert(part.parse()?);
        }
        Ok(flaws)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip() {
        for flaw in ALL_FLAWS {
            assert_eq!(flaw.as_str().parse::<Flaw>(), Ok(*flaw));
        }
        assert!("bogus".parse::<Flaw>().is_err());
    }

    #[test]
    fn sets_parse_from_comma_lists() {
        assert_eq!("".parse::<Flaws>(), Ok(Flaws::none()));
        assert_eq!(" ".parse::<Flaws>(), Ok(Flaws::none()));
        let set: Flaws = "cross-patient-api, widens-on-refresh"
            .parse()
            .expect("valid");
        assert!(set.has(Flaw::CrossPatientApi) && set.has(Flaw::WidensOnRefresh));
        assert!(!set.has(Flaw::BroadSystemScope));
        assert_eq!(set.to_string(), "cross-patient-api,widens-on-refresh");
        let error = "cross-patient-api,nope"
            .parse::<Flaws>()
            .expect_err("unknown");
        assert!(error.to_string().contains("nope"));
    }
}

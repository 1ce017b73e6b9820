//! Calendar arithmetic for synthetic timelines: days relative to the reference date.
//!
//! The generator never reads the clock: every date is computed from the reference date (the
//! "generation date" argument), so output does not change with the calendar.

use time::{Date, Month};

/// The default reference date: output is identical whenever it is generated.
pub const DEFAULT_REFERENCE_DATE: Date = time::macros::date!(2026 - 01 - 01);

/// Days from `from` to `to` (negative when `to` is earlier).
pub fn days_between(from: Date, to: Date) -> i64 {
    i64::from(to.to_julian_day() - from.to_julian_day())
}

/// `date` moved by `days` (clamped to the calendar `time` supports).
pub fn add_days(date: Date, days: i64) -> Date {
    let julian = i64::from(date.to_julian_day()) + days;
    let clamped = julian.clamp(
        i64::from(Date::MIN.to_julian_day()),
        i64::from(Date::MAX.to_julian_day()),
    );
    Date::from_julian_day(clamped as i32).unwrap_or(date)
}

/// Whole years of age on `on` for someone born on `birth`.
pub fn age_on(birth: Date, on: Date) -> i64 {
    let mut years = i64::from(on.year() - birth.year());
    if (on.month() as u8, on.day()) < (birth.month() as u8, birth.day()) {
        years -= 1;
    }
    years
}

/// A FHIR `date` (`YYYY-MM-DD`).
pub fn fhir_date(date: Date) -> String {
    format!(
        "{:04}-{:02}-{:02}",
        date.year(),
        date.month() as u8,
        date.day()
    )
}

/// A FHIR `dateTime`/`instant` in UTC at `minute_of_day` minutes after midnight.
pub fn fhir_instant(date: Date, minute_of_day: u32) -> String {
    let minute_of_day = minute_of_day.min(24 * 60 - 1);
    format!(
        "{}T{:02}:{:02}:00Z",
        fhir_date(date),
        minute_of_day / 60,
        minute_of_day % 60
    )
}

/// True when `date` falls in the autumn vaccination season (September to December).
pub fn in_flu_season(date: Date) -> bool {
    matches!(
        date.month(),
        Month::September | Month::October | Month::November | Month::December
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::date;

    #[test]
    fn day_arithmetic_round_trips() {
        let d = date!(2020 - 02 - 28);
        assert_eq!(fhir_date(add_days(d, 1)), "2020-02-29");
        assert_eq!(days_between(d, add_days(d, 400)), 400);
    }

    #[test]
    fn age_counts_whole_years() {
        assert_eq!(age_on(date!(2000 - 06 - 15), date!(2020 - 06 - 14)), 19);
        assert_eq!(age_on(date!(2000 - 06 - 15), date!(2020 - 06 - 15)), 20);
    }

    #[test]
    fn instants_are_fhir_shaped() {
        assert_eq!(
            fhir_instant(date!(2021 - 03 - 04), 9 * 60 + 5),
            "2021-03-04T09:05:00Z"
        );
    }
}

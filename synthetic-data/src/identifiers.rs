//! Identifying values that are unique across a population and can never be real.
//!
//! Each value is a bijection of the patient index (an affine map modulo the size of its value
//! space, with a multiplier coprime to that size), offset by the seed. Two patients of one seed
//! therefore never share an MRN, SSN-shaped value, phone number or email address, without any
//! population-wide bookkeeping: that is what lets the harness treat them as canaries.
//!
//! The value spaces are chosen so that no value can belong to a real person:
//! - SSN-shaped values use area numbers 900–999, which the Social Security Administration never
//!   issues, and group numbers 01–49, which the IRS does not use for ITINs (those use 50–99);
//! - phone numbers use the area codes 370–379 and 960–969, which the North American Numbering
//!   Plan holds in reserve and has never assigned;
//! - email addresses are under `example.com`, reserved for documentation by RFC 2606.

/// The number of distinct SSN-shaped values: 100 areas × 49 groups × 9,999 serials.
const SSN_SPACE: u64 = 100 * 49 * 9_999;
/// The number of distinct MRNs (nine digits).
const MRN_SPACE: u64 = 1_000_000_000;
/// The number of distinct phone numbers: 20 reserved area codes × 800 exchanges × 10,000 lines.
const PHONE_SPACE: u64 = 20 * 800 * 10_000;

/// Multipliers of the bijections: powers of 3, 13 and 17, coprime to their spaces.
const MRN_MULTIPLIER: u64 = 387_420_489; // 3^18
const SSN_MULTIPLIER: u64 = 62_748_517; // 13^7
const PHONE_MULTIPLIER: u64 = 129_140_163; // 3^17
const EMAIL_MULTIPLIER: u64 = 410_338_673; // 17^7

/// The largest population whose identifiers are all unique (the smallest value space).
pub const MAX_POPULATION: u64 = SSN_SPACE;

/// A bijection of `0..space` (for `index < space`): `(index * multiplier + offset) mod space`.
/// `multiplier` must be coprime to `space` (a test checks); large multipliers make neighbouring
/// patients' values look unrelated.
fn permute(index: u64, space: u64, multiplier: u64, seed: u64, salt: u64) -> u64 {
    let offset = mix(seed ^ salt.wrapping_mul(0x9E37_79B9_7F4A_7C15)) % space;
    ((u128::from(index % space) * u128::from(multiplier) + u128::from(offset)) % u128::from(space))
        as u64
}

/// The SplitMix64 finalizer: spreads seed and salt over all 64 bits.
fn mix(mut z: u64) -> u64 {
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// The medical record number of patient `index`: `"MRN"` and nine digits.
pub fn mrn(seed: u64, index: u64) -> String {
    format!(
        "MRN{:09}",
        permute(index, MRN_SPACE, MRN_MULTIPLIER, seed, 1)
    )
}

/// An SSN-shaped value from a range never issued (`9AA-GG-SSSS`, group 01–49).
pub fn ssn(seed: u64, index: u64) -> String {
    let k = permute(index, SSN_SPACE, SSN_MULTIPLIER, seed, 2);
    let area = 900 + k / (49 * 9_999);
    let group = 1 + (k / 9_999) % 49;
    let serial = 1 + k % 9_999;
    format!("{area}-{group:02}-{serial:04}")
}

/// A phone number in a reserved, never-assigned area code, as `NPA-NXX-XXXX`.
pub fn phone(seed: u64, index: u64) -> String {
    const AREA_CODES: [u16; 20] = [
        370, 371, 372, 373, 374, 375, 376, 377, 378, 379, 960, 961, 962, 963, 964, 965, 966, 967,
        968, 969,
    ];
    let k = permute(index, PHONE_SPACE, PHONE_MULTIPLIER, seed, 3);
    let area = AREA_CODES[(k / 8_000_000) as usize];
    let exchange = 200 + (k / 10_000) % 800;
    let line = k % 10_000;
    format!("{area}-{exchange:03}-{line:04}")
}

/// A unique email address under the reserved `example.com` domain.
pub fn email(seed: u64, index: u64, given: &str, family: &str) -> String {
    let tag = permute(index, MRN_SPACE, EMAIL_MULTIPLIER, seed, 4);
    format!(
        "{}.{}.{tag:09}@example.com",
        email_local(given),
        email_local(family)
    )
}

fn email_local(name: &str) -> String {
    name.chars()
        .filter(char::is_ascii_alphanumeric)
        .map(|c| c.to_ascii_lowercase())
        .collect()
}

/// A ten-digit NPI-shaped number whose last digit is the Luhn check digit the NPI standard uses
/// (computed over the prefix `80840` and the first nine digits).
pub fn npi(first_nine: u64) -> String {
    let body = format!("{:09}", first_nine % 1_000_000_000);
    let with_prefix = format!("80840{body}");
    let sum: u32 = with_prefix
        .bytes()
        .rev()
        .enumerate()
        .map(|(i, b)| {
            let d = u32::from(b - b'0');
            if i % 2 == 0 {
                let doubled = d * 2;
                doubled / 10 + doubled % 10
            } else {
                d
            }
        })
        .sum();
    let check = (10 - sum % 10) % 10;
    format!("{body}{check}")
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashSet;

    #[test]
    fn multipliers_are_coprime_to_their_spaces() {
        fn gcd(a: u64, b: u64) -> u64 {
            if b == 0 { a } else { gcd(b, a % b) }
        }
        assert_eq!(gcd(MRN_MULTIPLIER, MRN_SPACE), 1);
        assert_eq!(gcd(SSN_MULTIPLIER, SSN_SPACE), 1);
        assert_eq!(gcd(PHONE_MULTIPLIER, PHONE_SPACE), 1);
        assert_eq!(gcd(EMAIL_MULTIPLIER, MRN_SPACE), 1);
    }

    #[test]
    fn identifiers_are_unique_in_a_large_sample() {
        let mut seen = HashSet::new();
        for i in 0..200_000 {
            assert!(seen.insert(ssn(9, i)));
            assert!(seen.insert(mrn(9, i)));
            assert!(seen.insert(phone(9, i)));
            assert!(seen.insert(email(9, i, "A", "B")));
        }
    }

    #[test]
    fn ssn_shape_is_in_the_never_issued_range() {
        for i in 0..10_000 {
            let s = ssn(3, i);
            let parts: Vec<&str> = s.split('-').collect();
            assert_eq!(parts.len(), 3);
            assert!(parts[0].starts_with('9'));
            let group: u32 = parts[1].parse().unwrap_or(0);
            assert!((1..=49).contains(&group), "{s}");
            assert_ne!(parts[2], "0000");
        }
    }

    #[test]
    fn phone_uses_reserved_area_codes() {
        for i in 0..10_000 {
            let p = phone(5, i);
            assert!(p.starts_with("37") || p.starts_with("96"), "{p}");
            assert_eq!(p.len(), 12);
        }
    }

    #[test]
    fn npi_check_digit_matches_a_known_example() {
        // The CMS NPI check-digit example: 123456789 has check digit 3.
        assert_eq!(npi(123_456_789), "1234567893");
    }

    #[test]
    fn email_local_part_is_plain_ascii() {
        assert_eq!(
            email(1, 0, "Zoë", "O'Kon")
                .split('.')
                .take(2)
                .collect::<Vec<_>>(),
            ["zo", "okon"]
        );
    }
}

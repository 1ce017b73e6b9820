//! Given names by sex, so a synthetic patient's name fits the sex on the record.
//!
//! `fake` supplies family names, streets and cities, but its English first names are not split
//! by sex; these short lists of common US given names are.

use crate::clinical::Sex;
use crate::rng::Dice;

const FEMALE: [&str; 40] = [
    "Mary",
    "Patricia",
    "Jennifer",
    "Linda",
    "Elizabeth",
    "Barbara",
    "Susan",
    "Jessica",
    "Sarah",
    "Karen",
    "Lisa",
    "Nancy",
    "Betty",
    "Sandra",
    "Margaret",
    "Ashley",
    "Kimberly",
    "Emily",
    "Donna",
    "Michelle",
    "Carol",
    "Amanda",
    "Melissa",
    "Deborah",
    "Stephanie",
    "Maria",
    "Sophia",
    "Olivia",
    "Emma",
    "Ava",
    "Isabella",
    "Mia",
    "Camila",
    "Lucia",
    "Aaliyah",
    "Mei",
    "Priya",
    "Fatima",
    "Keisha",
    "Rosa",
];

const MALE: [&str; 40] = [
    "James",
    "Robert",
    "John",
    "Michael",
    "David",
    "William",
    "Richard",
    "Joseph",
    "Thomas",
    "Christopher",
    "Charles",
    "Daniel",
    "Matthew",
    "Anthony",
    "Mark",
    "Donald",
    "Steven",
    "Andrew",
    "Paul",
    "Joshua",
    "Kenneth",
    "Kevin",
    "Brian",
    "George",
    "Timothy",
    "Ronald",
    "Jason",
    "Edward",
    "Jeffrey",
    "Ryan",
    "Jose",
    "Luis",
    "Carlos",
    "Wei",
    "Raj",
    "Ahmed",
    "Malik",
    "Hiroshi",
    "Liam",
    "Noah",
];

/// A given name for someone of `sex`.
pub(crate) fn given_name(dice: &mut Dice, sex: Sex) -> String {
    let list: &[&str] = match sex {
        Sex::Female => &FEMALE,
        Sex::Male => &MALE,
    };
    (*dice.pick(list)).to_string()
}

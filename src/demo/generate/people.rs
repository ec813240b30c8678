//! People: patients and their relatives (families sharing a phone), their
//! phones and e-mails, and who calls when.

use rusqlite::params;

use super::{Family, Generator, Person, PhoneText};
use crate::crm::{Millis, Phone};
use crate::demo::calendar::{DAY, HOUR, SECOND, iso_date};
use crate::demo::names::{
    EMAIL_DOMAINS_RU, EMAIL_DOMAINS_UA, Given, PERSON_NOTES, RU_FEMALE, RU_LANDLINE_CODES, RU_MALE, RU_SURNAMES,
    UA_FEMALE, UA_LANDLINE_CODES, UA_MALE, UA_MOBILE_CODES, UA_SURNAMES, feminine,
};
use crate::demo::rng::{Id, Rng};
use crate::store::{Result, search};

/// Share of strangers who start a family sharing a phone (about 8% of all
/// people end up in one).
const FAMILY_START: f64 = 0.035;

const YEAR: Millis = 365 * DAY + DAY / 4;

impl Generator<'_> {
    pub(super) fn people(&mut self, n: usize, start: Millis) -> Result<()> {
        let now = self.now;
        // A third were imported from the clinic's previous system before the
        // period; the rest came one by one.
        let import_at = start - 20 * DAY;
        let mut created: Vec<Millis> = (0..n)
            .map(|_| {
                if self.rng.chance(0.3) {
                    import_at + self.rng.range(0, HOUR)
                } else {
                    self.rng.range(start, now - HOUR)
                }
            })
            .collect();
        created.sort_unstable();
        let ru_feminine: Vec<String> = RU_SURNAMES.iter().map(|s| feminine(s)).collect();
        let ua_feminine: Vec<String> = UA_SURNAMES.iter().map(|s| feminine(s)).collect();
        self.known_phones.reserve(n * 3 / 2);
        self.people.reserve(n);

        let mut family: Option<Family> = None;
        let mut imported = 0;
        for (i, &at) in created.iter().enumerate() {
            let mut phones: [(u64, &'static str); 4] = [(0, ""); 4];
            let mut n_phones = 0;
            let mut push = |phone: u64, kind: &'static str| {
                phones[n_phones] = (phone, kind);
                n_phones += 1;
            };
            let (ua, female, age, surname, first, father);
            if let Some(f) = family.as_mut() {
                ua = f.ua;
                surname = f.surname;
                let males = if ua { UA_MALE.len() } else { RU_MALE.len() };
                let females = if ua { UA_FEMALE.len() } else { RU_FEMALE.len() };
                if !f.spouse_done && self.rng.chance(0.6) {
                    f.spouse_done = true;
                    female = !f.head_female;
                    age = (f.head_age + self.rng.range(-6, 7)).max(18);
                    // A husband is the children's father.
                    first = if female { self.rng.index(females) } else { f.father };
                    father = self.rng.index(males);
                } else {
                    female = self.rng.chance(0.5);
                    age = self.rng.range(1, (f.head_age - 19).clamp(2, 40));
                    first = self.rng.index(if female { females } else { males });
                    father = f.father;
                }
                if age >= 12 && self.rng.chance(0.9) {
                    push(self.new_mobile(ua), "mobile");
                }
                push(f.shared, f.shared_kind);
                f.remaining -= 1;
                if f.remaining == 0 {
                    family = None;
                }
            } else {
                ua = self.rng.chance(0.3);
                female = self.rng.chance(0.56);
                age = sample_age(&mut self.rng);
                surname = self.rng.index(if ua { UA_SURNAMES.len() } else { RU_SURNAMES.len() });
                let (males, females) = if ua { (UA_MALE, UA_FEMALE) } else { (RU_MALE, RU_FEMALE) };
                first = self.rng.index(if female { females.len() } else { males.len() });
                father = self.rng.index(males.len());
                let own = self.new_mobile(ua);
                // Young children are reached through a parent's phone.
                push(own, if age >= 10 { "mobile" } else { "relative" });
                let head = age >= 22 && i + 1 < n && self.rng.chance(FAMILY_START);
                let mut home_shared = false;
                if head {
                    let (shared, shared_kind) = if self.rng.chance(0.6) {
                        (own, "relative")
                    } else {
                        home_shared = true;
                        let home = self.new_landline(ua);
                        push(home, "home");
                        (home, "home")
                    };
                    family = Some(Family {
                        ua,
                        surname,
                        head_female: female,
                        head_age: age,
                        father: if female { self.rng.index(males.len()) } else { first },
                        shared,
                        shared_kind,
                        spouse_done: false,
                        remaining: (1 + self.rng.index(3)).min(n - i - 1),
                    });
                }
                if !home_shared && self.rng.chance(0.18) {
                    let kind = if self.rng.chance(0.6) { "home" } else { "work" };
                    push(self.new_landline(ua), kind);
                }
                if self.rng.chance(0.04) {
                    push(self.new_landline(ua), "work");
                }
            }

            let (males, females, surnames, feminines): (&[Given], &[&str], &[&str], &[String]) = if ua {
                (UA_MALE, UA_FEMALE, UA_SURNAMES, &ua_feminine)
            } else {
                (RU_MALE, RU_FEMALE, RU_SURNAMES, &ru_feminine)
            };
            let last = if female { feminines[surname].as_str() } else { surnames[surname] };
            let first_name = if female { females[first] } else { males[first].0 };
            let middle = if female { males[father].2 } else { males[father].1 };

            let person_id = self.rng.id(at);
            let birth = (!self.rng.chance(0.07)).then(|| iso_date(now - age * YEAR - self.rng.range(0, YEAR)));
            let email = (age >= 18 && self.rng.chance(0.12)).then(|| self.email(first_name, last, ua));
            let note = if self.rng.chance(0.03) { *self.rng.pick(PERSON_NOTES) } else { "" };
            let external_id = (at < start).then(|| {
                imported += 1;
                format!("MIS-{imported:06}")
            });
            self.st.person.execute(params![
                person_id,
                last,
                first_name,
                middle,
                birth,
                if female { "f" } else { "m" },
                email,
                note,
                external_id,
                at,
                at
            ])?;
            let rowid = self.conn.last_insert_rowid();

            let mut person = Person { id: person_id, phones: [0; 4], n_phones };
            let mut indexed: Vec<Phone> = Vec::with_capacity(n_phones);
            for (k, &(phone, kind)) in phones[..n_phones].iter().enumerate() {
                person.phones[k] = phone;
                let text = PhoneText::new(phone);
                self.st.phone.execute(params![self.rng.id(at), person_id, text, kind, at])?;
                indexed.push(Phone::from_e164_unchecked(text.as_str().to_owned()));
            }
            self.st.fts.execute(params![
                rowid,
                search::names_key(last, first_name, middle),
                search::phones_key(&indexed)
            ])?;
            self.people.push(person);
        }
        self.created = created;
        self.summary.people = n;
        Ok(())
    }

    fn new_mobile(&mut self, ua: bool) -> u64 {
        loop {
            let phone = if ua {
                380_000_000_000 + self.rng.pick(UA_MOBILE_CODES) * 10_000_000 + self.rng.below(10_000_000)
            } else {
                79_000_000_000 + self.rng.below(1_000_000_000)
            };
            if self.known_phones.insert(phone) {
                return phone;
            }
        }
    }

    fn new_landline(&mut self, ua: bool) -> u64 {
        loop {
            let phone = if ua {
                380_000_000_000 + self.rng.pick(UA_LANDLINE_CODES) * 10_000_000 + self.rng.below(10_000_000)
            } else {
                70_000_000_000 + self.rng.pick(RU_LANDLINE_CODES) * 10_000_000 + self.rng.below(10_000_000)
            };
            if self.known_phones.insert(phone) {
                return phone;
            }
        }
    }

    fn email(&mut self, first: &str, last: &str, ua: bool) -> String {
        let domain = self.rng.pick(if ua { EMAIL_DOMAINS_UA } else { EMAIL_DOMAINS_RU });
        let first = search::translit(first);
        let last = search::translit(last);
        match self.rng.below(3) {
            0 => format!("{first}.{last}@{domain}"),
            1 => format!("{last}{}@{domain}", self.rng.range(1, 100)),
            _ => format!("{}.{last}{}@{domain}", first.chars().next().unwrap_or('x'), self.rng.range(60, 100)),
        }
    }

    /// Someone who is in the base at `t`: often a new patient, sometimes one
    /// of the regulars, usually anyone.
    pub(super) fn pick_person(&mut self, t: Millis) -> Option<usize> {
        let known = self.created.partition_point(|&c| c <= t);
        if known == 0 {
            return None;
        }
        let roll = self.rng.unit();
        if roll < 0.25 {
            let newer = self.created.partition_point(|&c| c <= t - 30 * DAY);
            if newer < known {
                return Some(self.rng.range(newer as i64, known as i64) as usize);
            }
        } else if roll < 0.4 && known >= 20 {
            // Every twentieth person calls a lot.
            return Some(self.rng.index(known / 20) * 20);
        }
        Some(self.rng.index(known))
    }

    pub(super) fn phone_of(&mut self, person: usize) -> u64 {
        let p = self.people[person];
        if p.n_phones == 1 || self.rng.chance(0.85) { p.phones[0] } else { p.phones[self.rng.index(p.n_phones)] }
    }

    pub(super) fn operator(&mut self) -> Id {
        self.r.operators[self.rng.weighted(&[45, 32, 23])]
    }

    /// How long a conversation lasts.
    pub(super) fn talk(&mut self) -> Millis {
        self.rng.range(25, 90) * self.rng.range(1, 5) * SECOND
    }
}

/// An age in years: children, and adults mostly of working age.
fn sample_age(rng: &mut Rng) -> i64 {
    match rng.weighted(&[15, 20, 35, 25, 15, 5]) {
        0 => rng.range(1, 18),
        1 => rng.range(18, 30),
        2 => rng.range(30, 45),
        3 => rng.range(45, 60),
        4 => rng.range(60, 75),
        _ => rng.range(75, 91),
    }
}

//! Calls: two years of them in time order, incoming and outgoing, answered
//! and missed, and what each answered call leads to.

use std::fmt::Write as _;

use rusqlite::params;

use super::{CallRow, Callback, Generator, Missed, PhoneText};
use crate::crm::Millis;
use crate::demo::calendar::{MINUTE, Rhythm, SECOND};
use crate::demo::names::{RU_LANDLINE_CODES, UA_MOBILE_CODES};
use crate::store::Result;

impl Generator<'_> {
    pub(super) fn history(&mut self, calls: usize, start: Millis, progress: &mut dyn FnMut(&str)) -> Result<()> {
        let rhythm = Rhythm::new(start, self.now);
        let mut times: Vec<Millis> = (0..calls).filter_map(|_| rhythm.sample(&mut self.rng)).collect();
        times.sort_unstable();
        // Web forms, walk-ins and messages: inquiries without a call.
        let mut contacts: Vec<Millis> = (0..calls / 30).filter_map(|_| rhythm.sample(&mut self.rng)).collect();
        contacts.sort_unstable();
        let pool = (calls / 20).max(10);
        while self.unknown.len() < pool {
            let ua = self.rng.chance(0.25);
            let phone = if self.rng.chance(0.1) {
                70_000_000_000 + self.rng.pick(RU_LANDLINE_CODES) * 10_000_000 + self.rng.below(10_000_000)
            } else if ua {
                380_000_000_000 + self.rng.pick(UA_MOBILE_CODES) * 10_000_000 + self.rng.below(10_000_000)
            } else {
                79_000_000_000 + self.rng.below(1_000_000_000)
            };
            if !self.known_phones.contains(&phone) {
                self.unknown.push(phone);
            }
        }

        let step = (times.len() / 10).max(1);
        let (mut i, mut j) = (0, 0);
        while i < times.len() || j < contacts.len() {
            if j < contacts.len() && (i == times.len() || contacts[j] < times[i]) {
                self.contact(contacts[j])?;
                j += 1;
            } else {
                self.call(times[i])?;
                i += 1;
                if i % step == 0 {
                    progress(&format!("calls: {i} of {}", times.len()));
                }
            }
        }
        // Missed calls nobody has called back yet.
        while let Some(missed) = self.pending.pop_front() {
            self.settle_missed(missed, Callback::NotYet)?;
        }
        Ok(())
    }

    fn call(&mut self, t: Millis) -> Result<()> {
        if self.rng.chance(0.25) {
            return self.outgoing(t);
        }
        let person = if self.rng.chance(0.85) { self.pick_person(t) } else { None };
        let peer = match person {
            Some(p) => self.phone_of(p),
            None => *self.rng.pick(&self.unknown),
        };
        let number = self.rng.weighted(&self.r.number_weights);
        let mut call = CallRow {
            id: self.rng.id(t),
            direction: "in",
            peer,
            did: Some(number),
            person,
            operator: None,
            started: t,
            answered: None,
            ended: t,
            result: "answered",
            inquiry: None,
        };
        match self.rng.weighted(&[855, 120, 15, 10]) {
            0 => {
                let operator = self.operator();
                let answered = t + self.rng.range(3, 25) * SECOND;
                call.operator = Some(operator);
                call.answered = Some(answered);
                call.ended = answered + self.talk();
                let p = if person.is_some() { 0.36 } else { 0.5 };
                if self.rng.chance(p) {
                    call.inquiry = Some(self.rng.id(call.ended.min(self.now)));
                }
                self.insert_call(&call)?;
                if let Some(inquiry) = call.inquiry {
                    self.answered_inquiry(inquiry, &call, number, operator)?;
                }
            }
            1 => {
                call.result = "missed";
                call.ended = t + self.rng.range(15, 45) * SECOND;
                let created = call.ended.min(self.now);
                if self.rng.chance(0.9) {
                    call.inquiry = Some(self.rng.id(created));
                }
                self.insert_call(&call)?;
                if let Some(inquiry) = call.inquiry {
                    self.pending.push_back(Missed {
                        inquiry,
                        call: call.id,
                        person,
                        peer,
                        number,
                        created,
                        attempts: 0,
                        first_attempt: None,
                        operator: None,
                    });
                }
            }
            k => {
                call.result = if k == 2 { "busy" } else { "failed" };
                call.ended = t + self.rng.range(0, 3) * SECOND;
                self.insert_call(&call)?;
            }
        }
        Ok(())
    }

    /// An operator's call: the oldest missed call waiting for a callback, or
    /// a patient (reminders, results, follow-ups).
    fn outgoing(&mut self, t: Millis) -> Result<()> {
        let operator = self.operator();
        let mut call = CallRow {
            id: self.rng.id(t),
            direction: "out",
            peer: 0,
            did: None,
            person: None,
            operator: Some(operator),
            started: t,
            answered: None,
            ended: t,
            result: "answered",
            inquiry: None,
        };
        match self.rng.weighted(&[70, 20, 7, 3]) {
            0 => {
                let answered = t + self.rng.range(5, 25) * SECOND;
                call.answered = Some(answered);
                call.ended = answered + self.talk();
            }
            1 => {
                call.result = "missed";
                call.ended = t + self.rng.range(30, 60) * SECOND;
            }
            k => {
                call.result = if k == 2 { "busy" } else { "failed" };
                call.ended = t + self.rng.range(1, 4) * SECOND;
            }
        }
        if self.pending.front().is_some_and(|m| m.created + MINUTE <= t)
            && let Some(mut missed) = self.pending.pop_front()
        {
            call.peer = missed.peer;
            call.person = missed.person;
            call.inquiry = Some(missed.inquiry);
            self.insert_call(&call)?;
            missed.attempts += 1;
            missed.first_attempt.get_or_insert(t);
            missed.operator = Some(operator);
            if call.answered.is_some() {
                self.settle_missed(missed, Callback::Reached(call.ended.min(self.now)))?;
            } else if missed.attempts >= 3 {
                self.settle_missed(missed, Callback::GaveUp(call.ended.min(self.now)))?;
            } else {
                self.pending.push_back(missed);
            }
            return Ok(());
        }
        call.person = self.pick_person(t);
        call.peer = match call.person {
            Some(p) => self.phone_of(p),
            None => *self.rng.pick(&self.unknown),
        };
        self.insert_call(&call)
    }

    fn insert_call(&mut self, c: &CallRow) -> Result<()> {
        let ended = c.ended.min(self.now).max(c.started);
        let answered = c.answered.map(|a| a.min(ended));
        self.sip_call_id.clear();
        let _ = write!(self.sip_call_id, "{:016x}@pbx.zdorovie.local", self.rng.next_u64());
        self.st.call.execute(params![
            c.id,
            c.direction,
            PhoneText::new(c.peer),
            c.did.map(|n| self.r.numbers[n].did.as_str()),
            c.person.map(|p| self.people[p].id),
            c.operator,
            c.started,
            answered,
            ended,
            c.result,
            c.inquiry,
            self.sip_call_id.as_str(),
            ended
        ])?;
        self.summary.calls += 1;
        Ok(())
    }
}

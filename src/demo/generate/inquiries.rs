//! Inquiries: from calls and from other channels (web forms, walk-ins), with
//! their follow-up tasks and how they settle.

use rusqlite::params;

use super::{CallRow, Callback, Generator, InquiryRow, Missed, PhoneText, TaskRow};
use crate::crm::{Millis, Phone};
use crate::demo::calendar::{DAY, HOUR, MINUTE};
use crate::demo::names::INQUIRY_NOTES;
use crate::demo::reference::{
    self, CHANNEL_OFFLINE, CHANNEL_REFERRAL, CHANNEL_SITE, DIAGNOSTICS, INQUIRY_RESULTS, PRIMARY, REASON_BOOKING,
    REASON_DOCUMENTS, REASON_PRICES, REASON_RESULTS, REASONS, RESULT_BOOKED, RESULT_CALLBACK, RESULT_CONSULTATION,
    RESULT_REFUSED, TASK_CALL_BACK, TASK_OTHER, TASK_SEND_RESULTS, TEMPLATE_CALL_BACK, TEMPLATE_DOCUMENTS,
    TEMPLATE_SEND_RESULTS,
};
use crate::demo::rng::{Id, Rng};
use crate::store::Result;

impl Generator<'_> {
    /// The channel of a dialled number, and its campaign (or, sometimes, one
    /// of the channel's campaigns the caller names).
    fn attribution(&mut self, number: usize) -> (usize, Option<usize>) {
        let channel = self.r.numbers[number].channel;
        let campaign = self.r.numbers[number].campaign.or_else(|| {
            let list = &self.channel_campaigns[channel];
            (!list.is_empty() && self.rng.chance(0.3)).then(|| list[self.rng.index(list.len())])
        });
        (channel, campaign)
    }

    fn result_for(&mut self, reason: usize, person: Option<usize>) -> usize {
        let result = self.rng.weighted(&REASONS[reason].2);
        match person {
            None if self.rng.chance(0.1) => 4,
            None if result == RESULT_BOOKED => RESULT_CONSULTATION,
            _ => result,
        }
    }

    fn note(&mut self) -> &'static str {
        if self.rng.chance(0.08) { INQUIRY_NOTES[self.rng.index(INQUIRY_NOTES.len())] } else { "" }
    }

    pub(super) fn answered_inquiry(&mut self, inquiry: Id, call: &CallRow, number: usize, operator: Id) -> Result<()> {
        let now = self.now;
        let created = call.ended.min(now);
        let reason = self.rng.weighted(&self.r.reason_weights);
        let closed = self.rng.chance(if now - created < 3 * DAY { 0.8 } else { 0.995 });
        let closed_at = closed.then(|| (created + self.rng.range(0, 10) * MINUTE).min(now));
        let result = closed.then(|| self.result_for(reason, call.person));
        let (channel, campaign) = self.attribution(number);
        let note = self.note();
        self.insert_inquiry(&InquiryRow {
            id: inquiry,
            person: call.person,
            phone: Some(call.peer),
            call: Some(call.id),
            channel,
            campaign,
            reason: Some(reason),
            source: "call",
            status: if closed { "closed" } else { "in_progress" },
            result,
            operator: Some(operator),
            note,
            created,
            first_response: call.answered.map(|a| a.min(created)),
            closed: closed_at,
        })?;
        match (result, closed_at) {
            (Some(result), Some(at)) => self.follow_up(inquiry, call.person, reason, result, at, operator),
            _ => self.call_back_task(inquiry, call.person, created, operator),
        }
    }

    /// Writes a missed call's inquiry and its "call back" task once it is
    /// known how calling back went.
    pub(super) fn settle_missed(&mut self, m: Missed, callback: Callback) -> Result<()> {
        let (channel, campaign) = self.attribution(m.number);
        let (status, reason, result, closed) = match callback {
            Callback::Reached(at) => {
                let reason = self.rng.weighted(&self.r.reason_weights);
                let closed = (at + self.rng.range(0, 5) * MINUTE).min(self.now);
                ("closed", Some(reason), Some(self.result_for(reason, m.person)), Some(closed))
            }
            Callback::GaveUp(at) => ("closed", None, Some(RESULT_REFUSED), Some(at)),
            Callback::NotYet if m.attempts > 0 => ("in_progress", None, None, None),
            Callback::NotYet => ("new", None, None, None),
        };
        let note = match callback {
            Callback::GaveUp(_) => "Не удалось дозвониться",
            _ => self.note(),
        };
        self.insert_inquiry(&InquiryRow {
            id: m.inquiry,
            person: m.person,
            phone: Some(m.peer),
            call: Some(m.call),
            channel,
            campaign,
            reason,
            source: "missed_call",
            status,
            result,
            operator: m.operator,
            note,
            created: m.created,
            first_response: m.first_attempt,
            closed,
        })?;

        let deadline = m.created + 15 * MINUTE;
        let responsible = match (closed, m.operator) {
            (Some(_), operator) => operator,
            (None, Some(operator)) => Some(operator),
            (None, None) if self.rng.chance(0.5) => None,
            (None, None) => Some(self.operator()),
        };
        let description =
            format!("Пропущенный звонок с {}", Phone::from_e164_unchecked(PhoneText::new(m.peer).as_str().to_owned()));
        self.insert_task(&TaskRow {
            task_type: TASK_CALL_BACK,
            template: Some(TEMPLATE_CALL_BACK),
            title: reference::TEMPLATES[TEMPLATE_CALL_BACK].1,
            description: &description,
            responsible,
            deadline,
            remind: Some(deadline - 5 * MINUTE),
            status: match (closed, m.attempts) {
                (Some(_), _) => "done",
                (None, 0) => "open",
                (None, _) => "in_progress",
            },
            person: m.person,
            inquiry: Some(m.inquiry),
            deal: None,
            created_by: None,
            created: m.created,
            completed: closed,
            updated: closed.or(m.first_attempt).unwrap_or(m.created),
        })?;
        if let (Some(reason), Some(result), Some(at), Some(operator)) = (reason, result, closed, m.operator) {
            self.follow_up(m.inquiry, m.person, reason, result, at, operator)?;
        }
        Ok(())
    }

    /// An inquiry from the web, a messenger or the reception desk.
    pub(super) fn contact(&mut self, t: Millis) -> Result<()> {
        let now = self.now;
        let (source, channel) = match self.rng.weighted(&[60, 30, 10]) {
            0 => ("web", [CHANNEL_SITE, 0, 3, 4][self.rng.weighted(&[50, 20, 15, 15])]),
            1 => ("walk_in", if self.rng.chance(0.6) { CHANNEL_OFFLINE } else { CHANNEL_REFERRAL }),
            _ => ("messenger", [3, 4, CHANNEL_SITE][self.rng.index(3)]),
        };
        let walk_in = source == "walk_in";
        let person = if walk_in || self.rng.chance(0.8) { self.pick_person(t) } else { None };
        let phone = match person {
            Some(p) => Some(self.phone_of(p)),
            None if walk_in => None,
            None => Some(*self.rng.pick(&self.unknown)),
        };
        // The reception desk takes walk-ins.
        let operator = if walk_in { self.r.operators[2] } else { self.operator() };
        let reason = self.rng.weighted(&self.r.reason_weights);
        let response = if walk_in { t } else { t + self.rng.range(5, 120) * MINUTE };
        let answered = response <= now;
        let closed = answered && self.rng.chance(if now - t < 3 * DAY { 0.85 } else { 0.995 });
        let closed_at = closed.then(|| (response + self.rng.range(1, 10) * MINUTE).min(now));
        let result = closed.then(|| self.result_for(reason, person));
        let campaign = {
            let list = &self.channel_campaigns[channel];
            (!list.is_empty() && self.rng.chance(0.3)).then(|| list[self.rng.index(list.len())])
        };
        let inquiry = self.rng.id(t);
        let note = self.note();
        self.insert_inquiry(&InquiryRow {
            id: inquiry,
            person,
            phone,
            call: None,
            channel,
            campaign,
            reason: answered.then_some(reason),
            source,
            status: match (closed, answered) {
                (true, _) => "closed",
                (false, true) => "in_progress",
                (false, false) => "new",
            },
            result,
            operator: answered.then_some(operator),
            note,
            created: t,
            first_response: answered.then_some(response),
            closed: closed_at,
        })?;
        match (result, closed_at) {
            (Some(result), Some(at)) => self.follow_up(inquiry, person, reason, result, at, operator),
            _ if answered => self.call_back_task(inquiry, person, response, operator),
            _ => Ok(()),
        }
    }

    fn insert_inquiry(&mut self, q: &InquiryRow) -> Result<()> {
        let updated = q.closed.or(q.first_response).unwrap_or(q.created);
        self.st.inquiry.execute(params![
            q.id,
            q.person.map(|p| self.people[p].id),
            q.phone.map(PhoneText::new),
            q.call,
            self.r.channels[q.channel],
            q.campaign.map(|c| self.r.campaigns[c].0),
            q.reason.map(|r| self.r.reasons[r]),
            q.source,
            q.status,
            q.result.map(|r| INQUIRY_RESULTS[r]),
            q.operator,
            q.note,
            q.created,
            q.first_response,
            q.closed,
            updated
        ])?;
        self.summary.inquiries += 1;
        Ok(())
    }

    /// What a closed inquiry leads to: a booked visit (often with a deal),
    /// a deal still being considered, results to send, papers to prepare,
    /// a promised callback.
    fn follow_up(
        &mut self,
        inquiry: Id,
        person: Option<usize>,
        reason: usize,
        result: usize,
        at: Millis,
        operator: Id,
    ) -> Result<()> {
        let Some(person) = person else { return Ok(()) };
        match result {
            RESULT_BOOKED => {
                let deal_type = (reason == REASON_BOOKING || reason == REASON_PRICES) && self.rng.chance(0.75);
                let deal_type = deal_type.then(|| if self.rng.chance(0.8) { PRIMARY } else { DIAGNOSTICS });
                self.book(person, inquiry, deal_type, at, operator)?;
            }
            RESULT_CONSULTATION if reason == REASON_PRICES && self.rng.chance(0.3) => {
                self.considered_deal(person, inquiry, at, operator)?;
            }
            RESULT_CALLBACK => self.call_back_task(inquiry, Some(person), at, operator)?,
            _ => {}
        }
        if reason == REASON_RESULTS {
            let deadline = at + 4 * HOUR;
            let (status, completed) = self.settle(at, deadline);
            let responsible = if self.rng.chance(0.4) { self.r.nurse } else { operator };
            self.insert_task(&TaskRow {
                task_type: TASK_SEND_RESULTS,
                template: Some(TEMPLATE_SEND_RESULTS),
                title: reference::TEMPLATES[TEMPLATE_SEND_RESULTS].1,
                description: "",
                responsible: Some(responsible),
                deadline,
                remind: Some(deadline - 30 * MINUTE),
                status,
                person: Some(person),
                inquiry: Some(inquiry),
                deal: None,
                created_by: Some(operator),
                created: at,
                completed,
                updated: completed.unwrap_or(at),
            })?;
        } else if reason == REASON_DOCUMENTS {
            let deadline = at + 2 * DAY;
            let (status, completed) = self.settle(at, deadline);
            let responsible = if self.rng.chance(0.3) { self.r.supervisor } else { operator };
            self.insert_task(&TaskRow {
                task_type: TASK_OTHER,
                template: Some(TEMPLATE_DOCUMENTS),
                title: reference::TEMPLATES[TEMPLATE_DOCUMENTS].1,
                description: "Справка для бассейна / налогового вычета",
                responsible: Some(responsible),
                deadline,
                remind: Some(deadline - 4 * HOUR),
                status,
                person: Some(person),
                inquiry: Some(inquiry),
                deal: None,
                created_by: Some(operator),
                created: at,
                completed,
                updated: completed.unwrap_or(at),
            })?;
        }
        Ok(())
    }

    /// "Call the patient back": promised in a conversation or left by an
    /// inquiry still in progress.
    fn call_back_task(&mut self, inquiry: Id, person: Option<usize>, at: Millis, operator: Id) -> Result<()> {
        let deadline = at + self.rng.range(2, 30) * HOUR;
        let (status, completed) = self.settle(at, deadline);
        self.insert_task(&TaskRow {
            task_type: TASK_CALL_BACK,
            template: None,
            title: "Перезвонить пациенту",
            description: "",
            responsible: Some(operator),
            deadline,
            remind: Some(deadline - 15 * MINUTE),
            status,
            person,
            inquiry: Some(inquiry),
            deal: None,
            created_by: Some(operator),
            created: at,
            completed,
            updated: completed.unwrap_or(at),
        })
    }

    /// The status of a task created at `created` with `deadline`, as of now:
    /// old ones are done, recent ones sometimes still open (overdue), future
    /// ones open.
    pub(super) fn settle(&mut self, created: Millis, deadline: Millis) -> (&'static str, Option<Millis>) {
        let now = self.now;
        let done_in_time = |rng: &mut Rng| rng.range(created + MINUTE, deadline.max(created + 2 * MINUTE)).min(now);
        if deadline < now - 2 * DAY {
            if self.rng.chance(0.04) {
                ("cancelled", None)
            } else if self.rng.chance(0.85) {
                ("done", Some(done_in_time(&mut self.rng)))
            } else {
                ("done", Some((deadline + self.rng.range(1, 24 * 60) * MINUTE).min(now)))
            }
        } else if deadline < now {
            if self.rng.chance(0.7) { ("done", Some(done_in_time(&mut self.rng))) } else { ("open", None) }
        } else if created < now - HOUR && self.rng.chance(0.15) {
            ("done", Some(self.rng.range(created + MINUTE, now)))
        } else if self.rng.chance(0.1) {
            ("in_progress", None)
        } else {
            ("open", None)
        }
    }
}

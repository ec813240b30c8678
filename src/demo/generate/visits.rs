//! Deals and visits: bookings, the visit plan (done, cancelled, moved),
//! treatments that take several visits, deals that are only considered.

use rusqlite::params;

use super::{DealRow, Generator, TaskRow, VisitPlan};
use crate::crm::Millis;
use crate::demo::calendar::{DAY, HOUR, MINUTE, local_day_start, visit_slot};
use crate::demo::names::CANCEL_REASONS;
use crate::demo::reference::{
    self, DEAL_TYPES, DIAGNOSTICS, PRIMARY, SPECIALTIES, STAGE_BOOKED, STAGE_CAME, STAGE_LOST, STAGE_NEW, STAGE_WON,
    TASK_CONFIRM_VISIT, TASK_OTHER, TEMPLATE_AFTER_TREATMENT, TEMPLATE_CONFIRM_VISIT, TREATMENT,
};
use crate::demo::rng::Id;
use crate::store::Result;

impl Generator<'_> {
    /// Books a visit for a closed inquiry, with a deal of `deal_type` if
    /// any; its stage follows the visit as the transition rules would move it.
    pub(super) fn book(
        &mut self,
        person: usize,
        inquiry: Id,
        deal_type: Option<usize>,
        at: Millis,
        operator: Id,
    ) -> Result<()> {
        let now = self.now;
        let doctor = self.rng.weighted(&self.r.doctor_weights);
        let specialty = &SPECIALTIES[self.r.doctors[doctor].specialty];
        let start = visit_slot(&mut self.rng, at);
        let duration = *self.rng.pick(&[30, 30, 30, 20, 45, 60]);
        let plan = self.plan_visit(at, start, duration, 0.12);
        let service = if deal_type == Some(DIAGNOSTICS) { specialty.diagnostics } else { specialty.first_visit };
        let deal = match deal_type {
            Some(deal_type) => {
                let end = start + duration * MINUTE;
                let paid_at = end + self.rng.range(5, 30) * MINUTE;
                let (stage, closed, updated) = match plan.status {
                    "cancelled" => (STAGE_LOST, Some(plan.changed_at), plan.changed_at),
                    "arrived"
                        if paid_at <= now && (now - end > 2 * DAY && self.rng.chance(0.92) || self.rng.chance(0.5)) =>
                    {
                        (STAGE_WON, Some(paid_at), paid_at)
                    }
                    "arrived" => (STAGE_CAME, None, plan.changed_at),
                    _ => (STAGE_BOOKED, None, at),
                };
                let price =
                    if deal_type == DIAGNOSTICS { specialty.diagnostics_price } else { specialty.first_visit_price };
                let deal = self.rng.id(at);
                self.insert_deal(&DealRow {
                    id: deal,
                    deal_type,
                    stage,
                    person: Some(person),
                    inquiry: Some(inquiry),
                    title: service,
                    amount_cents: price * 100,
                    responsible: Some(operator),
                    created: at,
                    closed,
                    updated,
                })?;
                Some(deal)
            }
            None => None,
        };
        self.insert_visit(&plan, person, doctor, deal, Some(inquiry), service, at)?;
        let after_visit = start + (duration + 15) * MINUTE;
        if plan.status == "arrived" && deal_type == Some(PRIMARY) && after_visit < now && self.rng.chance(0.22) {
            self.treatment(person, inquiry, doctor, after_visit)?;
        }
        Ok(())
    }

    /// A visit booked at `booked` for `start`: what has happened to it by
    /// now, and its "confirm visit" task (due at 18:00 the day before).
    fn plan_visit(&mut self, booked: Millis, start: Millis, duration_min: i64, cancel_p: f64) -> VisitPlan {
        let now = self.now;
        let mut plan =
            VisitPlan { start, duration_min, status: "booked", cancel_reason: None, changed_at: booked, confirm: None };
        let cancelled = self.rng.chance(if start > now { cancel_p / 3.0 } else { cancel_p });
        let cancel_at = cancelled.then(|| self.rng.range(booked + MINUTE, start.min(now).max(booked + 2 * MINUTE)));
        if let Some(at) = cancel_at {
            plan.status = "cancelled";
            plan.cancel_reason = Some(*self.rng.pick(CANCEL_REASONS));
            plan.changed_at = at.min(now);
        } else if start <= now {
            plan.status = "arrived";
            plan.changed_at = (start - self.rng.range(0, 15) * MINUTE).max(booked);
        }
        let deadline = local_day_start(start) - 6 * HOUR;
        if deadline - booked >= 2 * HOUR {
            let (status, completed, updated) = match cancel_at {
                Some(at) if at < deadline => ("cancelled", None, at.min(now)),
                _ if deadline < now => {
                    if now - deadline < 3 * DAY && self.rng.chance(0.1) {
                        ("open", None, booked)
                    } else {
                        let done = self.rng.range((deadline - 8 * HOUR).max(booked + MINUTE), deadline + 1);
                        ("done", Some(done), done)
                    }
                }
                _ if self.rng.chance(0.1) => ("in_progress", None, booked),
                _ => ("open", None, booked),
            };
            if let (Some(done), "booked") = (completed, plan.status) {
                plan.status = "confirmed";
                plan.changed_at = done;
            }
            plan.confirm = Some((booked, deadline, status, completed, updated));
        }
        plan
    }

    #[allow(clippy::too_many_arguments)]
    fn insert_visit(
        &mut self,
        plan: &VisitPlan,
        person: usize,
        doctor: usize,
        deal: Option<Id>,
        inquiry: Option<Id>,
        service: &'static str,
        booked: Millis,
    ) -> Result<()> {
        self.st.visit.execute(params![
            self.rng.id(booked),
            self.people[person].id,
            self.r.doctors[doctor].id,
            deal,
            service,
            plan.start,
            plan.duration_min,
            plan.status,
            plan.cancel_reason,
            plan.changed_at
        ])?;
        self.summary.visits += 1;
        if let Some((created, deadline, status, completed, updated)) = plan.confirm {
            let responsible = if status == "open" && self.rng.chance(0.15) { None } else { Some(self.operator()) };
            self.insert_task(&TaskRow {
                task_type: TASK_CONFIRM_VISIT,
                template: Some(TEMPLATE_CONFIRM_VISIT),
                title: reference::TEMPLATES[TEMPLATE_CONFIRM_VISIT].1,
                description: service,
                responsible,
                deadline,
                remind: Some(deadline - HOUR),
                status,
                person: Some(person),
                inquiry,
                deal,
                created_by: None,
                created,
                completed,
                updated,
            })?;
        }
        Ok(())
    }

    /// A course of treatment the doctor proposes after a first visit: a deal
    /// of its own and a series of visits.
    fn treatment(&mut self, person: usize, inquiry: Id, doctor: usize, at: Millis) -> Result<()> {
        let now = self.now;
        let specialty = &SPECIALTIES[self.r.doctors[doctor].specialty];
        let doctor_id = self.r.doctors[doctor].id;
        let (lo, hi) = specialty.treatment_price;
        let amount_cents = self.rng.range(lo / 500, hi / 500 + 1) * 500 * 100;
        let deal = self.rng.id(at);
        let mut row = DealRow {
            id: deal,
            deal_type: TREATMENT,
            stage: STAGE_NEW,
            person: Some(person),
            inquiry: Some(inquiry),
            title: specialty.treatment,
            amount_cents,
            responsible: Some(doctor_id),
            created: at,
            closed: None,
            updated: at,
        };
        if at > now - 2 * DAY && self.rng.chance(0.5) {
            // Still thinking about the plan.
            return self.insert_deal(&row);
        }

        let sessions = self.rng.range(2, 7) as usize;
        let refuse_before = self.rng.chance(0.15).then(|| self.rng.range(1, sessions as i64) as usize);
        let mut plans = Vec::with_capacity(sessions);
        let mut refused_at: Option<Millis> = None;
        let mut after = at;
        for k in 0..sessions {
            let start = visit_slot(&mut self.rng, after + 4 * DAY);
            after = start;
            if refused_at.is_none() && refuse_before == Some(k) {
                let at_refusal = (start - self.rng.range(1, 48) * HOUR).max(at + MINUTE);
                if at_refusal <= now {
                    refused_at = Some(at_refusal);
                }
            }
            let plan = match refused_at {
                Some(refused) => VisitPlan {
                    start,
                    duration_min: 45,
                    status: "cancelled",
                    cancel_reason: Some("Пациент отказался от лечения"),
                    changed_at: refused,
                    confirm: None,
                },
                None => self.plan_visit(at, start, 45, 0.03),
            };
            plans.push(plan);
        }
        let last_end = after + 45 * MINUTE;
        (row.stage, row.closed, row.updated) = match refused_at {
            Some(refused) => (STAGE_LOST, Some(refused), refused),
            None if last_end + 10 * MINUTE <= now => (STAGE_WON, Some(last_end + 10 * MINUTE), last_end + 10 * MINUTE),
            None if plans[0].start <= now => (STAGE_CAME, None, plans[0].changed_at),
            None => (STAGE_BOOKED, None, at),
        };
        self.insert_deal(&row)?;
        for plan in &plans {
            self.insert_visit(plan, person, doctor, Some(deal), Some(inquiry), specialty.treatment, at)?;
        }
        if let (STAGE_WON, Some(closed)) = (row.stage, row.closed) {
            let deadline = closed + 7 * DAY;
            let (status, completed) = self.settle(closed, deadline);
            self.insert_task(&TaskRow {
                task_type: TASK_OTHER,
                template: Some(TEMPLATE_AFTER_TREATMENT),
                title: reference::TEMPLATES[TEMPLATE_AFTER_TREATMENT].1,
                description: "Узнать самочувствие, пригласить на контрольный приём",
                responsible: Some(doctor_id),
                deadline,
                remind: Some(deadline - DAY),
                status,
                person: Some(person),
                inquiry: None,
                deal: Some(deal),
                created_by: Some(doctor_id),
                created: closed,
                completed,
                updated: completed.unwrap_or(closed),
            })?;
        }
        Ok(())
    }

    /// A patient asked about prices and is still thinking (a fresh deal), or
    /// never came back (lost after a couple of weeks).
    pub(super) fn considered_deal(&mut self, person: usize, inquiry: Id, at: Millis, operator: Id) -> Result<()> {
        let now = self.now;
        let deal_type = if self.rng.chance(0.8) { PRIMARY } else { DIAGNOSTICS };
        let specialty = &SPECIALTIES[self.r.doctors[self.rng.weighted(&self.r.doctor_weights)].specialty];
        let (title, price) = if deal_type == DIAGNOSTICS {
            (specialty.diagnostics, specialty.diagnostics_price)
        } else {
            (specialty.first_visit, specialty.first_visit_price)
        };
        let (stage, closed) = if at > now - 14 * DAY {
            (STAGE_NEW, None)
        } else {
            (STAGE_LOST, Some((at + self.rng.range(3, 15) * DAY).min(now)))
        };
        let deal = self.rng.id(at);
        self.insert_deal(&DealRow {
            id: deal,
            deal_type,
            stage,
            person: Some(person),
            inquiry: Some(inquiry),
            title,
            amount_cents: price * 100,
            responsible: Some(operator),
            created: at,
            closed,
            updated: closed.unwrap_or(at),
        })
    }

    pub(super) fn insert_deal(&mut self, d: &DealRow) -> Result<()> {
        self.st.deal.execute(params![
            d.id,
            self.r.deal_types[d.deal_type],
            self.r.stages[d.deal_type][d.stage],
            d.person.map(|p| self.people[p].id),
            d.inquiry,
            d.title,
            d.amount_cents,
            DEAL_TYPES[d.deal_type].1[d.stage].1,
            d.responsible,
            d.created,
            d.closed,
            d.updated
        ])?;
        self.stage_counts[d.deal_type][d.stage] += 1;
        self.summary.deals += 1;
        Ok(())
    }

    pub(super) fn insert_task(&mut self, t: &TaskRow<'_>) -> Result<()> {
        self.st.task.execute(params![
            self.rng.id(t.created),
            self.r.task_types[t.task_type],
            t.template.map(|k| self.r.templates[k]),
            t.title,
            t.description,
            t.responsible,
            t.deadline,
            t.remind,
            t.status,
            t.person.map(|p| self.people[p].id),
            t.inquiry,
            t.deal,
            t.created_by,
            t.created,
            t.completed,
            t.updated
        ])?;
        self.summary.tasks += 1;
        Ok(())
    }
}

//! Today: the open work of the demo operator (overdue and due today), and at
//! least one inquiry in every stage.

use super::{DealRow, Generator, TaskRow};
use crate::crm::Millis;
use crate::demo::calendar::{DAY, HOUR, MINUTE, local_day_start};
use crate::demo::reference::{
    DEAL_TYPES, DIAGNOSTICS, SPECIALTIES, STAGE_LOST, STAGE_WON, TASK_CALL_BACK, TASK_CONFIRM_VISIT, TASK_OTHER,
    TASK_SEND_RESULTS, TEMPLATE_CALL_BACK, TEMPLATE_CONFIRM_VISIT, TEMPLATE_SEND_RESULTS, TREATMENT,
};
use crate::demo::rng::Id;
use crate::store::Result;

impl Generator<'_> {
    /// Work waiting for the demo operator however small the clinic: tasks
    /// overdue, due later today, due in the coming days, and in the shared
    /// queue.
    pub(super) fn todays_tasks(&mut self) -> Result<()> {
        let now = self.now;
        let me = Some(self.r.operators[0]);
        let left_today = local_day_start(now) + DAY - now;
        let tomorrow_10 = local_day_start(now) + DAY + 10 * HOUR;
        let tasks: [(usize, &str, Millis, Option<Id>); 14] = [
            (TASK_CALL_BACK, "Перезвонить по пропущенному звонку", now - 40 * MINUTE, me),
            (TASK_CONFIRM_VISIT, "Подтвердить визит", now - 3 * HOUR, me),
            (TASK_SEND_RESULTS, "Отправить результаты анализов", now - DAY - 2 * HOUR, me),
            (TASK_OTHER, "Уточнить данные полиса ДМС", now - 4 * DAY, me),
            (TASK_CALL_BACK, "Перезвонить пациенту", now + left_today / 5, me),
            (TASK_CONFIRM_VISIT, "Подтвердить визит на завтра", now + left_today * 2 / 5, me),
            (TASK_SEND_RESULTS, "Отправить результаты анализов", now + left_today * 3 / 5, me),
            (TASK_OTHER, "Напомнить о подготовке к УЗИ", now + left_today * 4 / 5, me),
            (TASK_CONFIRM_VISIT, "Подтвердить визит", tomorrow_10, me),
            (TASK_OTHER, "Согласовать время с врачом", now + 3 * DAY, me),
            (TASK_CALL_BACK, "Пригласить на контрольный приём", now + 7 * DAY, me),
            (TASK_CALL_BACK, "Перезвонить по пропущенному звонку", now - 20 * MINUTE, None),
            (TASK_CALL_BACK, "Перезвонить пациенту", now + left_today / 3, None),
            (TASK_CONFIRM_VISIT, "Подтвердить визит на завтра", now + left_today * 2 / 3, None),
        ];
        for (k, (task_type, title, deadline, responsible)) in tasks.into_iter().enumerate() {
            let created = deadline.min(now) - self.rng.range(HOUR, DAY);
            let person = self.pick_person(created);
            let template = match task_type {
                TASK_CALL_BACK if title.contains("пропущенн") => Some(TEMPLATE_CALL_BACK),
                TASK_CONFIRM_VISIT => Some(TEMPLATE_CONFIRM_VISIT),
                TASK_SEND_RESULTS => Some(TEMPLATE_SEND_RESULTS),
                _ => None,
            };
            self.insert_task(&TaskRow {
                task_type,
                template,
                title,
                description: "",
                responsible,
                deadline,
                remind: Some((deadline - 30 * MINUTE).max(created)),
                status: if k == 1 { "in_progress" } else { "open" },
                person,
                inquiry: None,
                deal: None,
                created_by: Some(self.r.supervisor),
                created,
                completed: None,
                updated: created,
            })?;
        }
        Ok(())
    }

    /// However few calls there were, every stage of every pipeline has a
    /// deal to show.
    pub(super) fn every_stage(&mut self) -> Result<()> {
        let now = self.now;
        for deal_type in 0..DEAL_TYPES.len() {
            for stage in 0..5 {
                if self.stage_counts[deal_type][stage] > 0 {
                    continue;
                }
                let (created, closed) = if stage == STAGE_WON || stage == STAGE_LOST {
                    let created = now - self.rng.range(20, 200) * DAY;
                    (created, Some(created + self.rng.range(1, 15) * DAY))
                } else {
                    (now - self.rng.range(1, 10) * DAY - self.rng.range(0, DAY), None)
                };
                let doctor = self.rng.weighted(&self.r.doctor_weights);
                let specialty = &SPECIALTIES[self.r.doctors[doctor].specialty];
                let (title, amount) = match deal_type {
                    TREATMENT => (specialty.treatment, specialty.treatment_price.0),
                    DIAGNOSTICS => (specialty.diagnostics, specialty.diagnostics_price),
                    _ => (specialty.first_visit, specialty.first_visit_price),
                };
                let responsible = if deal_type == TREATMENT { self.r.doctors[doctor].id } else { self.operator() };
                let person = self.pick_person(created);
                let deal = self.rng.id(created);
                self.insert_deal(&DealRow {
                    id: deal,
                    deal_type,
                    stage,
                    person,
                    inquiry: None,
                    title,
                    amount_cents: amount * 100,
                    responsible: Some(responsible),
                    created,
                    closed,
                    updated: closed.unwrap_or(created),
                })?;
            }
        }
        Ok(())
    }
}

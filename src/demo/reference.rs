//! The generated clinic's setup: org units, roles and their rights, staff,
//! ad channels with campaigns and tracking numbers, and the dictionaries
//! (inquiry reasons, deal types and stages, automatic transitions, task
//! types and templates, global settings).

use rusqlite::{Connection, params};

use super::calendar::DAY;
use super::rng::{Id, Rng};
use crate::crm::{Millis, RoleCode};
use crate::store::Result;

/// A doctor's specialty and what the clinic sells for it: the first visit,
/// a diagnostic service, a course of treatment, and their prices in roubles.
pub struct Specialty {
    pub name: &'static str,
    pub first_visit: &'static str,
    pub diagnostics: &'static str,
    pub treatment: &'static str,
    pub first_visit_price: i64,
    pub diagnostics_price: i64,
    pub treatment_price: (i64, i64),
    /// How often patients are booked to this doctor.
    pub weight: u32,
}

pub static SPECIALTIES: [Specialty; 8] = [
    Specialty {
        name: "терапевт",
        first_visit: "Приём терапевта",
        diagnostics: "Check-up «Базовый»",
        treatment: "Курс капельниц",
        first_visit_price: 2200,
        diagnostics_price: 9900,
        treatment_price: (12_000, 40_000),
        weight: 25,
    },
    Specialty {
        name: "кардиолог",
        first_visit: "Приём кардиолога",
        diagnostics: "ЭКГ с расшифровкой",
        treatment: "Кардиореабилитация",
        first_visit_price: 3200,
        diagnostics_price: 2500,
        treatment_price: (30_000, 90_000),
        weight: 10,
    },
    Specialty {
        name: "невролог",
        first_visit: "Приём невролога",
        diagnostics: "ЭЭГ",
        treatment: "Курс массажа и ЛФК",
        first_visit_price: 3000,
        diagnostics_price: 4500,
        treatment_price: (15_000, 45_000),
        weight: 10,
    },
    Specialty {
        name: "гинеколог",
        first_visit: "Приём гинеколога",
        diagnostics: "УЗИ органов малого таза",
        treatment: "Курс лечения у гинеколога",
        first_visit_price: 2900,
        diagnostics_price: 3200,
        treatment_price: (18_000, 60_000),
        weight: 14,
    },
    Specialty {
        name: "стоматолог",
        first_visit: "Консультация стоматолога",
        diagnostics: "Панорамный снимок",
        treatment: "Лечение кариеса",
        first_visit_price: 1500,
        diagnostics_price: 1800,
        treatment_price: (25_000, 180_000),
        weight: 16,
    },
    Specialty {
        name: "педиатр",
        first_visit: "Приём педиатра",
        diagnostics: "Check-up для детей",
        treatment: "Курс физиотерапии",
        first_visit_price: 2400,
        diagnostics_price: 7500,
        treatment_price: (9_000, 25_000),
        weight: 12,
    },
    Specialty {
        name: "ЛОР",
        first_visit: "Приём ЛОР-врача",
        diagnostics: "Аудиометрия",
        treatment: "Промывание пазух (курс)",
        first_visit_price: 2600,
        diagnostics_price: 2000,
        treatment_price: (8_000, 20_000),
        weight: 8,
    },
    Specialty {
        name: "офтальмолог",
        first_visit: "Приём офтальмолога",
        diagnostics: "Проверка зрения",
        treatment: "Аппаратное лечение зрения",
        first_visit_price: 2700,
        diagnostics_price: 1900,
        treatment_price: (14_000, 35_000),
        weight: 5,
    },
];

/// The deal types (pipelines). All have the same five-step shape, see the
/// `STAGE_*` positions.
pub const PRIMARY: usize = 0;
pub const TREATMENT: usize = 1;
pub const DIAGNOSTICS: usize = 2;

pub const STAGE_NEW: usize = 0;
pub const STAGE_BOOKED: usize = 1;
pub const STAGE_CAME: usize = 2;
pub const STAGE_WON: usize = 3;
pub const STAGE_LOST: usize = 4;

type StageDef = (&'static str, &'static str);

pub static DEAL_TYPES: [(&str, [StageDef; 5]); 3] = [
    (
        "Первичный приём",
        [("Новая", "open"), ("Записан", "open"), ("Пришёл", "open"), ("Оплачен", "won"), ("Отказ", "lost")],
    ),
    (
        "Лечение",
        [
            ("Консультация", "open"),
            ("План лечения", "open"),
            ("В лечении", "open"),
            ("Завершено", "won"),
            ("Отказ", "lost"),
        ],
    ),
    (
        "Диагностика",
        [("Новая", "open"), ("Записан", "open"), ("Обследован", "open"), ("Оплачен", "won"), ("Отказ", "lost")],
    ),
];

/// Visit status → stage position, per deal type.
const AUTO_RULES: [(usize, &str, usize); 9] = [
    (PRIMARY, "booked", STAGE_BOOKED),
    (PRIMARY, "arrived", STAGE_CAME),
    (PRIMARY, "cancelled", STAGE_LOST),
    (DIAGNOSTICS, "booked", STAGE_BOOKED),
    (DIAGNOSTICS, "arrived", STAGE_CAME),
    (DIAGNOSTICS, "cancelled", STAGE_LOST),
    (TREATMENT, "booked", STAGE_BOOKED),
    (TREATMENT, "confirmed", STAGE_BOOKED),
    (TREATMENT, "arrived", STAGE_CAME),
];

/// Inquiry reasons: name, how often, and how such inquiries end (weights of
/// booked, consultation, callback, refused, spam).
pub const REASONS: [(&str, u32, [u32; 5]); 8] = [
    ("Запись на приём", 42, [72, 8, 8, 12, 0]),
    ("Консультация по ценам", 16, [25, 55, 8, 12, 0]),
    ("Результаты анализов", 10, [3, 82, 10, 5, 0]),
    ("Перенос визита", 7, [85, 5, 5, 5, 0]),
    ("Отмена визита", 4, [0, 30, 0, 70, 0]),
    ("Жалоба", 2, [0, 70, 20, 10, 0]),
    ("Справка/документы", 6, [0, 85, 10, 5, 0]),
    ("Другое", 13, [5, 60, 10, 10, 15]),
];
pub const REASON_BOOKING: usize = 0;
pub const REASON_PRICES: usize = 1;
pub const REASON_RESULTS: usize = 2;
pub const REASON_DOCUMENTS: usize = 6;

pub const INQUIRY_RESULTS: [&str; 5] = ["booked", "consultation", "callback", "refused", "spam"];
pub const RESULT_BOOKED: usize = 0;
pub const RESULT_CONSULTATION: usize = 1;
pub const RESULT_CALLBACK: usize = 2;
pub const RESULT_REFUSED: usize = 3;

/// Ad channels: name, kind, share of the calls they bring.
const CHANNELS: [(&str, &str, u32); 8] = [
    ("Яндекс.Директ", "search", 28),
    ("Google Ads", "search", 8),
    ("2ГИС", "maps", 14),
    ("Instagram", "social", 7),
    ("ВКонтакте", "social", 6),
    ("Сайт", "website", 17),
    ("Рекомендация", "referral", 12),
    ("Вывеска/оффлайн", "offline", 8),
];
pub const CHANNEL_SITE: usize = 5;
pub const CHANNEL_REFERRAL: usize = 6;
pub const CHANNEL_OFFLINE: usize = 7;

/// Campaigns: channel, name, budget in roubles, start and length in days
/// from the beginning of the generated period (length 0: still running),
/// whether it has its own tracking number.
const CAMPAIGNS: [(usize, &str, i64, i64, i64, bool); 9] = [
    (0, "Поиск: приём терапевта", 120_000, 0, 0, true),
    (0, "Поиск: стоматология", 180_000, 60, 0, true),
    (0, "РСЯ: check-up", 60_000, 200, 120, false),
    (1, "Поиск: педиатр", 40_000, 30, 300, true),
    (2, "Приоритетное размещение", 36_000, 0, 0, false),
    (3, "Таргет: гинекология", 50_000, 150, 180, true),
    (4, "Таргет: детский приём", 45_000, 90, 0, true),
    (7, "Листовки у метро", 15_000, 400, 60, false),
    (7, "Наружная реклама на фасаде", 90_000, 0, 0, false),
];

/// Task types: code and name.
const TASK_TYPES: [(&str, &str); 4] = [
    ("call_back", "Перезвонить"),
    ("confirm_visit", "Подтвердить визит"),
    ("send_results", "Отправить результаты"),
    ("other", "Другое"),
];
pub const TASK_CALL_BACK: usize = 0;
pub const TASK_CONFIRM_VISIT: usize = 1;
pub const TASK_SEND_RESULTS: usize = 2;
pub const TASK_OTHER: usize = 3;

/// Task templates: type, title, deadline and reminder offsets in minutes, the
/// role responsible.
pub const TEMPLATES: [(usize, &str, i64, Option<i64>, RoleCode); 5] = [
    (TASK_CALL_BACK, "Перезвонить по пропущенному звонку", 15, Some(5), RoleCode::Operator),
    (TASK_CONFIRM_VISIT, "Подтвердить визит", 1440, Some(60), RoleCode::Operator),
    (TASK_SEND_RESULTS, "Отправить результаты анализов", 240, Some(30), RoleCode::Nurse),
    (TASK_OTHER, "Подготовить справку", 2880, Some(240), RoleCode::Operator),
    (TASK_OTHER, "Связаться после лечения", 10080, Some(1440), RoleCode::Doctor),
];
pub const TEMPLATE_CALL_BACK: usize = 0;
pub const TEMPLATE_CONFIRM_VISIT: usize = 1;
pub const TEMPLATE_SEND_RESULTS: usize = 2;
pub const TEMPLATE_DOCUMENTS: usize = 3;
pub const TEMPLATE_AFTER_TREATMENT: usize = 4;

/// Org units: name and parent (index into this list).
const ORG_UNITS: [(&str, Option<usize>); 7] = [
    ("Клиника «Здоровье»", None),
    ("Регистратура", Some(0)),
    ("Колл-центр", Some(0)),
    ("Терапевтическое отделение", Some(0)),
    ("Стоматологическое отделение", Some(0)),
    ("Педиатрическое отделение", Some(0)),
    ("Диагностическое отделение", Some(0)),
];

const ROLE_NAMES: [(RoleCode, &str); 6] = [
    (RoleCode::Head, "Руководитель клиники"),
    (RoleCode::Admin, "Администратор настроек"),
    (RoleCode::Operator, "Оператор"),
    (RoleCode::Supervisor, "Старший оператор"),
    (RoleCode::Doctor, "Врач"),
    (RoleCode::Nurse, "Медсестра"),
];

/// Staff: login, full name, role, org unit, specialty (index into
/// [`SPECIALTIES`]), SIP extension.
type StaffDef = (&'static str, &'static str, RoleCode, usize, Option<usize>, Option<&'static str>);
const STAFF: [StaffDef; 15] = [
    ("head", "Соколова Ирина Павловна", RoleCode::Head, 0, None, None),
    ("admin", "Громов Денис Игоревич", RoleCode::Admin, 0, None, Some("199")),
    ("supervisor", "Белова Марина Сергеевна", RoleCode::Supervisor, 2, None, Some("100")),
    ("operator", "Кузнецова Анна Викторовна", RoleCode::Operator, 2, None, Some("101")),
    ("operator2", "Орлова Екатерина Андреевна", RoleCode::Operator, 2, None, Some("102")),
    ("operator3", "Захаров Илья Олегович", RoleCode::Operator, 1, None, Some("103")),
    ("doctor1", "Смирнов Алексей Николаевич", RoleCode::Doctor, 3, Some(0), Some("201")),
    ("doctor2", "Лебедева Ольга Михайловна", RoleCode::Doctor, 3, Some(1), Some("202")),
    ("doctor3", "Павлов Игорь Владимирович", RoleCode::Doctor, 3, Some(2), Some("203")),
    ("doctor4", "Романова Наталья Юрьевна", RoleCode::Doctor, 3, Some(3), Some("204")),
    ("doctor5", "Ковальчук Андрей Петрович", RoleCode::Doctor, 4, Some(4), Some("205")),
    ("doctor6", "Фролова Елена Александровна", RoleCode::Doctor, 5, Some(5), Some("206")),
    ("doctor7", "Тарасов Михаил Сергеевич", RoleCode::Doctor, 3, Some(6), Some("207")),
    ("doctor8", "Егорова Светлана Викторовна", RoleCode::Doctor, 6, Some(7), Some("208")),
    ("nurse1", "Волкова Татьяна Ивановна", RoleCode::Nurse, 3, None, Some("301")),
];

/// Per-user exceptions to the role defaults the clinic head has set.
const USER_RIGHTS: [(&str, crate::crm::Right, bool); 3] = [
    ("operator2", crate::crm::Right::EditDeals, true),
    ("operator3", crate::crm::Right::ViewAllCalls, true),
    ("nurse1", crate::crm::Right::ViewInquiries, true),
];

/// Clinic-wide settings: key and JSON value.
const GLOBAL_SETTINGS: [(&str, &str); 3] =
    [("missed_call_deadline_min", "15"), ("clinic_name", "\"Клиника «Здоровье»\""), ("default_country", "\"RU\"")];

pub struct Doctor {
    pub id: Id,
    pub specialty: usize,
}

pub struct TrackingNumber {
    pub did: String,
    pub channel: usize,
    pub campaign: Option<usize>,
}

/// The ids of the setup rows, for the rows that refer to them.
pub struct Reference {
    /// "operator", "operator2", "operator3".
    pub operators: [Id; 3],
    pub supervisor: Id,
    pub nurse: Id,
    pub doctors: Vec<Doctor>,
    pub doctor_weights: Vec<u32>,
    pub channels: Vec<Id>,
    pub campaigns: Vec<(Id, usize)>,
    pub numbers: Vec<TrackingNumber>,
    pub number_weights: Vec<u32>,
    pub reasons: Vec<Id>,
    pub reason_weights: Vec<u32>,
    pub deal_types: Vec<Id>,
    /// `stages[deal type][position]`.
    pub stages: Vec<[Id; 5]>,
    pub task_types: Vec<Id>,
    pub templates: Vec<Id>,
}

impl Reference {
    /// The campaigns of a channel.
    pub fn campaigns_of(&self, channel: usize) -> impl Iterator<Item = usize> + '_ {
        self.campaigns.iter().enumerate().filter(move |(_, c)| c.1 == channel).map(|(i, _)| i)
    }
}

/// Writes the setup rows, all created at `at` (the clinic's first day with
/// ClinicDesk); `period_start` dates the campaigns.
pub fn write(conn: &Connection, rng: &mut Rng, at: Millis, period_start: Millis) -> Result<Reference> {
    let mut org_units: Vec<Id> = Vec::new();
    for (name, parent) in ORG_UNITS {
        let id = rng.id(at);
        conn.execute(
            "INSERT INTO org_units (id, name, parent_id, updated_at) VALUES (?, ?, ?, ?)",
            params![id, name, parent.map(|p| org_units[p]), at],
        )?;
        org_units.push(id);
    }

    let mut roles: Vec<(RoleCode, Id)> = Vec::new();
    for (code, name) in ROLE_NAMES {
        let id = rng.id(at);
        conn.execute(
            "INSERT INTO roles (id, code, name, updated_at) VALUES (?, ?, ?, ?)",
            params![id, code.code(), name, at],
        )?;
        for right in crate::crm::Right::ALL.iter().filter(|r| code.default_rights().has(**r)) {
            conn.execute(
                "INSERT INTO role_rights (id, role_id, right_code, updated_at) VALUES (?, ?, ?, ?)",
                params![rng.id(at), id, right.code(), at],
            )?;
        }
        roles.push((code, id));
    }
    let role_id = |code: RoleCode| roles.iter().find(|(c, _)| *c == code).map(|(_, id)| id);

    let mut users: Vec<(&str, Id)> = Vec::new();
    let mut doctors = Vec::new();
    for (login, full_name, role, unit, specialty, sip) in STAFF {
        let id = rng.id(at);
        conn.execute(
            "INSERT INTO users (id, login, full_name, role_id, org_unit_id, specialty, sip_extension, updated_at)
             VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            params![
                id,
                login,
                full_name,
                role_id(role),
                org_units[unit],
                specialty.map(|s| SPECIALTIES[s].name),
                sip,
                at
            ],
        )?;
        if let Some(specialty) = specialty {
            doctors.push(Doctor { id, specialty });
        }
        users.push((login, id));
    }
    let user = |login: &str| users.iter().find(|(l, _)| *l == login).map_or(Id::NIL, |(_, id)| *id);
    for (login, right, granted) in USER_RIGHTS {
        conn.execute(
            "INSERT INTO user_rights (id, user_id, right_code, granted, updated_at) VALUES (?, ?, ?, ?, ?)",
            params![rng.id(at), user(login), right.code(), granted, at],
        )?;
    }

    let mut channels = Vec::new();
    for (name, kind, _) in CHANNELS {
        let id = rng.id(at);
        conn.execute(
            "INSERT INTO ad_channels (id, name, kind, updated_at) VALUES (?, ?, ?, ?)",
            params![id, name, kind, at],
        )?;
        channels.push(id);
    }
    let mut campaigns = Vec::new();
    for (channel, name, budget, start, len, _) in CAMPAIGNS {
        let id = rng.id(at);
        let starts = period_start + start * DAY;
        let ends = (len > 0).then(|| super::calendar::iso_date(starts + len * DAY));
        conn.execute(
            "INSERT INTO campaigns (id, channel_id, name, budget_cents, starts_on, ends_on, updated_at)
             VALUES (?, ?, ?, ?, ?, ?, ?)",
            params![id, channels[channel], name, budget * 100, super::calendar::iso_date(starts), ends, at],
        )?;
        campaigns.push((id, channel));
    }

    // One number per channel, and one more per campaign that has its own.
    let mut numbers = Vec::new();
    let mut number_weights = Vec::new();
    for (channel, (_, _, weight)) in CHANNELS.iter().enumerate() {
        let own: Vec<usize> = (0..CAMPAIGNS.len()).filter(|&c| CAMPAIGNS[c].0 == channel && CAMPAIGNS[c].5).collect();
        let share = weight * 10 / (own.len() as u32 + 1);
        numbers.push(TrackingNumber { did: String::new(), channel, campaign: None });
        number_weights.push(share);
        for campaign in own {
            numbers.push(TrackingNumber { did: String::new(), channel, campaign: Some(campaign) });
            number_weights.push(share);
        }
    }
    for (i, number) in numbers.iter_mut().enumerate() {
        number.did = format!("+749512340{:02}", 10 + i);
        conn.execute(
            "INSERT INTO tracking_numbers (id, did_e164, channel_id, campaign_id, updated_at) VALUES (?, ?, ?, ?, ?)",
            params![rng.id(at), number.did, channels[number.channel], number.campaign.map(|c| campaigns[c].0), at],
        )?;
    }

    let mut reasons = Vec::new();
    for (name, _, _) in REASONS {
        let id = rng.id(at);
        conn.execute("INSERT INTO inquiry_reasons (id, name, updated_at) VALUES (?, ?, ?)", params![id, name, at])?;
        reasons.push(id);
    }

    let mut deal_types = Vec::new();
    let mut stages = Vec::new();
    for (name, stage_defs) in DEAL_TYPES {
        let id = rng.id(at);
        conn.execute("INSERT INTO deal_types (id, name, updated_at) VALUES (?, ?, ?)", params![id, name, at])?;
        let mut ids = [Id::NIL; 5];
        for (position, (stage, outcome)) in stage_defs.iter().enumerate() {
            ids[position] = rng.id(at);
            conn.execute(
                "INSERT INTO deal_stages (id, deal_type_id, name, position, outcome, updated_at)
                 VALUES (?, ?, ?, ?, ?, ?)",
                params![ids[position], id, stage, position as i64 + 1, outcome, at],
            )?;
        }
        deal_types.push(id);
        stages.push(ids);
    }
    for (deal_type, visit_status, stage) in AUTO_RULES {
        conn.execute(
            "INSERT INTO auto_transition_rules (id, deal_type_id, visit_status, target_stage_id, updated_at)
             VALUES (?, ?, ?, ?, ?)",
            params![rng.id(at), deal_types[deal_type], visit_status, stages[deal_type][stage], at],
        )?;
    }

    let mut task_types = Vec::new();
    for (code, name) in TASK_TYPES {
        let id = rng.id(at);
        conn.execute(
            "INSERT INTO task_types (id, code, name, updated_at) VALUES (?, ?, ?, ?)",
            params![id, code, name, at],
        )?;
        task_types.push(id);
    }
    let mut templates = Vec::new();
    for (task_type, title, deadline, reminder, role) in TEMPLATES {
        let id = rng.id(at);
        conn.execute(
            "INSERT INTO task_templates (id, task_type_id, title, deadline_offset_min, reminder_offset_min,
                                         responsible_role_id, updated_at)
             VALUES (?, ?, ?, ?, ?, ?, ?)",
            params![id, task_types[task_type], title, deadline, reminder, role_id(role), at],
        )?;
        templates.push(id);
    }

    for (key, value) in GLOBAL_SETTINGS {
        conn.execute(
            "INSERT INTO global_settings (id, key, value, updated_at) VALUES (?, ?, ?, ?)",
            params![rng.id(at), key, value, at],
        )?;
    }

    Ok(Reference {
        operators: [user("operator"), user("operator2"), user("operator3")],
        supervisor: user("supervisor"),
        nurse: user("nurse1"),
        doctor_weights: doctors.iter().map(|d| SPECIALTIES[d.specialty].weight).collect(),
        doctors,
        channels,
        campaigns,
        number_weights,
        numbers,
        reason_weights: REASONS.iter().map(|r| r.1).collect(),
        reasons,
        deal_types,
        stages,
        task_types,
        templates,
    })
}

//! The writer thread: the one owner of the replica's read-write connection
//! (and of settings.toml and the keyring). Every change the window asks for
//! is checked against the signed-in user's rights here, so a window that
//! shows a button it should not is still refused. The deadline notifier
//! writes through it too ("Done" on a notification meets the same check).
//! The sync engine is the only other writer (see [`super::sync`]).

use std::path::PathBuf;

use crossbeam_channel::Receiver;

use super::message::Message;
use super::{Command, Event, EventSink, RecordKind};
use crate::crm::*;
use crate::settings::secrets;
use crate::store::Replica;
use crate::store::calls::{FinishedCall, RecordedCall, visit_booked_since};

pub(super) fn writer_loop(
    mut replica: Replica,
    settings_path: PathBuf,
    commands: Receiver<Command>,
    stop: Receiver<()>,
    events: EventSink,
) {
    // Checkpoints on a thread of their own: a COMMIT (a call being recorded
    // while the next one rings) never copies the WAL back itself.
    let _checkpointer = match replica.checkpoint_in_background() {
        Ok(c) => Some(c),
        Err(e) => {
            tracing::warn!(error = %e, "checkpoints stay inside the writer's commits");
            None
        }
    };
    // Until the user is known, the rights of an operator.
    let mut rights = RoleCode::Operator.default_rights();
    let mut stopping = false;
    while let Some(command) = next(&commands, &stop, &mut stopping) {
        if let Some((kind, what)) = saving(&command)
            && !rights.may_save(what)
        {
            let error = Message::new("err-no-right-to-save");
            events.send(match command {
                Command::CompleteTask { task_id } => {
                    tracing::info!(task = %task_id, "\"Done\" on a notification refused: no right to work on tasks");
                    Event::TaskDone { task_id, result: Err(error) }
                }
                _ => Event::SaveFailed { kind, error },
            });
            continue;
        }
        let saved = |kind, result: crate::store::Result<String>| match result {
            Ok(id) => Event::Saved { kind, id },
            Err(e) => Event::SaveFailed { kind, error: Message::from(&e) },
        };
        let event = match command {
            Command::SavePerson(p) => saved(RecordKind::Person, replica.save_person(&p)),
            Command::SaveInquiry { record, operator, draft_key } => {
                saved(RecordKind::Inquiry, replica.save_inquiry(&record, operator.as_deref(), draft_key.as_deref()))
            }
            Command::SaveTask { record, author } => {
                saved(RecordKind::Task, replica.save_task(&record, author.as_deref()))
            }
            Command::SaveDeal(d) => saved(RecordKind::Deal, replica.save_deal(&d)),
            Command::SaveVisit(v) => saved(RecordKind::Visit, replica.save_visit(&v)),
            Command::SaveTaskTemplate(t) => saved(RecordKind::TaskTemplate, replica.save_task_template(&t)),
            Command::SaveSettings(s) => match s.save(&settings_path) {
                Ok(()) => Event::SettingsSaved,
                Err(e) => Event::SettingsFailed(Message::from(&e)),
            },
            Command::StoreSipPassword { account, password } => {
                match secrets::store(&secrets::Secret::Sip { account }, &password) {
                    Ok(()) => Event::SecretStored,
                    Err(e) => Event::SecretFailed(Message::from(&e)),
                }
            }
            Command::ListAudioDevices => {
                let (inputs, outputs) = audio_devices();
                Event::AudioDevices { inputs, outputs }
            }
            Command::RecordCall(call) => match record(&mut replica, &call) {
                Ok((recorded, visit_booked)) => Event::CallRecorded { recorded, result: call.result, visit_booked },
                Err(e) => Event::SaveFailed { kind: RecordKind::Call, error: Message::from(&e) },
            },
            Command::SaveDraft { key, form } => match replica.save_draft(&key, &form) {
                Ok(()) => continue,
                Err(e) => Event::SaveFailed { kind: RecordKind::Draft, error: Message::from(&e) },
            },
            Command::SetOperatorStatus { user_id, status } => match replica.set_operator_status(&user_id, status) {
                Ok(()) => Event::TeamChanged,
                Err(e) => Event::SaveFailed { kind: RecordKind::Person, error: Message::from(&e) },
            },
            // Only the clinic head changes rights.
            Command::SetUserRight { .. } if !rights.has(Right::AllCrm) => {
                Event::SaveFailed { kind: RecordKind::Person, error: Message::new("err-no-right-to-save") }
            }
            Command::SetUserRight { user_id, right, granted } => match replica.set_user_right(&user_id, right, granted)
            {
                Ok(()) => Event::TeamChanged,
                Err(e) => Event::SaveFailed { kind: RecordKind::Person, error: Message::from(&e) },
            },
            Command::AcknowledgeConflict(id) => match crate::sync::resolve_conflict(replica.conn(), id) {
                Ok(_) => Event::TeamChanged,
                Err(e) => Event::SettingsFailed(Message::new("err-database").with("detail", e)),
            },
            Command::SetRights(new) => {
                rights = new;
                continue;
            }
            Command::DeleteDraft { key } => match replica.delete_draft(&key) {
                Ok(()) => continue,
                Err(e) => Event::SaveFailed { kind: RecordKind::Draft, error: Message::from(&e) },
            },
            Command::CompleteTask { task_id } => {
                let result = crate::notify::complete(&mut replica, &task_id).map_err(|e| Message::from(&e));
                Event::TaskDone { task_id, result }
            }
            Command::SnoozeTask { task_id } => match crate::notify::snooze(&mut replica, &task_id) {
                Ok(()) => continue,
                Err(e) => Event::SaveFailed { kind: RecordKind::Task, error: Message::from(&e) },
            },
            Command::MarkNotified { notices, via, done } => {
                let result = crate::notify::mark_notified(&mut replica, &notices, via);
                // The notifier may have stopped meanwhile: nobody to tell.
                let _ = done.send(result.map_err(|e| e.to_string()));
                continue;
            }
        };
        events.send(event);
    }
}

/// The next command to carry out. Once the window shuts the services down
/// (`stop` is dropped), what is queued is still done, then none: a sender
/// kept by a notification waiting for a click does not keep the writer up.
fn next(commands: &Receiver<Command>, stop: &Receiver<()>, stopping: &mut bool) -> Option<Command> {
    if *stopping {
        return commands.try_recv().ok();
    }
    crossbeam_channel::select! {
        recv(commands) -> command => command.ok(),
        recv(stop) -> _ => {
            *stopping = true;
            commands.try_recv().ok()
        }
    }
}

/// What a command saves, for the rights check.
fn saving(command: &Command) -> Option<(RecordKind, Saving)> {
    Some(match command {
        Command::SavePerson(_) => (RecordKind::Person, Saving::Person),
        Command::SaveInquiry { .. } => (RecordKind::Inquiry, Saving::Inquiry),
        Command::SaveTask { record, .. } if record.id.is_none() => (RecordKind::Task, Saving::NewTask),
        Command::SaveTask { .. } => (RecordKind::Task, Saving::Task),
        // Closing a task from its notification is saving it done.
        Command::CompleteTask { .. } => (RecordKind::Task, Saving::Task),
        Command::SaveDeal(_) => (RecordKind::Deal, Saving::Deal),
        Command::SaveVisit(_) => (RecordKind::Visit, Saving::Visit),
        Command::SaveTaskTemplate(_) => (RecordKind::TaskTemplate, Saving::TaskTemplate),
        _ => return None,
    })
}

/// Records a call; says whether a visit was booked while it went on.
fn record(replica: &mut Replica, call: &FinishedCall) -> crate::store::Result<(RecordedCall, bool)> {
    let recorded = replica.record_call(call)?;
    let booked = match (&call.person_id, call.answered_at) {
        (Some(person), Some(answered)) => visit_booked_since(replica.conn(), person, answered)?,
        _ => false,
    };
    Ok((recorded, booked))
}

/// Names of the capture and playback devices cpal sees.
fn audio_devices() -> (Vec<String>, Vec<String>) {
    use cpal::traits::{DeviceTrait, HostTrait};
    let host = cpal::default_host();
    let names = |devices: Result<_, _>| -> Vec<String> {
        match devices {
            Ok(devices) => {
                let devices: Box<dyn Iterator<Item = cpal::Device>> = Box::new(devices);
                devices.filter_map(|d| d.description().ok().map(|d| d.name().to_owned())).collect()
            }
            Err(_) => Vec::new(),
        }
    };
    (names(host.input_devices()), names(host.output_devices()))
}

#[cfg(test)]
mod tests {
    use super::super::Services;
    use super::super::tests::next_event;
    use super::*;

    /// A modified window that shows a button it should not is still refused
    /// by the writer.
    #[test]
    fn the_command_layer_refuses_what_the_rights_do_not_allow() {
        let dir = tempfile::tempdir().unwrap();
        let replica = Replica::open(&dir.path().join("r.sqlite")).unwrap();
        let services = Services::start(replica, dir.path().join("settings.toml"), egui::Context::default());
        services.command(Command::SetRights(RoleCode::Nurse.default_rights()));
        let inquiry = InquiryForm { phone: "+79161234567".into(), reason_id: Some("r".into()), ..Default::default() }
            .validate(Country::Ru)
            .unwrap();
        services.command(Command::SaveInquiry { record: inquiry, operator: None, draft_key: None });
        match next_event(&services) {
            Event::SaveFailed { kind: RecordKind::Inquiry, error } => assert_eq!(error.key, "err-no-right-to-save"),
            other => panic!("expected a refusal, got {other:?}"),
        }
        services.shutdown();
        let conn = rusqlite::Connection::open(dir.path().join("r.sqlite")).unwrap();
        let n: i64 = conn.query_row("SELECT count(*) FROM inquiries", [], |r| r.get(0)).unwrap();
        assert_eq!(n, 0);
    }

    /// Task templates are the setup admin's: an operator's window that
    /// sent one anyway is refused, and nothing is written or queued.
    #[test]
    fn the_writer_refuses_a_template_without_the_dictionaries_right() {
        let dir = tempfile::tempdir().unwrap();
        let mut replica = Replica::open(&dir.path().join("r.sqlite")).unwrap();
        let opts = crate::demo::DemoOptions { patients: 5, calls: 5, seed: 1, now: now_millis() };
        crate::demo::generate(&mut replica, &opts, &mut |_| {}).unwrap();
        let task_type: String =
            replica.conn().query_row("SELECT id FROM task_types LIMIT 1", [], |r| r.get(0)).unwrap();
        let count = |conn: &rusqlite::Connection| -> i64 {
            conn.query_row("SELECT count(*) FROM task_templates", [], |r| r.get(0)).unwrap()
        };
        let before = count(replica.conn());
        let services = Services::start(replica, dir.path().join("settings.toml"), egui::Context::default());
        let template = TaskTemplateForm {
            task_type_id: Some(task_type),
            title: "Напомнить о вакцинации".into(),
            deadline_offset_min: "60".into(),
            ..Default::default()
        }
        .validate()
        .unwrap();
        services.command(Command::SetRights(RoleCode::Operator.default_rights()));
        services.command(Command::SaveTaskTemplate(template.clone()));
        match next_event(&services) {
            Event::SaveFailed { kind: RecordKind::TaskTemplate, error } => {
                assert_eq!(error.key, "err-no-right-to-save")
            }
            other => panic!("expected a refusal, got {other:?}"),
        }
        services.command(Command::SetRights(RoleCode::Admin.default_rights()));
        services.command(Command::SaveTaskTemplate(template));
        assert!(matches!(next_event(&services), Event::Saved { kind: RecordKind::TaskTemplate, .. }));
        services.shutdown();
        let conn = rusqlite::Connection::open(dir.path().join("r.sqlite")).unwrap();
        assert_eq!(count(&conn), before + 1, "only the admin's save is kept");
        let queued: i64 = conn
            .query_row("SELECT count(*) FROM outbox WHERE table_name = 'task_templates'", [], |r| r.get(0))
            .unwrap();
        assert_eq!(queued, 1, "queued for sync in the same transaction");
    }
}

//! The reader thread: answers the window's [`Query`]s through a read-only
//! connection of its own (WAL: it never waits for the writer).

use crossbeam_channel::Receiver;

use super::message::Message;
use super::{Event, EventSink, FormRef, ListKind, LoadedForm, Query, Rows};
use crate::store::calls::{drafts, missed_calls};
use crate::store::queries::{self, *};
use crate::store::{Replica, forms, search};

pub(super) fn reader_loop(path: &std::path::Path, queries: Receiver<Query>, events: EventSink) {
    let replica = match Replica::open_read_only(path) {
        Ok(r) => r,
        Err(e) => return events.send(Event::ReadFailed(Message::from(&e))),
    };
    let conn = replica.conn();
    while let Ok(first) = queries.recv() {
        // Answer only the newest page request of each list: when the operator
        // scrolls fast, pages scrolled past are not worth reading.
        let mut batch = vec![first];
        batch.extend(queries.try_iter());
        let mut newest_pages: Vec<(ListKind, u64, usize)> = Vec::new();
        for q in batch.iter().rev() {
            if let Query::Page { list, generation, page, .. } = q
                && newest_pages.iter().filter(|(l, g, _)| l == list && g == generation).count() < 6
            {
                newest_pages.push((*list, *generation, *page));
            }
        }
        for q in batch {
            if let Query::Page { list, generation, page, .. } = &q
                && !newest_pages.contains(&(*list, *generation, *page))
            {
                continue;
            }
            let event = answer(conn, q).unwrap_or_else(|e| Event::ReadFailed(Message::from(&e)));
            events.send(event);
        }
    }
}

fn answer(conn: &rusqlite::Connection, query: Query) -> crate::store::Result<Event> {
    Ok(match query {
        Query::Count { list, generation, user } => {
            let user = user.as_deref();
            let total = match list {
                ListKind::Calls(f) => count_calls(conn, f, user)?,
                ListKind::Inquiries(f) => count_inquiries(conn, f)?,
                ListKind::Tasks(f) => count_tasks(conn, f, user)?,
            };
            Event::Count { list, generation, total }
        }
        Query::Page { list, generation, page, user } => {
            let offset = page * PAGE_SIZE;
            let user = user.as_deref();
            let rows = match list {
                ListKind::Calls(f) => Rows::Calls(calls_page(conn, f, user, offset, PAGE_SIZE)?),
                ListKind::Inquiries(f) => Rows::Inquiries(inquiries_page(conn, f, offset, PAGE_SIZE)?),
                ListKind::Tasks(f) => Rows::Tasks(tasks_page(conn, f, user, offset, PAGE_SIZE)?),
            };
            Event::Page { list, generation, page, rows }
        }
        Query::Search { seq, text } => Event::SearchResults { seq, hits: search::search_people(conn, &text, 50)? },
        Query::Person { id } => {
            let history = queries::person_history(conn, &id)?.map(Box::new);
            Event::Person { id, history }
        }
        Query::Board { deal_type_id } => {
            let columns = deal_board(conn, &deal_type_id, 100)?;
            Event::Board { deal_type_id, columns }
        }
        Query::Dictionaries => Event::Dictionaries(Box::new(dictionaries(conn)?)),
        Query::User { login } => {
            let found = user_with_rights(conn, &login)?;
            Event::User { login, found }
        }
        Query::Form(form) => Event::Form(match form {
            FormRef::Person(id) => forms::person(conn, &id)?.map(LoadedForm::Person),
            FormRef::Inquiry(id) => forms::inquiry(conn, &id)?.map(LoadedForm::Inquiry),
            FormRef::Task(id) => forms::task(conn, &id)?.map(LoadedForm::Task),
            FormRef::Deal(id) => forms::deal(conn, &id)?.map(LoadedForm::Deal),
            FormRef::Visit(id) => forms::visit(conn, &id)?.map(LoadedForm::Visit),
        }),
        Query::Drafts => Event::Drafts(drafts(conn)?),
        Query::MissedCalls => Event::MissedCalls(missed_calls(conn, 500)?),
        Query::Team => Event::Team(queries::team(conn)?),
        Query::Conflicts => match crate::sync::conflicts(conn) {
            Ok(list) => Event::Conflicts(list),
            Err(e) => Event::ReadFailed(Message::new("err-database").with("detail", e)),
        },
        Query::UserRights { user_id } => {
            let rows = queries::user_rights(conn, &user_id)?;
            Event::UserRights { user_id, rows }
        }
        Query::TaskHistory { task_id } => {
            let changes = crate::store::history::task_history(conn, &task_id)?;
            Event::TaskHistory { task_id, changes }
        }
        Query::OpenDeals { person_id } => {
            let deals = queries::open_deals_of(conn, &person_id)?;
            Event::OpenDeals { person_id, deals }
        }
    })
}

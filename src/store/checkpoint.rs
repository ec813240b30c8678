//! WAL checkpoints off the writer's path.
//!
//! SQLite copies the write-ahead log back into the database file (a
//! checkpoint) when the log passes 1,000 pages, inside the COMMIT of whichever
//! transaction crossed the line. On a replica of a million calls that COMMIT
//! then takes tens to hundreds of milliseconds, and the call being recorded,
//! and the caller card of the next call behind it, wait for it. A
//! [`Checkpointer`] turns that off on the writer's connection and does the
//! copying from a thread of its own, with a connection of its own, in
//! PASSIVE mode: it never takes the write lock, so the writer never waits for
//! it and it never waits for readers.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::thread::JoinHandle;
use std::time::Duration;

use crossbeam_channel::{Sender, bounded, select};
use rusqlite::{Connection, OpenFlags};

use super::{Replica, Result, StoreError};

/// The log's length, in pages, from which a commit asks for a checkpoint:
/// SQLite's own automatic threshold, so the log stays as short as it would
/// without us, only the copying moves off the writer.
const THRESHOLD_PAGES: i32 = 1000;

/// The background checkpoint thread of one replica; stopped (after a last
/// checkpoint) when dropped.
pub struct Checkpointer {
    stop: Option<Sender<()>>,
    thread: Option<JoinHandle<()>>,
    copied: Arc<AtomicU64>,
    rounds: Arc<AtomicU64>,
}

impl Replica {
    /// Moves this connection's checkpoints to a background thread: the
    /// automatic checkpoint inside COMMIT is replaced by a WAL hook that,
    /// once the log passes [`THRESHOLD_PAGES`], only nudges the returned
    /// [`Checkpointer`] (a non-blocking send) to copy the log back. An idle
    /// replica wakes nobody. Keep it alive as long as the writer: without it
    /// the log only grows.
    pub fn checkpoint_in_background(&mut self) -> Result<Checkpointer> {
        let path = self.path().to_owned();
        let conn =
            Connection::open_with_flags(&path, OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX)
                .map_err(|e| StoreError::about(&path, e))?;
        conn.busy_timeout(Duration::from_secs(5)).map_err(|e| StoreError::about(&path, e))?;
        let (nudge, nudged) = bounded::<()>(1);
        // Called by SQLite after each commit, with the log's length; it runs
        // on the writer's thread, so it does nothing but a try_send (a full
        // channel means a checkpoint is already asked for).
        self.conn
            .wal_hook(Some(move |_: &mut rusqlite::hooks::Wal, pages: std::ffi::c_int| {
                if pages >= THRESHOLD_PAGES {
                    let _ = nudge.try_send(());
                }
                Ok(())
            }))
            .map_err(|e| StoreError::about(&path, e))?;
        let (stop, stopped) = bounded::<()>(1);
        let copied = Arc::new(AtomicU64::new(0));
        let rounds = Arc::new(AtomicU64::new(0));
        let (counter, round_counter) = (copied.clone(), rounds.clone());
        let thread = std::thread::Builder::new()
            .name("replica-checkpoint".into())
            .spawn(move || {
                loop {
                    // A dropped hook (the writer's connection closed) ends
                    // the thread like a stop does.
                    let last = select! {
                        recv(nudged) -> got => got.is_err(),
                        recv(stopped) -> _ => true,
                    };
                    round_counter.fetch_add(1, Ordering::Relaxed);
                    match passive_checkpoint(&conn) {
                        Ok(frames) => {
                            counter.fetch_add(frames, Ordering::Relaxed);
                        }
                        Err(e) => tracing::warn!(path = %path.display(), error = %e, "WAL checkpoint failed"),
                    }
                    if last {
                        break;
                    }
                }
            })
            .map_err(StoreError::Thread)?;
        Ok(Checkpointer { stop: Some(stop), thread: Some(thread), copied, rounds })
    }
}

/// One PASSIVE checkpoint: the log frames it copied into the database file.
fn passive_checkpoint(conn: &Connection) -> rusqlite::Result<u64> {
    // (busy, frames in the log, frames checkpointed); -1 when not in WAL mode.
    let (_busy, _log, done): (i64, i64, i64) =
        conn.query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))?;
    Ok(done.max(0) as u64)
}

impl Checkpointer {
    /// Frames copied back so far, summed over the checkpoints (for tests and
    /// figures: it grows while the log is being emptied).
    pub fn copied_frames(&self) -> u64 {
        self.copied.load(Ordering::Relaxed)
    }

    /// Checkpoints run so far (for tests: an idle replica runs none).
    pub fn rounds(&self) -> u64 {
        self.rounds.load(Ordering::Relaxed)
    }
}

impl Drop for Checkpointer {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn commits_no_longer_checkpoint_and_the_thread_empties_the_log() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("replica.db");
        let mut replica = Replica::open(&path).unwrap();
        let checkpointer = replica.checkpoint_in_background().unwrap();

        // Small commits, far below the threshold: nobody is woken.
        replica.conn().execute("CREATE TABLE scratch(k TEXT, v TEXT)", []).unwrap();
        for i in 0..20 {
            replica.conn().execute("INSERT INTO scratch(k, v) VALUES (?1, 'small')", [format!("s{i}")]).unwrap();
        }
        assert_eq!(checkpointer.rounds(), 0, "an idle or lightly written replica runs no checkpoint");

        // Well past SQLite's 1,000-page automatic threshold.
        let blob = "x".repeat(3000);
        for i in 0..1500 {
            replica.conn().execute("INSERT INTO scratch(k, v) VALUES (?1, ?2)", (format!("k{i}"), &blob)).unwrap();
        }
        // The thread copies the log back: wait for it (no fixed sleep).
        let deadline = std::time::Instant::now() + Duration::from_secs(30);
        while checkpointer.copied_frames() < 1000 {
            assert!(std::time::Instant::now() < deadline, "the log was not checkpointed in 30 s");
            std::thread::sleep(Duration::from_millis(20));
        }
        drop(checkpointer);
        // Its last checkpoint on stop leaves every frame copied, so the next
        // writer restarts the log from its beginning.
        let reader = Connection::open(&path).unwrap();
        let (_, log, done): (i64, i64, i64) =
            reader.query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?))).unwrap();
        assert!(log > 0, "the writes went through the log");
        assert_eq!(log, done, "frames left uncopied after the checkpointer stopped");
    }
}

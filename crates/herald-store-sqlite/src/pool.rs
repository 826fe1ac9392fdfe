//! The connections and the threads that own them. SQLite calls block, so none of them runs on
//! the async runtime: callers send a job to a thread and await its reply.
//!
//! **Writes** go to ONE writer thread, owner of the only read-write connection. It blocks for a
//! job, takes every job already queued behind it (up to `MAX_GROUP`), and runs them all in one
//! `BEGIN IMMEDIATE` transaction, each inside its own `SAVEPOINT` so a job that fails rolls
//! back alone. It commits once — one WAL fsync for the whole group — and only then answers the
//! jobs; if the commit fails, every job of the group fails with `Unavailable`. A single writer
//! also makes positions gap-free without locks of our own.
//!
//! **Reads** go to `READERS` threads, each owning a read-only connection and taking jobs from
//! one shared queue. Every read job runs in its own read transaction, so a job that reads
//! several tables sees one snapshot. In WAL mode readers never wait for the writer.
//!
//! A job whose caller stops waiting still runs (and a write still commits): the caller only
//! loses the answer, as with any request whose client hangs up after sending it.

use std::mem;
use std::panic::{self, AssertUnwindSafe};
use std::path::Path;
use std::sync::mpsc;
use std::sync::{Arc, Mutex, PoisonError};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use herald_engine::store::StoreError;
use rusqlite::config::DbConfig;
use rusqlite::{Connection, OpenFlags, Transaction, TransactionBehavior};
use tokio::sync::oneshot;

use crate::codec::db;
use crate::schema;

/// The most jobs one commit covers: bounds how long the first job of a group waits for the
/// others to run.
const MAX_GROUP: usize = 512;
const READERS: usize = 4;
/// How long a connection waits for a lock held by another process (the operator CLI writing
/// while the server runs) before failing with `Unavailable`.
const BUSY_TIMEOUT: Duration = Duration::from_millis(5000);
/// Enough for every statement the store prepares, so `prepare_cached` never re-prepares.
const STATEMENT_CACHE: usize = 128;

type ReadJob = Box<dyn FnOnce(&mut Connection) + Send>;

pub(crate) struct Pool {
    writer: mpsc::Sender<Box<dyn WriteJob>>,
    readers: mpsc::Sender<ReadJob>,
    threads: Vec<JoinHandle<()>>,
}

impl Pool {
    /// Opens (creating if needed) and migrates the database, then starts the threads.
    pub(crate) fn open(path: &Path) -> Result<Pool, StoreError> {
        let mut writer = Connection::open(path).map_err(db)?;
        configure_writer(&writer)?;
        schema::migrate(&mut writer)?;
        // Opened after the writer switched the file to WAL, so the -wal and -shm files exist
        // and read-only connections can use them.
        let readers = (0..READERS)
            .map(|_| open_reader(path))
            .collect::<Result<Vec<_>, _>>()?;

        let (writer_tx, writer_rx) = mpsc::channel();
        let (readers_tx, readers_rx) = mpsc::channel();
        let readers_rx = Arc::new(Mutex::new(readers_rx));
        let mut pool = Pool {
            writer: writer_tx,
            readers: readers_tx,
            threads: Vec::with_capacity(READERS + 1),
        };
        pool.spawn("herald-sqlite-writer".into(), move || {
            write_loop(writer, writer_rx)
        })?;
        for (i, conn) in readers.into_iter().enumerate() {
            let queue = Arc::clone(&readers_rx);
            pool.spawn(format!("herald-sqlite-reader-{i}"), move || {
                read_loop(conn, queue)
            })?;
        }
        Ok(pool)
    }

    fn spawn(
        &mut self,
        name: String,
        run: impl FnOnce() + Send + 'static,
    ) -> Result<(), StoreError> {
        let handle = thread::Builder::new()
            .name(name)
            .spawn(run)
            .map_err(|e| StoreError::Unavailable(format!("cannot start a store thread: {e}")))?;
        self.threads.push(handle);
        Ok(())
    }

    /// Runs `work` on the writer and answers once its group has committed.
    pub(crate) async fn write<T, F>(&self, work: F) -> Result<T, StoreError>
    where
        T: Send + 'static,
        F: FnOnce(&Transaction<'_>) -> Result<T, StoreError> + Send + 'static,
    {
        let (reply, answer) = oneshot::channel();
        let job = Box::new(Pending {
            queued_at: Instant::now(),
            work: Some(work),
            outcome: None,
            reply,
        });
        self.writer.send(job).map_err(|_| stopped())?;
        answer.await.map_err(|_| stopped())?
    }

    /// Runs `work` on a reader, inside one read transaction.
    pub(crate) async fn read<T, F>(&self, work: F) -> Result<T, StoreError>
    where
        T: Send + 'static,
        F: FnOnce(&Transaction<'_>) -> Result<T, StoreError> + Send + 'static,
    {
        let (reply, answer) = oneshot::channel();
        let job: ReadJob = Box::new(move |conn: &mut Connection| {
            let outcome = panic::catch_unwind(AssertUnwindSafe(|| {
                let tx = conn.transaction().map_err(db)?;
                work(&tx)
            }))
            .unwrap_or_else(|_| Err(StoreError::Unavailable("a read job panicked".into())));
            // The caller may have stopped waiting; nothing to undo for a read.
            let _ = reply.send(outcome);
        });
        self.readers.send(job).map_err(|_| stopped())?;
        answer.await.map_err(|_| stopped())?
    }
}

impl Drop for Pool {
    /// Closes the queues, then waits for the threads: when the store is gone, every
    /// connection is closed (and the WAL checkpointed), so the file can be reopened, copied
    /// or deleted at once. Callers hold the store while they wait, so the only jobs left are
    /// those whose callers gave up; the threads run them (a write still commits) and stop.
    fn drop(&mut self) {
        drop(mem::replace(&mut self.writer, mpsc::channel().0));
        drop(mem::replace(&mut self.readers, mpsc::channel().0));
        for thread in self.threads.drain(..) {
            let _ = thread.join();
        }
    }
}

fn stopped() -> StoreError {
    StoreError::Unavailable("the store's threads have stopped".into())
}

/// What every connection gets: the lock wait, a statement cache big enough for every
/// statement, and query plans that do not depend on bound values (QPSG). Without it SQLite
/// compiled a cached statement again at many of its runs (see `plans`), and our plans are
/// pinned by hand where it matters anyway.
pub(crate) fn tune(conn: &Connection) -> Result<(), StoreError> {
    conn.busy_timeout(BUSY_TIMEOUT).map_err(db)?;
    conn.set_prepared_statement_cache_capacity(STATEMENT_CACHE);
    conn.set_db_config(DbConfig::SQLITE_DBCONFIG_ENABLE_QPSG, true)
        .map_err(db)?;
    Ok(())
}

/// `synchronous=FULL`: in WAL mode it fsyncs the WAL at every commit, so a write that was
/// acknowledged survives `kill -9` *and* power loss. `NORMAL` would fsync only at checkpoints
/// and could lose the last commits on power loss, yet callers acknowledge (HTTP 2xx) as soon as
/// a write returns. Group commit pays for the fsync once per group, not once per write.
fn configure_writer(conn: &Connection) -> Result<(), StoreError> {
    tune(conn)?;
    let mode: String = conn
        .pragma_update_and_check(None, "journal_mode", "WAL", |row| row.get(0))
        .map_err(db)?;
    if !mode.eq_ignore_ascii_case("wal") {
        return Err(StoreError::Unavailable(format!(
            "sqlite refused WAL mode (got {mode}); the store needs a file on a local disk"
        )));
    }
    conn.pragma_update(None, "synchronous", "FULL").map_err(db)
}

fn open_reader(path: &Path) -> Result<Connection, StoreError> {
    let flags = OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX;
    let conn = Connection::open_with_flags(path, flags).map_err(db)?;
    tune(&conn)?;
    Ok(conn)
}

fn read_loop(mut conn: Connection, queue: Arc<Mutex<mpsc::Receiver<ReadJob>>>) {
    loop {
        // The lock is held only while waiting for a job: one idle reader waits on the
        // channel, the others on the lock.
        let next = queue.lock().unwrap_or_else(PoisonError::into_inner).recv();
        match next {
            Ok(job) => job(&mut conn),
            Err(_) => return,
        }
    }
}

fn write_loop(mut conn: Connection, queue: mpsc::Receiver<Box<dyn WriteJob>>) {
    while let Ok(first) = queue.recv() {
        let mut group = vec![first];
        group.extend(queue.try_iter().take(MAX_GROUP - 1));
        let started = Instant::now();
        // How long writes queue for the writer, and how long a group holds it: the two halves
        // of a write's latency, and the first place to look when acknowledgements slow down.
        for job in &group {
            metrics::histogram!("herald_store_write_wait_seconds")
                .record(started.duration_since(job.queued_at()).as_secs_f64());
        }
        let committed = commit_group(&mut conn, &mut group);
        metrics::histogram!("herald_store_commit_seconds").record(started.elapsed().as_secs_f64());
        metrics::histogram!("herald_store_commit_jobs").record(group.len() as f64);
        let failure = committed.err().map(|e| {
            tracing::error!(error = %e, jobs = group.len(), "sqlite group commit failed");
            format!("sqlite commit failed: {e}")
        });
        for job in group {
            job.answer(failure.as_deref());
        }
    }
}

/// Runs the group in one transaction and commits it. An error means nothing of the group was
/// committed (dropping the transaction rolls it back).
fn commit_group(conn: &mut Connection, group: &mut [Box<dyn WriteJob>]) -> rusqlite::Result<()> {
    let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
    for job in group.iter_mut() {
        exec(&tx, "SAVEPOINT job")?;
        if !job.run(&tx) {
            exec(&tx, "ROLLBACK TO job")?;
        }
        exec(&tx, "RELEASE job")?;
    }
    tx.commit()
}

fn exec(tx: &Transaction<'_>, sql: &str) -> rusqlite::Result<()> {
    tx.prepare_cached(sql)?.execute([])?;
    Ok(())
}

/// A write job with its result type erased, so one queue carries them all.
trait WriteJob: Send {
    /// Runs the work (inside its savepoint); answers whether it succeeded.
    fn run(&mut self, tx: &Transaction<'_>) -> bool;
    /// Answers the caller once the group's fate is known. `group_failure` is set when the group
    /// did not commit, and then replaces the job's own outcome.
    fn answer(self: Box<Self>, group_failure: Option<&str>);
    /// When the job was handed to the writer.
    fn queued_at(&self) -> Instant;
}

struct Pending<T, F> {
    queued_at: Instant,
    work: Option<F>,
    outcome: Option<Result<T, StoreError>>,
    reply: oneshot::Sender<Result<T, StoreError>>,
}

impl<T, F> WriteJob for Pending<T, F>
where
    T: Send,
    F: FnOnce(&Transaction<'_>) -> Result<T, StoreError> + Send,
{
    fn run(&mut self, tx: &Transaction<'_>) -> bool {
        let Some(work) = self.work.take() else {
            return false;
        };
        // A panicking job must not take the writer (and every later write) down with it; its
        // savepoint is rolled back like any failure.
        let outcome = panic::catch_unwind(AssertUnwindSafe(|| work(tx)))
            .unwrap_or_else(|_| Err(StoreError::Unavailable("a write job panicked".into())));
        let ok = outcome.is_ok();
        self.outcome = Some(outcome);
        ok
    }

    fn queued_at(&self) -> Instant {
        self.queued_at
    }

    fn answer(self: Box<Self>, group_failure: Option<&str>) {
        let outcome = match (group_failure, self.outcome) {
            (None, Some(outcome)) => outcome,
            (Some(reason), _) => Err(StoreError::Unavailable(reason.to_string())),
            (None, None) => Err(StoreError::Unavailable("a write job did not run".into())),
        };
        // The caller may have stopped waiting; the write stands either way.
        let _ = self.reply.send(outcome);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn memory() -> Connection {
        let conn = Connection::open_in_memory().unwrap();
        conn.execute_batch("CREATE TABLE t (v INTEGER NOT NULL)")
            .unwrap();
        conn
    }

    fn job(
        work: impl FnOnce(&Transaction<'_>) -> Result<i64, StoreError> + Send + 'static,
    ) -> (
        Box<dyn WriteJob>,
        oneshot::Receiver<Result<i64, StoreError>>,
    ) {
        let (reply, answer) = oneshot::channel();
        let job = Box::new(Pending {
            queued_at: Instant::now(),
            work: Some(work),
            outcome: None,
            reply,
        });
        (job, answer)
    }

    fn insert(v: i64) -> impl FnOnce(&Transaction<'_>) -> Result<i64, StoreError> + Send {
        move |tx| {
            tx.execute("INSERT INTO t (v) VALUES (?1)", [v])
                .map_err(db)?;
            Ok(v)
        }
    }

    fn rows(conn: &Connection) -> Vec<i64> {
        let mut stmt = conn.prepare("SELECT v FROM t ORDER BY v").unwrap();
        stmt.query_map([], |r| r.get(0))
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap()
    }

    #[test]
    fn a_failing_job_rolls_back_alone_and_the_group_commits() {
        let mut conn = memory();
        let (a, a_answer) = job(insert(1));
        let (b, b_answer) = job(|tx| {
            insert(2)(tx)?;
            Err(StoreError::AlreadyExists)
        });
        let (c, c_answer) = job(|_| panic!("a bug in a job"));
        let (d, d_answer) = job(insert(4));
        let mut group = vec![a, b, c, d];
        commit_group(&mut conn, &mut group).unwrap();
        for job in group {
            job.answer(None);
        }
        assert_eq!(rows(&conn), [1, 4]);
        assert_eq!(a_answer.blocking_recv().unwrap().unwrap(), 1);
        assert!(matches!(
            b_answer.blocking_recv().unwrap(),
            Err(StoreError::AlreadyExists)
        ));
        assert!(matches!(
            c_answer.blocking_recv().unwrap(),
            Err(StoreError::Unavailable(_))
        ));
        assert_eq!(d_answer.blocking_recv().unwrap().unwrap(), 4);
    }

    #[test]
    fn a_failed_commit_fails_every_job_of_the_group() {
        let mut conn = memory();
        // A deferred foreign key is checked at COMMIT: a realistic way for a commit to fail.
        conn.execute_batch(
            "PRAGMA foreign_keys = ON;
             CREATE TABLE parent (id INTEGER PRIMARY KEY);
             CREATE TABLE child (p INTEGER REFERENCES parent (id) DEFERRABLE INITIALLY DEFERRED);",
        )
        .unwrap();
        let (a, a_answer) = job(insert(1));
        let (b, b_answer) = job(|tx| {
            tx.execute("INSERT INTO child (p) VALUES (99)", [])
                .map_err(db)?;
            Ok(2)
        });
        let mut group = vec![a, b];
        let failure = commit_group(&mut conn, &mut group).unwrap_err().to_string();
        for job in group {
            job.answer(Some(&failure));
        }
        assert!(rows(&conn).is_empty(), "nothing of the group is committed");
        assert!(matches!(
            a_answer.blocking_recv().unwrap(),
            Err(StoreError::Unavailable(_))
        ));
        assert!(matches!(
            b_answer.blocking_recv().unwrap(),
            Err(StoreError::Unavailable(_))
        ));
    }
}

//! The engine loop: evaluates the outbox, fires due timers, reacts to users coming back and
//! going away, and sleeps until the next timer or signal.

use std::time::Duration;

use herald_engine::store::StoreError;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

use crate::Runtime;
use crate::notify::{Signal, away, evaluate, health, timers};

/// Events evaluated per committed step: amortises the commit, bounds a step's length.
const BATCH: usize = 128;

/// After a wake-up for new events, how long the engine lets more arrive before it looks: under
/// load every POST wakes it, and evaluating a handful of events per step made many small
/// commits that took the writer from ingest. A few milliseconds keep steps near `BATCH`.
const LINGER: Duration = Duration::from_millis(5);

/// How often, at most, Web Push health checks are swept (in wall-clock time).
const HEALTH_SWEEP: Duration = Duration::from_secs(1);

pub fn spawn(state: Runtime, mut signals: mpsc::UnboundedReceiver<Signal>) -> JoinHandle<()> {
    // Checked even without a signal: events written by another process (the operator CLI),
    // and a backstop should a wake-up be missed.
    let poll = Duration::from_millis(state.settings.engine.poll_ms);
    tokio::spawn(async move {
        let mut last_sweep: Option<std::time::Instant> = None;
        loop {
            if !state.leadership.deciding() {
                // Another node decides: its signals reach it directly; this node's engine
                // waits to be woken by taking the lease over.
                match signals.recv().await {
                    Some(_) => continue,
                    None => return,
                }
            }
            if last_sweep.is_none_or(|at| at.elapsed() >= HEALTH_SWEEP) {
                last_sweep = Some(std::time::Instant::now());
                if let Err(e) = health::sweep(&state).await {
                    tracing::error!(error.message = %e, "web push health check sweep failed");
                }
            }
            match run_once(&state, &mut signals, poll).await {
                Ok(sleep) => {
                    tokio::select! {
                        signal = signals.recv() => match signal {
                            Some(Signal::Wake) => tokio::time::sleep(LINGER).await,
                            Some(signal) => handle(&state, signal).await,
                            None => return,
                        },
                        _ = tokio::time::sleep(sleep) => {}
                    }
                }
                Err(StoreError::Fenced) => {
                    tracing::info!(
                        "the engine lease went to another node mid-step; nothing of the step was written"
                    );
                }
                Err(e) => {
                    tracing::error!(error.message = %e, "notification engine step failed; retrying");
                    tokio::time::sleep(poll).await;
                }
            }
        }
    })
}

async fn handle(state: &Runtime, signal: Signal) {
    match signal {
        Signal::Wake => {}
        Signal::Foreground { tenant, user } => {
            if let Err(e) = timers::foreground(state, &tenant, &user).await {
                tracing::error!(error.message = %e, "cancelling pushes of a returning user failed");
            }
        }
        Signal::Away {
            tenant,
            user,
            since,
        } => away::went(state, &tenant, &user, since).await,
    }
}

/// Does all work that is ready; answers how long to sleep.
async fn run_once(
    state: &Runtime,
    signals: &mut mpsc::UnboundedReceiver<Signal>,
    poll: Duration,
) -> Result<Duration, StoreError> {
    while let Ok(signal) = signals.try_recv() {
        handle(state, signal).await;
    }
    loop {
        let items = state.notify.outbox(BATCH).await?;
        if items.is_empty() {
            break;
        }
        evaluate::batch(state, &items).await?;
    }
    loop {
        // Due threads and due scheduled notifications, up to a batch of each.
        let fired = timers::fire(state, BATCH).await?;
        if fired < BATCH {
            break;
        }
    }
    let now = state.clock.now();
    // The store keeps due times rounded down to the millisecond. Waking at one could be up to
    // 1 ms early, and a round that fires nothing still reads and rewrites every thread it
    // picked, then spins until they are due: the timers fired late by that wasted round.
    let next = state
        .notify
        .next_due()
        .await?
        .map(|due| due + Duration::from_millis(1));
    Ok(match next {
        Some(due) if due <= now => Duration::ZERO,
        Some(due) => poll.min(Duration::try_from(due - now).unwrap_or(poll)),
        None => poll,
    })
}

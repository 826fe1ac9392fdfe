//! Committing one engine step: decisions, timers, deliveries and outbox removal in one
//! transaction.

use herald_engine::notify::record::{NotificationRecord, Status};
use herald_engine::notify::store::{HealthCheck, NotifyCommit, ThreadKey};
use herald_engine::notify::timing::Thread;
use herald_engine::store::StoreError;
use time::OffsetDateTime;

use crate::codec::{Tx, execute, millis, to_json};

pub(crate) async fn commit(
    tx: &Tx<'_>,
    commit: &NotifyCommit,
    now: OffsetDateTime,
) -> Result<(), StoreError> {
    for seq in &commit.evaluated {
        execute(tx, "DELETE FROM outbox WHERE seq = $1", &[seq]).await?;
    }
    for (key, thread) in &commit.threads {
        put_thread(tx, key, thread).await?;
    }
    for (tenant, user, app, state) in &commit.user_states {
        execute(
            tx,
            "INSERT INTO user_states (tenant_id, user_id, app_id, state) VALUES ($1, $2, $3, $4)
             ON CONFLICT (tenant_id, user_id, app_id) DO UPDATE SET state = excluded.state",
            &[
                &tenant.as_str(),
                &user.as_str(),
                &app.as_str(),
                &to_json(state)?,
            ],
        )
        .await?;
    }
    for (tenant, call_id, state) in &commit.calls {
        execute(
            tx,
            "INSERT INTO calls (tenant_id, call_id, state) VALUES ($1, $2, $3)
             ON CONFLICT (tenant_id, call_id) DO UPDATE SET state = excluded.state",
            &[&tenant.as_str(), call_id, &to_json(state)?],
        )
        .await?;
    }
    for record in &commit.records {
        put_record(tx, record).await?;
    }
    for check in &commit.checks {
        put_check(tx, check, now).await?;
    }
    for delivery in &commit.deliveries {
        crate::deliveries::insert(tx, delivery, now, now).await?;
    }
    Ok(())
}

/// A thread with nothing pending and nothing shown is deleted.
async fn put_thread(tx: &Tx<'_>, key: &ThreadKey, thread: &Thread) -> Result<(), StoreError> {
    let (tenant, user, app, conversation) = (
        key.tenant.as_str(),
        key.user.as_str(),
        key.app.as_str(),
        key.conversation.as_str(),
    );
    if *thread == Thread::default() {
        execute(
            tx,
            "DELETE FROM threads
             WHERE tenant_id = $1 AND user_id = $2 AND app_id = $3 AND conversation_id = $4",
            &[&tenant, &user, &app, &conversation],
        )
        .await?;
        return Ok(());
    }
    execute(
        tx,
        "INSERT INTO threads (tenant_id, user_id, app_id, conversation_id, state, due_at)
         VALUES ($1, $2, $3, $4, $5, $6)
         ON CONFLICT (tenant_id, user_id, app_id, conversation_id)
         DO UPDATE SET state = excluded.state, due_at = excluded.due_at",
        &[
            &tenant,
            &user,
            &app,
            &conversation,
            &to_json(thread)?,
            &thread.due_at().map(millis),
        ],
    )
    .await?;
    Ok(())
}

/// Inserted, or replaced by id. Only a scheduled proactive notification has a timer of its
/// own; pending pushes wait on their thread's timer.
async fn put_record(tx: &Tx<'_>, record: &NotificationRecord) -> Result<(), StoreError> {
    let due = record
        .due_at
        .filter(|_| record.status == Status::Scheduled)
        .map(millis);
    execute(
        tx,
        "INSERT INTO notifications (tenant_id, id, user_id, app_id, conversation_id, kind,
                                    status, record, created_at, due_at)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)
         ON CONFLICT (tenant_id, id) DO UPDATE
             SET status = excluded.status, record = excluded.record, due_at = excluded.due_at",
        &[
            &record.tenant_id.as_str(),
            &record.id,
            &record.user_id.as_str(),
            &record.app_id.as_ref().map(|a| a.as_str()),
            &record.conversation_id.as_ref().map(|c| c.as_str()),
            &record.kind.as_str(),
            &record.status.as_str(),
            &to_json(record)?,
            &millis(record.created_at),
            &due,
        ],
    )
    .await?;
    Ok(())
}

async fn put_check(
    tx: &Tx<'_>,
    check: &HealthCheck,
    now: OffsetDateTime,
) -> Result<(), StoreError> {
    execute(
        tx,
        "INSERT INTO device_checks (tenant_id, device_id, app_id, user_id, check_id, sent_at,
                                    deadline, acknowledged_at, expired)
         VALUES ($1, $2, $3, $4, $5, $6, $7, NULL, FALSE)
         ON CONFLICT (tenant_id, device_id) DO UPDATE SET
             app_id = excluded.app_id, user_id = excluded.user_id,
             check_id = excluded.check_id, sent_at = excluded.sent_at,
             deadline = excluded.deadline, acknowledged_at = NULL, expired = FALSE",
        &[
            &check.tenant.as_str(),
            &check.device.as_str(),
            &check.app.as_str(),
            &check.user.as_str(),
            &check.check_id,
            &millis(now),
            &millis(check.deadline),
        ],
    )
    .await?;
    Ok(())
}

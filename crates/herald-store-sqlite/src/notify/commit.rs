//! Committing one engine step.

use herald_engine::notify::store::NotifyCommit;
use herald_engine::notify::timing::Thread;
use herald_engine::store::StoreError;
use rusqlite::{Transaction, params};
use time::OffsetDateTime;

use super::*;
use crate::codec::millis;

pub(crate) fn commit(
    tx: &Transaction<'_>,
    commit: &NotifyCommit,
    now: OffsetDateTime,
) -> Result<(), StoreError> {
    for seq in &commit.evaluated {
        exec(tx, "DELETE FROM outbox WHERE seq = ?1", [seq])?;
    }
    for (key, thread) in &commit.threads {
        let keys = params![
            key.tenant.as_str(),
            key.user.as_str(),
            key.app.as_str(),
            key.conversation.as_str()
        ];
        if *thread == Thread::default() {
            exec(
                tx,
                "DELETE FROM threads WHERE tenant_id = ?1 AND user_id = ?2 AND app_id = ?3 AND conversation_id = ?4",
                keys,
            )?;
            continue;
        }
        let state = to_json(thread)?;
        exec(
            tx,
            "INSERT INTO threads (tenant_id, user_id, app_id, conversation_id, state, due_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6)
             ON CONFLICT (tenant_id, user_id, app_id, conversation_id) DO UPDATE SET state = excluded.state, due_at = excluded.due_at",
            params![key.tenant.as_str(), key.user.as_str(), key.app.as_str(), key.conversation.as_str(), state, thread.due_at().map(millis)],
        )?;
    }
    for (tenant, user, app, state) in &commit.user_states {
        let state = to_json(state)?;
        exec(
            tx,
            "INSERT INTO user_states (tenant_id, user_id, app_id, state) VALUES (?1, ?2, ?3, ?4)
             ON CONFLICT (tenant_id, user_id, app_id) DO UPDATE SET state = excluded.state",
            params![tenant.as_str(), user.as_str(), app.as_str(), state],
        )?;
    }
    for (tenant, call_id, state) in &commit.calls {
        let state = to_json(state)?;
        exec(
            tx,
            "INSERT INTO calls (tenant_id, call_id, state) VALUES (?1, ?2, ?3)
             ON CONFLICT (tenant_id, call_id) DO UPDATE SET state = excluded.state",
            params![tenant.as_str(), call_id, state],
        )?;
    }
    for record in &commit.records {
        let document = to_json(record)?;
        // Only a scheduled proactive notification has a timer of its own; pending pushes wait
        // on their thread's timer.
        let due = record
            .due_at
            .filter(|_| record.status == herald_engine::notify::record::Status::Scheduled)
            .map(millis);
        exec(
            tx,
            "INSERT INTO notifications (tenant_id, id, user_id, app_id, conversation_id, kind, status, record, created_at, due_at)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)
             ON CONFLICT (tenant_id, id) DO UPDATE SET status = excluded.status, record = excluded.record, due_at = excluded.due_at",
            params![
                record.tenant_id.as_str(),
                record.id,
                record.user_id.as_str(),
                record.app_id.as_ref().map(|a| a.as_str()),
                record.conversation_id.as_ref().map(|c| c.as_str()),
                record.kind.as_str(),
                record.status.as_str(),
                document,
                millis(record.created_at),
                due,
            ],
        )?;
    }
    for check in &commit.checks {
        exec(
            tx,
            "INSERT INTO device_checks (tenant_id, device_id, app_id, user_id, check_id, sent_at, deadline, acknowledged_at, expired)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, NULL, 0)
             ON CONFLICT (tenant_id, device_id) DO UPDATE SET app_id = excluded.app_id, user_id = excluded.user_id,
                 check_id = excluded.check_id, sent_at = excluded.sent_at, deadline = excluded.deadline,
                 acknowledged_at = NULL, expired = 0",
            params![
                check.tenant.as_str(),
                check.device.as_str(),
                check.app.as_str(),
                check.user.as_str(),
                check.check_id,
                millis(now),
                millis(check.deadline),
            ],
        )?;
    }
    for delivery in &commit.deliveries {
        crate::deliveries::insert(tx, delivery, now, now)?;
    }
    Ok(())
}

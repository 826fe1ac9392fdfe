//! Query plans of the hot, narrowly keyed queries. Without statistics SQLite likes the primary
//! key's `tenant_id` prefix, which walks every row of the tenant: a badge computed over the
//! whole tenant's memberships made each event cost as much as the tenant is big. These tests
//! fail if a query loses the index made for it.

use rusqlite::Connection;

use crate::{concluded, deliveries, membership, notify};

/// The plan's detail lines for `sql`, with every parameter bound to NULL.
fn plan(conn: &Connection, sql: &str) -> Vec<String> {
    let mut stmt = conn
        .prepare(&format!("EXPLAIN QUERY PLAN {sql}"))
        .unwrap_or_else(|e| panic!("{sql} does not prepare: {e}"));
    let nulls = vec![rusqlite::types::Null; stmt.parameter_count()];
    let rows = stmt
        .query_map(rusqlite::params_from_iter(nulls), |row| {
            row.get::<_, String>(3)
        })
        .expect("the plan runs");
    rows.collect::<Result<_, _>>().expect("plan rows")
}

fn migrated() -> (tempfile::TempDir, Connection) {
    let dir = tempfile::tempdir().expect("a temp dir");
    let path = dir.path().join("herald.db");
    drop(crate::SqliteStore::open(&path).expect("the store opens and migrates"));
    let conn = Connection::open(&path).expect("the file opens");
    (dir, conn)
}

#[test]
fn queries_keyed_by_user_device_or_notification_use_their_index_not_the_tenant() {
    let (_dir, conn) = migrated();
    for (sql, index) in [
        (membership::TOTAL_UNREAD, "memberships_by_user"),
        (membership::UNREAD_COUNTS, "memberships_by_user"),
        (
            deliveries::FAIL_DEVICE_DELIVERIES,
            "deliveries_pending_by_device",
        ),
        (deliveries::OF_NOTIFICATION, "deliveries_by_notification"),
        (concluded::STATUSES, "deliveries_by_notification"),
        (notify::UNHEALTHY_DEVICES, "device_checks_unhealthy"),
    ] {
        let plan = plan(&conn, sql);
        assert!(
            plan.iter().any(|step| step.contains(index)),
            "{sql}\nshould use {index}: {plan:?}"
        );
        assert!(
            !plan
                .iter()
                .any(|step| step.contains("PRIMARY KEY (tenant_id=?)")),
            "{sql}\nwalks the tenant: {plan:?}"
        );
    }
}

#[test]
fn claiming_due_deliveries_is_one_range_of_the_due_index() {
    let (_dir, conn) = migrated();
    let plan = plan(&conn, deliveries::CLAIM_DUE);
    assert_eq!(
        plan,
        vec!["SEARCH deliveries USING INDEX deliveries_due (next_attempt_at<?)".to_string()]
    );
}

#[test]
fn a_statement_run_with_new_values_is_not_compiled_again() {
    let (_dir, conn) = migrated();
    crate::pool::tune(&conn).expect("the connection is tuned");
    // The writer runs this for every message, right after the message's writes. Unless plans
    // are kept independent of bound values (QPSG), SQLite marked it to be compiled again when
    // its values were cleared — which the statement cache does each time it takes it back:
    // a second compile per message, a quarter of the writer's time under load.
    let mut runs = 0;
    for (position, conversation) in ["c1", "c2", "c3", "c4"].into_iter().enumerate() {
        conn.execute(
            "INSERT INTO memberships (tenant_id, conversation_id, user_id, role, secondary,
                                      read_position, unread)
             VALUES ('default', ?1, 'agent-1', 'agent', 0, ?2, 0)",
            rusqlite::params![conversation, position as i64],
        )
        .expect("a member");
        let mut stmt = conn
            .prepare_cached(membership::MEMBER_IDS)
            .expect("prepares");
        let rows = stmt
            .query_map(["default", conversation], |row| row.get::<_, String>(0))
            .expect("runs");
        assert_eq!(rows.count(), 1);
        runs = stmt.get_status(rusqlite::StatementStatus::RePrepare);
    }
    assert_eq!(runs, 0, "compiled again at every run");
}

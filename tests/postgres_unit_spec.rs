//! Every PostgreSQL work unit belongs to an existing work spec: adds to a
//! deleted spec fail as `Gone` and store nothing, also while the spec is
//! being deleted concurrently; deleting or truncating specs takes their
//! units with them; a unit cannot be moved to another spec.
#![cfg(feature = "testing")]

use coordinate::postgres::PostgresBackend;
use coordinate::{data, Backend, Error, MockClock, NewWorkUnit, ObjectKind, WorkUnitMeta};
use tokio_postgres::error::SqlState;
use tokio_postgres::Client;

mod common {
    pub mod gone;
    pub mod postgres;
}

use common::gone::gone;
use common::postgres::Database;

async fn setup() -> (PostgresBackend, Client) {
    let db = Database::fresh().await;
    (db.server(&MockClock::new(), Some(8)).await, db.sql().await)
}

async fn count(sql: &Client, query: &str) -> i64 {
    sql.query_one(query, &[]).await.unwrap().get(0)
}

async fn orphans(sql: &Client) -> i64 {
    count(
        sql,
        "SELECT count(*) FROM work_unit u
         WHERE NOT EXISTS (SELECT 1 FROM work_spec s WHERE s.id = u.work_spec_id)",
    )
    .await
}

fn batch(prefix: &str, n: usize) -> Vec<NewWorkUnit> {
    (0..n)
        .map(|i| NewWorkUnit {
            name: format!("{prefix}{i:04}"),
            data: data!({ "i": i }),
            meta: WorkUnitMeta::default(),
        })
        .collect()
}

#[tokio::test]
async fn adds_to_a_deleted_spec_are_gone_and_store_nothing() {
    let (b, sql) = setup().await;
    let ns = b.namespace("n").await.unwrap();
    let spec = ns.set_work_spec(data!({"name": "s"})).await.unwrap();
    spec.add_work_units(batch("a", 10)).await.unwrap();
    ns.destroy_work_spec("s").await.unwrap();
    assert_eq!(count(&sql, "SELECT count(*) FROM work_unit").await, 0);

    assert_eq!(
        spec.add_work_units(batch("b", 10)).await.unwrap_err(),
        gone(ObjectKind::WorkSpec)
    );
    assert_eq!(
        spec.add_work_unit("c", data!({}), WorkUnitMeta::default())
            .await
            .unwrap_err(),
        gone(ObjectKind::WorkSpec)
    );
    assert_eq!(count(&sql, "SELECT count(*) FROM work_unit").await, 0);
}

#[tokio::test]
async fn adds_racing_a_spec_delete_leave_no_unit_behind() {
    let (b, sql) = setup().await;
    let ns = b.namespace("n").await.unwrap();
    for round in 0..4 {
        let spec = ns.set_work_spec(data!({"name": "s"})).await.unwrap();
        let adders: Vec<_> = (0..4)
            .map(|t| {
                let spec = spec.clone();
                tokio::spawn(async move {
                    for k in 0..5 {
                        match spec.add_work_units(batch(&format!("{t}-{k}-"), 200)).await {
                            Ok(units) => assert_eq!(units.len(), 200),
                            Err(Error::Gone { .. }) => return,
                            Err(e) => panic!("unexpected error: {e}"),
                        }
                    }
                })
            })
            .collect();
        tokio::task::yield_now().await;
        ns.destroy_work_spec("s").await.unwrap();
        for adder in adders {
            adder.await.unwrap();
        }
        assert_eq!(orphans(&sql).await, 0, "round {round}");
        assert_eq!(count(&sql, "SELECT count(*) FROM work_unit").await, 0);
    }
}

#[tokio::test]
async fn deleting_specs_takes_their_units() {
    let (b, sql) = setup().await;
    let ns = b.namespace("n").await.unwrap();
    let other = b.namespace("o").await.unwrap();
    for name in ["s", "t"] {
        let spec = ns.set_work_spec(data!({ "name": name })).await.unwrap();
        spec.add_work_units(batch("a", 5)).await.unwrap();
    }
    let kept = other.set_work_spec(data!({"name": "k"})).await.unwrap();
    kept.add_work_units(batch("a", 3)).await.unwrap();

    ns.destroy().await.unwrap();
    assert_eq!(orphans(&sql).await, 0);
    assert_eq!(count(&sql, "SELECT count(*) FROM work_unit").await, 3);
    assert_eq!(kept.work_units(&Default::default()).await.unwrap().len(), 3);

    sql.batch_execute("TRUNCATE work_spec CASCADE")
        .await
        .unwrap();
    assert_eq!(count(&sql, "SELECT count(*) FROM work_unit").await, 0);
}

#[tokio::test]
async fn a_unit_cannot_move_to_another_spec() {
    let (b, sql) = setup().await;
    let ns = b.namespace("n").await.unwrap();
    ns.set_work_spec(data!({"name": "s"}))
        .await
        .unwrap()
        .add_work_unit("u", data!({}), WorkUnitMeta::default())
        .await
        .unwrap();
    ns.set_work_spec(data!({"name": "t"})).await.unwrap();
    let moved = sql
        .execute(
            "UPDATE work_unit SET work_spec_id = (SELECT id FROM work_spec WHERE name = 't')",
            &[],
        )
        .await
        .unwrap_err();
    assert_eq!(moved.code(), Some(&SqlState::FOREIGN_KEY_VIOLATION));
    let stray = sql
        .execute(
            "INSERT INTO work_unit (work_spec_id, name, data, priority, state)
             VALUES ((SELECT max(id) + 1 FROM work_spec), 'x', '{}', 0, 0)",
            &[],
        )
        .await
        .unwrap_err();
    assert_eq!(stray.code(), Some(&SqlState::FOREIGN_KEY_VIOLATION));
    assert_eq!(orphans(&sql).await, 0);
}

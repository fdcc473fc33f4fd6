//! Migrations up, down and up again leave the same schema, on both backends.

use migration::{Migrator, MigratorTrait};
use sea_orm::{ConnectionTrait as _, Database, DbBackend, Statement};

use crate::helpers::*;

const PG_SNAPSHOT: &str = "
SELECT coalesce(string_agg(x, E'\\n' ORDER BY x), '') FROM (
  SELECT format('col %s.%s %s %s %s', table_name, column_name, data_type, is_nullable, column_default) AS x
    FROM information_schema.columns WHERE table_schema = 'public'
  UNION ALL SELECT format('idx %s', indexdef) FROM pg_indexes WHERE schemaname = 'public'
  UNION ALL SELECT format('con %s %s %s', conrelid::regclass, conname, pg_get_constraintdef(oid))
    FROM pg_constraint WHERE connamespace = 'public'::regnamespace
  UNION ALL SELECT format('pol %s %s %s %s', tablename, policyname, qual, with_check)
    FROM pg_policies WHERE schemaname = 'public'
  UNION ALL SELECT format('rls %s %s %s', relname, relrowsecurity, relforcerowsecurity)
    FROM pg_class WHERE relnamespace = 'public'::regnamespace AND relkind = 'r'
  UNION ALL SELECT format('grant %s %s %s', table_name, grantee, privilege_type)
    FROM information_schema.role_table_grants WHERE table_schema = 'public' AND grantee = 'aggios_app'
) s";

const SQLITE_SNAPSHOT: &str =
    "SELECT coalesce(group_concat(sql, char(10)), '') FROM (SELECT sql FROM sqlite_master WHERE sql IS NOT NULL ORDER BY name)";

async fn snapshot(conn: &sea_orm::DatabaseConnection) -> String {
    let backend = conn.get_database_backend();
    let sql = if backend == DbBackend::Postgres { PG_SNAPSHOT } else { SQLITE_SNAPSHOT };
    let row = conn.query_one_raw(Statement::from_string(backend, sql)).await.unwrap().unwrap();
    row.try_get_by_index::<String>(0).unwrap()
}

async fn check_round_trip(url: &str) {
    let conn = Database::connect(url).await.unwrap();
    Migrator::up(&conn, None).await.unwrap();
    let first = snapshot(&conn).await;
    assert!(first.contains("tenants") && first.contains("audit_events"), "{first}");
    Migrator::down(&conn, None).await.unwrap();
    let empty = snapshot(&conn).await;
    assert!(!empty.contains("tenants"), "down left tables behind: {empty}");
    Migrator::up(&conn, None).await.unwrap();
    assert_eq!(snapshot(&conn).await, first, "up, down, up changed the schema");
    assert!(Migrator::get_pending_migrations(&conn).await.unwrap().is_empty());
}

#[tokio::test]
async fn migrations_up_down_up_leave_the_same_schema_on_postgres() {
    let db = TestDatabase::create().await;
    check_round_trip(&db.url).await;
}

#[tokio::test]
async fn migrations_up_down_up_leave_the_same_schema_on_sqlite() {
    let dir = tempfile::tempdir().unwrap();
    check_round_trip(&format!("sqlite://{}?mode=rwc", dir.path().join("m.db").display())).await;
}

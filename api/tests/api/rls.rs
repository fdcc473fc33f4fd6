//! Row-Level Security proven on PostgreSQL, as the runtime role: no tenant
//! set reads nothing, a tenant set reads only its rows, and a row for another
//! tenant cannot be written. Also the per-request handle that sets it.

use aggios::store::TenantDb;
use migration::{RUNTIME_ROLE, TENANT_TABLES};
use sea_orm::{
    ActiveValue::Set, ConnectionTrait as _, EntityTrait as _,
    sqlx::{self, AssertSqlSafe, Connection as _, Executor as _, PgConnection, Row as _},
};
use uuid::Uuid;

use crate::helpers::*;

/// One row in every tenant table for `tenant`, written as the owner
/// (superuser, so RLS does not apply to the set-up itself).
async fn seed_all_tables(conn: &mut PgConnection, tenant: Uuid) {
    let sql = format!(
        "INSERT INTO users (id, tenant_id, email, password_hash, first_name, last_name, role, is_active, created_at, updated_at)
           VALUES ('{u}', '{t}', 'owner-{t}@example.com', 'x', 'A', 'B', 'OWNER', true, now(), now());
         INSERT INTO refresh_tokens (id, tenant_id, user_id, family_id, token_hash, created_at, last_used_at, idle_expires_at, expires_at)
           VALUES (gen_random_uuid(), '{t}', '{u}', gen_random_uuid(), md5(random()::text), now(), now(), now(), now());
         INSERT INTO api_keys (id, tenant_id, name, prefix, secret_hash, scope, created_by, created_at)
           VALUES (gen_random_uuid(), '{t}', 'k', left(md5(random()::text), 12), 'h', 'READ', '{u}', now());
         INSERT INTO clients (id, tenant_id, name, status, created_at, updated_at)
           VALUES ('{c}', '{t}', 'Client', 'ACTIVE', now(), now());
         INSERT INTO projects (id, tenant_id, client_id, name, status, created_at, updated_at)
           VALUES ('{p}', '{t}', '{c}', 'Project', 'ACTIVE', now(), now());
         INSERT INTO documents (id, tenant_id, project_id, name, content_type, size_bytes, checksum_sha256, created_at, updated_at)
           VALUES ('{d}', '{t}', '{p}', 'doc.pdf', 'application/pdf', 1, 'c', now(), now());
         INSERT INTO document_versions (id, tenant_id, document_id, version, storage_key, content_type, size_bytes, checksum_sha256, created_at)
           VALUES (gen_random_uuid(), '{t}', '{d}', 1, '{t}/{d}/1', 'application/pdf', 1, 'c', now());
         INSERT INTO audit_events (id, tenant_id, action, target_type, request_id, created_at)
           VALUES (gen_random_uuid(), '{t}', 'test', 'test', 'r', now());
         INSERT INTO upload_reservations (id, tenant_id, size_bytes, expires_at, created_at)
           VALUES (gen_random_uuid(), '{t}', 1, now(), now());
         INSERT INTO trusted_document_manifests (id, tenant_id, version, format, operation_count, uploaded_by, created_at)
           VALUES ('{m}', '{t}', 1, 'APOLLO', 1, 'platform', now());
         INSERT INTO trusted_documents (id, tenant_id, manifest_id, document_id, body)
           VALUES (gen_random_uuid(), '{t}', '{m}', 'op', '{{ tenant {{ id }} }}');
         INSERT INTO trusted_document_settings (tenant_id, mode, updated_at) VALUES ('{t}', 'REQUIRE', now());",
        t = tenant,
        u = Uuid::now_v7(),
        c = Uuid::now_v7(),
        p = Uuid::now_v7(),
        d = Uuid::now_v7(),
        m = Uuid::now_v7(),
    );
    conn.execute(sqlx::raw_sql(AssertSqlSafe(sql))).await.expect("seed rows");
}

async fn count(conn: &mut PgConnection, table: &str) -> i64 {
    sqlx::query(AssertSqlSafe(format!("SELECT count(*) FROM {table}")))
        .fetch_one(&mut *conn)
        .await
        .expect("count")
        .get(0)
}

async fn tenant_ids(conn: &mut PgConnection, table: &str) -> Vec<Uuid> {
    sqlx::query(AssertSqlSafe(format!("SELECT DISTINCT tenant_id FROM {table}")))
        .fetch_all(&mut *conn)
        .await
        .expect("select")
        .iter()
        .map(|r| r.get(0))
        .collect()
}

#[tokio::test]
async fn as_the_runtime_role_rls_shows_each_tenant_only_its_own_rows() {
    let app = TestApp::new(Backend::Postgres).await;
    let a = app.create_tenant("tenant-a").await.id;
    let b = app.create_tenant("tenant-b").await.id;
    let url = &app.pg.as_ref().unwrap().url;
    let mut owner = PgConnection::connect(url).await.unwrap();
    seed_all_tables(&mut owner, a).await;
    seed_all_tables(&mut owner, b).await;

    let mut conn = PgConnection::connect(url).await.unwrap();
    conn.execute(sqlx::raw_sql(AssertSqlSafe(format!("SET ROLE {RUNTIME_ROLE}")))).await.unwrap();

    // No tenant set: every tenant table reads as empty.
    for table in TENANT_TABLES {
        assert_eq!(count(&mut conn, table).await, 0, "{table} leaks rows with no tenant set");
    }

    // Tenant A set: only A's rows.
    let mut tx = conn.begin().await.unwrap();
    sqlx::query("SELECT set_config('aggios.tenant_id', $1, true)").bind(a.to_string()).execute(&mut *tx).await.unwrap();
    for table in TENANT_TABLES {
        assert_eq!(tenant_ids(&mut tx, table).await, vec![a], "{table} under tenant A");
    }
    // Writing a row for B while A is set is refused.
    let err = sqlx::query(
        "INSERT INTO clients (id, tenant_id, name, status, created_at, updated_at) VALUES ($1, $2, 'x', 'ACTIVE', now(), now())",
    )
    .bind(Uuid::now_v7())
    .bind(b)
    .execute(&mut *tx)
    .await
    .expect_err("a row for another tenant must be refused");
    assert!(err.to_string().contains("row-level security"), "{err}");
    tx.rollback().await.unwrap();

    // Moving a row of A to B is refused too.
    let mut tx = conn.begin().await.unwrap();
    sqlx::query("SELECT set_config('aggios.tenant_id', $1, true)").bind(a.to_string()).execute(&mut *tx).await.unwrap();
    let err = sqlx::query("UPDATE clients SET tenant_id = $1").bind(b).execute(&mut *tx).await;
    assert!(err.is_err(), "moving a row to another tenant must be refused");
    tx.rollback().await.unwrap();

    // The setting is transaction-local: nothing is left behind.
    for table in TENANT_TABLES {
        assert_eq!(count(&mut conn, table).await, 0, "{table} after the transaction");
    }
}

#[tokio::test]
async fn the_runtime_role_owns_nothing_bypasses_nothing_and_cannot_edit_audit_events() {
    let app = TestApp::new(Backend::Postgres).await;
    let url = &app.pg.as_ref().unwrap().url;
    let mut conn = PgConnection::connect(url).await.unwrap();
    let row = sqlx::query("SELECT rolsuper, rolbypassrls FROM pg_roles WHERE rolname = $1")
        .bind(RUNTIME_ROLE)
        .fetch_one(&mut conn)
        .await
        .unwrap();
    assert!(!row.get::<bool, _>(0) && !row.get::<bool, _>(1));
    for table in TENANT_TABLES {
        let row = sqlx::query(
            "SELECT c.relrowsecurity, c.relforcerowsecurity, pg_get_userbyid(c.relowner) <> $2,
                    (SELECT count(*) FROM pg_index i JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = i.indkey[0]
                      WHERE i.indrelid = c.oid AND a.attname = 'tenant_id')
               FROM pg_class c WHERE c.relname = $1 AND c.relnamespace = 'public'::regnamespace",
        )
        .bind(table)
        .bind(RUNTIME_ROLE)
        .fetch_one(&mut conn)
        .await
        .unwrap();
        assert!(row.get::<bool, _>(0), "{table}: RLS not enabled");
        assert!(row.get::<bool, _>(1), "{table}: RLS not forced");
        assert!(row.get::<bool, _>(2), "{table}: owned by the runtime role");
        assert!(row.get::<i64, _>(3) >= 1, "{table}: no index leads with tenant_id");
    }
    let a = app.create_tenant("tenant-a").await.id;
    seed_all_tables(&mut conn, a).await;
    conn.execute(sqlx::raw_sql(AssertSqlSafe(format!("SET ROLE {RUNTIME_ROLE}")))).await.unwrap();
    for statement in ["UPDATE audit_events SET action = 'forged'", "DELETE FROM audit_events"] {
        let mut tx = conn.begin().await.unwrap();
        sqlx::query("SELECT set_config('aggios.tenant_id', $1, true)").bind(a.to_string()).execute(&mut *tx).await.unwrap();
        let err = sqlx::query(statement).execute(&mut *tx).await.expect_err(statement);
        assert!(err.to_string().contains("permission denied"), "{statement}: {err}");
        tx.rollback().await.unwrap();
    }
}

async fn insert_user(db: &TenantDb, tenant: Uuid, email: &str) -> Result<Uuid, sea_orm::DbErr> {
    let id = Uuid::now_v7();
    let now = chrono::Utc::now();
    entity::users::Entity::insert(entity::users::ActiveModel {
        id: Set(id),
        tenant_id: Set(tenant),
        email: Set(email.into()),
        password_hash: Set("x".into()),
        first_name: Set("F".into()),
        last_name: Set("L".into()),
        role: Set("MEMBER".into()),
        is_active: Set(true),
        created_at: Set(now),
        updated_at: Set(now),
    })
    .exec_without_returning(db)
    .await?;
    Ok(id)
}

on_both_backends! {
    async fn a_tenant_handle_and_its_loader_never_return_another_tenants_rows(app) {
        let a = app.create_tenant("tenant-a").await.id;
        let b = app.create_tenant("tenant-b").await.id;
        let db_a = app.state.db.scoped(a);
        let db_b = app.state.db.scoped(b);
        // One after the other: SQLite has a single writer.
        let ua = insert_user(&db_a, a, "a@example.com").await.unwrap();
        db_a.finish(true).await.unwrap();
        let ub = insert_user(&db_b, b, "b@example.com").await.unwrap();
        db_b.finish(true).await.unwrap();

        let db = std::sync::Arc::new(app.state.db.scoped(a));
        let loaders = aggios::graphql::loaders::Loaders::new(db.clone());
        let found = loaders.users.load_many([ua, ub]).await.unwrap();
        assert_eq!(found.keys().copied().collect::<Vec<_>>(), vec![ua]);
        assert_eq!(db.statement_count(), 1, "one batched statement");
        db.finish(true).await.unwrap();
    }
}

#[tokio::test]
async fn on_postgres_a_tenant_handle_cannot_write_another_tenants_row() {
    let app = TestApp::new(Backend::Postgres).await;
    let a = app.create_tenant("tenant-a").await.id;
    let b = app.create_tenant("tenant-b").await.id;
    let db_a = app.state.db.scoped(a);
    let err = insert_user(&db_a, b, "x@example.com").await.expect_err("RLS refuses the row");
    assert!(format!("{err:?}").contains("row-level security"), "{err:?}");
    db_a.finish(false).await.unwrap();
}

on_both_backends! {
    async fn a_handle_that_is_never_used_opens_no_transaction(app) {
        let a = app.create_tenant("tenant-a").await.id;
        let db = app.state.db.scoped(a);
        db.finish(true).await.unwrap();
        assert_eq!(db.statement_count(), 0);
        // And a used one sees its tenant's setting inside the transaction.
        if db.get_database_backend() == sea_orm::DbBackend::Postgres {
            let row = db
                .query_one_raw(sea_orm::Statement::from_string(
                    sea_orm::DbBackend::Postgres,
                    "SELECT current_setting('aggios.tenant_id') AS t, current_user::text AS u",
                ))
                .await
                .unwrap()
                .unwrap();
            assert_eq!(row.try_get::<String>("", "t").unwrap(), a.to_string());
            assert_eq!(row.try_get::<String>("", "u").unwrap(), migration::RUNTIME_ROLE);
            db.finish(true).await.unwrap();
        }
    }
}

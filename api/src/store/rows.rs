//! Lean rows of the agency's data, for the read paths that return many of
//! them (list pages, nested relations): only the columns a reader may see,
//! decoded by position, and one statement text per kind of read whatever
//! the number of keys, so PostgreSQL prepares and plans it once per
//! connection. On PostgreSQL the keys travel as one `uuid[]` parameter
//! (`= ANY($2)`, a `LATERAL` for "first n of each parent"); SQLite, which
//! has neither, gets an `IN` list of the same statement.
//!
//! Every statement names the tenant and runs through [`TenantDb`], so RLS
//! applies to it as to every other.

use std::fmt::Write as _;

use chrono::{DateTime, NaiveDate, Utc};
use entity::{clients, documents, projects, users};
use sea_orm::{
    ConnectionTrait as _, DbBackend, DbErr, EntityTrait, QueryResult, QuerySelect as _, QueryTrait as _, Select, Statement,
    TryGetable, Value,
};
use uuid::Uuid;

use super::TenantDb;

/// One row decoded by column position, in the order of `COLUMNS`.
pub trait Row: Sized {
    /// The table's columns this row reads, in order (SQL text).
    const COLUMNS: &'static str;
    const TABLE: &'static str;
    type Entity: EntityTrait;
    fn entity_columns() -> Vec<<Self::Entity as EntityTrait>::Column>;
    fn decode(row: &QueryResult) -> Result<Self, DbErr>;
    fn id(&self) -> Uuid;
}

/// A row read as "the first n of each parent".
pub trait Child: Row {
    /// The column naming the parent.
    const PARENT: &'static str;
    fn parent(&self) -> Option<Uuid>;
}

fn at<T: TryGetable>(row: &QueryResult, i: usize) -> Result<T, DbErr> {
    row.try_get_by_index(i)
}

#[derive(Debug, Clone)]
pub struct ClientRow {
    pub id: Uuid,
    pub name: String,
    pub email: Option<String>,
    pub phone: Option<String>,
    pub status: String,
    pub notes: Option<String>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

impl Row for ClientRow {
    const COLUMNS: &'static str = "id, name, email, phone, status, notes, created_at, updated_at";
    const TABLE: &'static str = "clients";
    type Entity = clients::Entity;
    fn entity_columns() -> Vec<clients::Column> {
        use clients::Column as C;
        vec![C::Id, C::Name, C::Email, C::Phone, C::Status, C::Notes, C::CreatedAt, C::UpdatedAt]
    }
    fn decode(r: &QueryResult) -> Result<Self, DbErr> {
        Ok(Self {
            id: at(r, 0)?,
            name: at(r, 1)?,
            email: at(r, 2)?,
            phone: at(r, 3)?,
            status: at(r, 4)?,
            notes: at(r, 5)?,
            created_at: at(r, 6)?,
            updated_at: at(r, 7)?,
        })
    }
    fn id(&self) -> Uuid {
        self.id
    }
}

#[derive(Debug, Clone)]
pub struct ProjectRow {
    pub id: Uuid,
    pub client_id: Uuid,
    pub name: String,
    pub description: Option<String>,
    pub status: String,
    pub due_date: Option<NaiveDate>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

impl Row for ProjectRow {
    const COLUMNS: &'static str = "id, client_id, name, description, status, due_date, created_at, updated_at";
    const TABLE: &'static str = "projects";
    type Entity = projects::Entity;
    fn entity_columns() -> Vec<projects::Column> {
        use projects::Column as C;
        vec![C::Id, C::ClientId, C::Name, C::Description, C::Status, C::DueDate, C::CreatedAt, C::UpdatedAt]
    }
    fn decode(r: &QueryResult) -> Result<Self, DbErr> {
        Ok(Self {
            id: at(r, 0)?,
            client_id: at(r, 1)?,
            name: at(r, 2)?,
            description: at(r, 3)?,
            status: at(r, 4)?,
            due_date: at(r, 5)?,
            created_at: at(r, 6)?,
            updated_at: at(r, 7)?,
        })
    }
    fn id(&self) -> Uuid {
        self.id
    }
}

#[derive(Debug, Clone)]
pub struct DocumentRow {
    pub id: Uuid,
    pub project_id: Option<Uuid>,
    pub client_id: Option<Uuid>,
    pub uploaded_by: Option<Uuid>,
    pub name: String,
    pub content_type: String,
    pub size_bytes: i64,
    pub checksum_sha256: String,
    pub current_version: i32,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

impl Row for DocumentRow {
    const COLUMNS: &'static str = "id, project_id, client_id, uploaded_by, name, content_type, size_bytes, \
                                   checksum_sha256, current_version, created_at, updated_at";
    const TABLE: &'static str = "documents";
    type Entity = documents::Entity;
    fn entity_columns() -> Vec<documents::Column> {
        use documents::Column as C;
        vec![
            C::Id,
            C::ProjectId,
            C::ClientId,
            C::UploadedBy,
            C::Name,
            C::ContentType,
            C::SizeBytes,
            C::ChecksumSha256,
            C::CurrentVersion,
            C::CreatedAt,
            C::UpdatedAt,
        ]
    }
    fn decode(r: &QueryResult) -> Result<Self, DbErr> {
        Ok(Self {
            id: at(r, 0)?,
            project_id: at(r, 1)?,
            client_id: at(r, 2)?,
            uploaded_by: at(r, 3)?,
            name: at(r, 4)?,
            content_type: at(r, 5)?,
            size_bytes: at(r, 6)?,
            checksum_sha256: at(r, 7)?,
            current_version: at(r, 8)?,
            created_at: at(r, 9)?,
            updated_at: at(r, 10)?,
        })
    }
    fn id(&self) -> Uuid {
        self.id
    }
}

impl Child for ProjectRow {
    const PARENT: &'static str = "client_id";
    fn parent(&self) -> Option<Uuid> {
        Some(self.client_id)
    }
}

impl Child for DocumentRow {
    const PARENT: &'static str = "project_id";
    fn parent(&self) -> Option<Uuid> {
        self.project_id
    }
}

/// A user as other members see them: never the password hash.
#[derive(Debug, Clone)]
pub struct UserRow {
    pub id: Uuid,
    pub email: String,
    pub first_name: String,
    pub last_name: String,
    pub role: String,
    pub is_active: bool,
    pub created_at: DateTime<Utc>,
}

impl Row for UserRow {
    const COLUMNS: &'static str = "id, email, first_name, last_name, role, is_active, created_at";
    const TABLE: &'static str = "users";
    type Entity = users::Entity;
    fn entity_columns() -> Vec<users::Column> {
        use users::Column as C;
        vec![C::Id, C::Email, C::FirstName, C::LastName, C::Role, C::IsActive, C::CreatedAt]
    }
    fn decode(r: &QueryResult) -> Result<Self, DbErr> {
        Ok(Self {
            id: at(r, 0)?,
            email: at(r, 1)?,
            first_name: at(r, 2)?,
            last_name: at(r, 3)?,
            role: at(r, 4)?,
            is_active: at(r, 5)?,
            created_at: at(r, 6)?,
        })
    }
    fn id(&self) -> Uuid {
        self.id
    }
}

async fn fetch<R: Row>(db: &TenantDb, stmt: Statement) -> Result<Vec<R>, DbErr> {
    db.query_all_raw(stmt).await?.iter().map(R::decode).collect()
}

/// A page query (filters, bounds, order, limit already applied) reading the
/// row's columns only.
pub async fn page<R: Row>(db: &TenantDb, select: Select<R::Entity>) -> Result<Vec<R>, DbErr> {
    let stmt = select.select_only().columns(R::entity_columns()).build(db.get_database_backend());
    fetch(db, stmt).await
}

/// The PostgreSQL array literal of `ids` (`{a,b}`), bound as one text
/// parameter and cast to `uuid[]`: one statement text for any number of
/// keys. Uuids' text form needs no quoting.
fn uuid_array(ids: &[Uuid]) -> Value {
    let mut s = String::with_capacity(2 + ids.len() * 37);
    s.push('{');
    for (i, id) in ids.iter().enumerate() {
        if i > 0 {
            s.push(',');
        }
        let _ = write!(s, "{}", id.hyphenated());
    }
    s.push('}');
    Value::String(Some(s))
}

/// `?, ?, …` for SQLite's `IN` list, with the values after the tenant.
fn sqlite_in(tenant: Uuid, ids: &[Uuid]) -> (String, Vec<Value>) {
    let mut values = Vec::with_capacity(ids.len() + 1);
    values.push(tenant.into());
    values.extend(ids.iter().map(|&id| Value::from(id)));
    (vec!["?"; ids.len()].join(", "), values)
}

/// Rows of `R` whose `id` is one of `ids`, in no particular order.
pub async fn by_ids<R: Row>(db: &TenantDb, ids: &[Uuid]) -> Result<Vec<R>, DbErr> {
    if ids.is_empty() {
        return Ok(Vec::new());
    }
    let (cols, table) = (R::COLUMNS, R::TABLE);
    let stmt = match db.get_database_backend() {
        DbBackend::Postgres => Statement::from_sql_and_values(
            DbBackend::Postgres,
            format!("SELECT {cols} FROM {table} WHERE tenant_id = $1 AND id = ANY($2::uuid[])"),
            [db.tenant().into(), uuid_array(ids)],
        ),
        backend => {
            let (list, values) = sqlite_in(db.tenant(), ids);
            Statement::from_sql_and_values(
                backend,
                format!("SELECT {cols} FROM {table} WHERE tenant_id = ? AND id IN ({list})"),
                values,
            )
        }
    };
    fetch(db, stmt).await
}

/// The first `n` rows of `R` (by id) of each parent in `parents`: each
/// parent's rows together, in id order.
pub async fn first_of<R: Child>(db: &TenantDb, parents: &[Uuid], n: u64) -> Result<Vec<R>, DbErr> {
    if parents.is_empty() || n == 0 {
        return Ok(Vec::new());
    }
    let (cols, table, parent) = (R::COLUMNS, R::TABLE, R::PARENT);
    let limit = i64::try_from(n).unwrap_or(i64::MAX);
    let stmt = match db.get_database_backend() {
        DbBackend::Postgres => Statement::from_sql_and_values(
            DbBackend::Postgres,
            format!(
                "SELECT r.* FROM unnest($2::uuid[]) WITH ORDINALITY AS p(id, ord) CROSS JOIN LATERAL \
                 (SELECT {cols} FROM {table} WHERE tenant_id = $1 AND {parent} = p.id ORDER BY id LIMIT $3) r \
                 ORDER BY p.ord, r.id"
            ),
            [db.tenant().into(), uuid_array(parents), limit.into()],
        ),
        backend => {
            let (list, mut values) = sqlite_in(db.tenant(), parents);
            values.push(limit.into());
            Statement::from_sql_and_values(
                backend,
                format!(
                    "SELECT {cols} FROM (SELECT {cols}, ROW_NUMBER() OVER (PARTITION BY {parent} ORDER BY id) AS rn \
                     FROM {table} WHERE tenant_id = ? AND {parent} IN ({list})) WHERE rn <= ? ORDER BY {parent}, id"
                ),
                values,
            )
        }
    };
    fetch(db, stmt).await
}

/// A full model read elsewhere (a mutation's `RETURNING`) as the lean row.
macro_rules! from_model {
    ($row:ident, $model:ty, $($f:ident),*) => {
        impl From<$model> for $row {
            fn from(m: $model) -> Self {
                Self { $($f: m.$f),* }
            }
        }
    };
}
from_model!(ClientRow, clients::Model, id, name, email, phone, status, notes, created_at, updated_at);
from_model!(ProjectRow, projects::Model, id, client_id, name, description, status, due_date, created_at, updated_at);
from_model!(
    DocumentRow,
    documents::Model,
    id,
    project_id,
    client_id,
    uploaded_by,
    name,
    content_type,
    size_bytes,
    checksum_sha256,
    current_version,
    created_at,
    updated_at
);
from_model!(UserRow, users::Model, id, email, first_name, last_name, role, is_active, created_at);

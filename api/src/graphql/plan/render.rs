//! Running a plan: one statement per relation asked (for all parents at
//! once, through the request's tenant transaction), then the values built
//! in selection order. Scalars become values through the same GraphQL types
//! and the same `to_value` as the resolvers use, so the two paths cannot
//! disagree on a format.
//!
//! `Ok(None)` means the rows cannot answer as the resolvers would (a
//! required relation's row is missing, a size out of range): the caller
//! lets the resolvers answer instead, errors and all.

use std::collections::HashMap;

use async_graphql::{ScalarType, Value, indexmap::IndexMap, resolver_utils::enum_value};
use futures::future::BoxFuture;
use sea_orm::DbErr;
use uuid::Uuid;

use super::{ConnPick, ConnPlan, EdgePick, Obj, PageInfoPick, Pick, Rel};
use crate::{
    graphql::types::{Client, Document, Project, User},
    store::{
        TenantDb,
        page::{Page, cursor},
        rows::{self, Child as _, ClientRow, DocumentRow, ProjectRow, Row as _, UserRow},
    },
};

/// A row of any planned type.
pub(crate) enum AnyRow {
    Client(ClientRow),
    Project(ProjectRow),
    Document(DocumentRow),
    User(UserRow),
}

macro_rules! any_row_from {
    ($($v:ident($t:ty)),*) => { $(impl From<$t> for AnyRow { fn from(r: $t) -> Self { AnyRow::$v(r) } })* };
}
any_row_from!(Client(ClientRow), Project(ProjectRow), Document(DocumentRow), User(UserRow));

impl AnyRow {
    fn id(&self) -> Uuid {
        match self {
            AnyRow::Client(r) => r.id(),
            AnyRow::Project(r) => r.id(),
            AnyRow::Document(r) => r.id(),
            AnyRow::User(r) => r.id(),
        }
    }

    /// The key this row gives `rel`: a foreign key for a relation to one,
    /// its own id for a relation to many.
    fn key(&self, rel: Rel) -> Option<Uuid> {
        match (self, rel) {
            (AnyRow::Project(p), Rel::ProjectClient) => Some(p.client_id),
            (AnyRow::Document(d), Rel::DocumentProject) => d.project_id,
            (AnyRow::Document(d), Rel::DocumentClient) => d.client_id,
            (AnyRow::Document(d), Rel::DocumentUploader) => d.uploaded_by,
            (AnyRow::Client(c), Rel::ClientProjects(_)) => Some(c.id),
            (AnyRow::Project(p), Rel::ProjectDocuments(_)) => Some(p.id),
            _ => None,
        }
    }

    /// For a child of a relation to many, its parent.
    fn parent(&self) -> Option<Uuid> {
        match self {
            AnyRow::Project(p) => p.parent(),
            AnyRow::Document(d) => d.parent(),
            _ => None,
        }
    }
}

/// The row as its GraphQL type, whose fields give the values.
enum Typed {
    Client(Client),
    Project(Project),
    Document(Document),
    User(User),
}

impl Typed {
    fn of(row: &AnyRow) -> Self {
        match row {
            AnyRow::Client(r) => Typed::Client(r.into()),
            AnyRow::Project(r) => Typed::Project(r.into()),
            AnyRow::Document(r) => Typed::Document(r.into()),
            AnyRow::User(r) => Typed::User(r.into()),
        }
    }

    fn value(&self, field: &str) -> Option<Value> {
        fn opt<T: ScalarType>(v: &Option<T>) -> Value {
            v.as_ref().map_or(Value::Null, ScalarType::to_value)
        }
        Some(match (self, field) {
            (Typed::Client(c), "id") => c.id.to_value(),
            (Typed::Client(c), "name") => c.name.to_value(),
            (Typed::Client(c), "email") => opt(&c.email),
            (Typed::Client(c), "phone") => opt(&c.phone),
            (Typed::Client(c), "status") => enum_value(c.status),
            (Typed::Client(c), "notes") => opt(&c.notes),
            (Typed::Client(c), "createdAt") => c.created_at.to_value(),
            (Typed::Client(c), "updatedAt") => c.updated_at.to_value(),
            (Typed::Project(p), "id") => p.id.to_value(),
            (Typed::Project(p), "name") => p.name.to_value(),
            (Typed::Project(p), "description") => opt(&p.description),
            (Typed::Project(p), "status") => enum_value(p.status),
            (Typed::Project(p), "dueDate") => opt(&p.due_date),
            (Typed::Project(p), "createdAt") => p.created_at.to_value(),
            (Typed::Project(p), "updatedAt") => p.updated_at.to_value(),
            (Typed::Document(d), "id") => d.id.to_value(),
            (Typed::Document(d), "name") => d.name.to_value(),
            (Typed::Document(d), "contentType") => d.content_type.to_value(),
            (Typed::Document(d), "sizeBytes") => d.size_bytes.as_ref().ok()?.to_value(),
            (Typed::Document(d), "checksumSha256") => d.checksum_sha256.to_value(),
            (Typed::Document(d), "currentVersion") => d.current_version.to_value(),
            (Typed::Document(d), "createdAt") => d.created_at.to_value(),
            (Typed::Document(d), "updatedAt") => d.updated_at.to_value(),
            (Typed::User(u), "id") => u.id.to_value(),
            (Typed::User(u), "email") => u.email.to_value(),
            (Typed::User(u), "firstName") => u.first_name.to_value(),
            (Typed::User(u), "lastName") => u.last_name.to_value(),
            (Typed::User(u), "role") => enum_value(u.role),
            (Typed::User(u), "isActive") => u.is_active.to_value(),
            (Typed::User(u), "createdAt") => u.created_at.to_value(),
            _ => return None,
        })
    }
}

/// A relation fetched for all parents: child values by key.
enum Fetched {
    One(HashMap<Uuid, Value>),
    Many(HashMap<Uuid, Vec<Value>>),
}

type Built<T> = Result<Option<T>, DbErr>;

fn unique_keys(rows: &[AnyRow], rel: Rel) -> Vec<Uuid> {
    let mut keys: Vec<Uuid> = rows.iter().filter_map(|r| r.key(rel)).collect();
    keys.sort_unstable();
    keys.dedup();
    keys
}

fn wrap<R: Into<AnyRow>>(rows: Vec<R>) -> Vec<AnyRow> {
    rows.into_iter().map(Into::into).collect()
}

async fn fetch(db: &TenantDb, rel: Rel, child: &Obj, parents: &[AnyRow]) -> Built<Fetched> {
    let keys = unique_keys(parents, rel);
    let rows = match rel {
        Rel::ProjectClient | Rel::DocumentClient => wrap(rows::by_ids::<ClientRow>(db, &keys).await?),
        Rel::DocumentProject => wrap(rows::by_ids::<ProjectRow>(db, &keys).await?),
        Rel::DocumentUploader => wrap(rows::by_ids::<UserRow>(db, &keys).await?),
        Rel::ClientProjects(n) => wrap(rows::first_of::<ProjectRow>(db, &keys, n).await?),
        Rel::ProjectDocuments(n) => wrap(rows::first_of::<DocumentRow>(db, &keys, n).await?),
    };
    let Some(values) = objects(db, child, &rows).await? else { return Ok(None) };
    Ok(Some(match rel {
        Rel::ClientProjects(_) | Rel::ProjectDocuments(_) => {
            let mut many: HashMap<Uuid, Vec<Value>> = HashMap::with_capacity(keys.len());
            for (row, value) in rows.iter().zip(values) {
                if let Some(parent) = row.parent() {
                    many.entry(parent).or_default().push(value);
                }
            }
            Fetched::Many(many)
        }
        _ => Fetched::One(rows.iter().map(AnyRow::id).zip(values).collect()),
    }))
}

/// The values of `rows` under `obj`, in the rows' order.
fn objects<'a>(db: &'a TenantDb, obj: &'a Obj, rows: &'a [AnyRow]) -> BoxFuture<'a, Built<Vec<Value>>> {
    Box::pin(async move {
        let mut fetched = Vec::new();
        for (_, pick) in &obj.fields {
            if let Pick::Rel(rel, child) = pick {
                let Some(f) = fetch(db, *rel, child, rows).await? else { return Ok(None) };
                fetched.push(f);
            }
        }
        let typename = Value::String(obj.ty.name().to_owned());
        let has_scalars = obj.fields.iter().any(|(_, p)| matches!(p, Pick::Scalar(_)));
        let mut out = Vec::with_capacity(rows.len());
        for row in rows {
            let typed = has_scalars.then(|| Typed::of(row));
            let mut map = IndexMap::with_capacity(obj.fields.len());
            let mut next = fetched.iter_mut();
            for (key, pick) in &obj.fields {
                let value = match pick {
                    Pick::Typename => typename.clone(),
                    Pick::Scalar(field) => match typed.as_ref().and_then(|t| t.value(field)) {
                        Some(v) => v,
                        None => return Ok(None),
                    },
                    Pick::Rel(rel, _) => {
                        let key = row.key(*rel);
                        match (next.next(), key) {
                            // Each parent appears once among `rows` (a page,
                            // rows by id, or children of one parent each), so
                            // its children move out rather than being copied.
                            (Some(Fetched::Many(m)), Some(k)) => Value::List(m.remove(&k).unwrap_or_default()),
                            (Some(Fetched::One(m)), Some(k)) => match m.get(&k) {
                                Some(v) => v.clone(),
                                // A project's client is required: gone, it is the resolvers' error.
                                None if *rel == Rel::ProjectClient => return Ok(None),
                                None => Value::Null,
                            },
                            (Some(Fetched::One(_)), None) => Value::Null,
                            _ => return Ok(None),
                        }
                    }
                };
                map.insert(key.clone(), value);
            }
            out.push(Value::Object(map));
        }
        Ok(Some(out))
    })
}

/// One object's value under `obj`.
pub(crate) async fn render_one(db: &TenantDb, obj: &Obj, row: AnyRow) -> Built<Value> {
    let rows = [row];
    Ok(objects(db, obj, &rows).await?.and_then(|mut v| v.pop()))
}

/// A connection's value under `plan`, from its page of rows.
pub(crate) async fn render_connection(db: &TenantDb, plan: &ConnPlan, page: &Page<AnyRow>) -> Built<Value> {
    let cursors: Vec<String> = page.items.iter().map(|r| cursor(r.id())).collect();
    let typename = |suffix: &str| Value::String(format!("{}{suffix}", plan.node.name()));
    let mut map = IndexMap::with_capacity(plan.fields.len());
    for (key, pick) in &plan.fields {
        let value = match pick {
            ConnPick::Typename => typename("Connection"),
            ConnPick::Nodes(obj) => match objects(db, obj, &page.items).await? {
                Some(nodes) => Value::List(nodes),
                None => return Ok(None),
            },
            ConnPick::Edges(edge) => {
                // One list of nodes per `node` field (aliases may ask twice).
                let mut nodes = Vec::new();
                for (_, pick) in edge {
                    if let EdgePick::Node(obj) = pick {
                        match objects(db, obj, &page.items).await? {
                            Some(n) => nodes.push(n.into_iter()),
                            None => return Ok(None),
                        }
                    }
                }
                let mut edges = Vec::with_capacity(cursors.len());
                for c in &cursors {
                    let mut e = IndexMap::with_capacity(edge.len());
                    let mut next = nodes.iter_mut();
                    for (key, pick) in edge {
                        let value = match pick {
                            EdgePick::Typename => typename("Edge"),
                            EdgePick::Cursor => Value::String(c.clone()),
                            EdgePick::Node(_) => next.next().and_then(Iterator::next).unwrap_or_default(),
                        };
                        e.insert(key.clone(), value);
                    }
                    edges.push(Value::Object(e));
                }
                Value::List(edges)
            }
            ConnPick::PageInfo(info) => {
                let mut p = IndexMap::with_capacity(info.len());
                for (key, pick) in info {
                    let value = match pick {
                        PageInfoPick::Typename => Value::String("PageInfo".to_owned()),
                        PageInfoPick::HasPreviousPage => Value::Boolean(page.has_previous),
                        PageInfoPick::HasNextPage => Value::Boolean(page.has_next),
                        PageInfoPick::StartCursor => cursors.first().map_or(Value::Null, |c| Value::String(c.clone())),
                        PageInfoPick::EndCursor => cursors.last().map_or(Value::Null, |c| Value::String(c.clone())),
                    };
                    p.insert(key.clone(), value);
                }
                Value::Object(p)
            }
        };
        map.insert(key.clone(), value);
    }
    Ok(Some(Value::Object(map)))
}

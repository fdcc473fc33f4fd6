//! Look-ahead planning for the agency's read paths. A list root (`clients`,
//! `projects`, `documents`) or a single-object root (`client`, `project`,
//! `document`) reads its whole selection before anything resolves, turns it
//! into a plan ([`ConnPlan`], [`Obj`]), fetches the tree in a fixed number
//! of statements (one per relation asked, whatever the page sizes) and
//! builds the answer's values directly, in selection order: no resolver
//! future, dataloader call or per-field extension hook for the thousand
//! fields of a nested page.
//!
//! The plan covers what can be answered from rows alone. Anything else (a
//! field with side effects such as `downloadUrl`, a nested argument out of
//! range, an API key asking for `uploader`, a relation whose row is gone)
//! declines, and the root resolves field by field as before. The resolvers
//! stay the reference: the corpus test compares both, byte for byte.

mod render;
mod select;

use std::{borrow::Cow, sync::Mutex};

use async_graphql::{
    ContextSelectionSet, OutputType, Positioned, ServerResult, Value, parser::types::Field, registry::Registry,
};

pub(crate) use render::{render_connection, render_one};
pub(crate) use select::{plan_connection, plan_object};

/// The object types a plan can answer from rows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Ty {
    Client,
    Project,
    Document,
    User,
}

impl Ty {
    fn name(self) -> &'static str {
        match self {
            Ty::Client => "Client",
            Ty::Project => "Project",
            Ty::Document => "Document",
            Ty::User => "User",
        }
    }
}

/// A relation between rows, and how to fetch it for many parents at once.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Rel {
    ProjectClient,
    DocumentProject,
    DocumentClient,
    DocumentUploader,
    /// The first `n` projects of a client.
    ClientProjects(u64),
    /// The first `n` documents of a project.
    ProjectDocuments(u64),
}

/// What a selection asks of one object type, in response order (fields of
/// the same response key already merged, fragments flattened).
#[derive(Debug)]
pub(crate) struct Obj {
    pub ty: Ty,
    pub fields: Vec<(async_graphql::Name, Pick)>,
}

#[derive(Debug)]
pub(crate) enum Pick {
    Typename,
    /// A scalar or enum field, by its GraphQL name.
    Scalar(&'static str),
    Rel(Rel, Obj),
}

/// What a selection asks of a connection.
#[derive(Debug)]
pub(crate) struct ConnPlan {
    pub node: Ty,
    pub fields: Vec<(async_graphql::Name, ConnPick)>,
}

#[derive(Debug)]
pub(crate) enum ConnPick {
    Typename,
    Edges(Vec<(async_graphql::Name, EdgePick)>),
    Nodes(Obj),
    PageInfo(Vec<(async_graphql::Name, PageInfoPick)>),
}

#[derive(Debug)]
pub(crate) enum EdgePick {
    Typename,
    Cursor,
    Node(Obj),
}

#[derive(Debug, Clone, Copy)]
pub(crate) enum PageInfoPick {
    Typename,
    HasPreviousPage,
    HasNextPage,
    StartCursor,
    EndCursor,
}

/// A root field's answer: built by a plan, or left to the resolvers. Has
/// the GraphQL type of `T`, so the schema does not change.
pub(crate) enum Planned<T> {
    Built(Mutex<Option<Value>>),
    Resolve(T),
}

impl<T> Planned<T> {
    pub(crate) fn built(value: Value) -> Self {
        Self::Built(Mutex::new(Some(value)))
    }
}

impl<T: OutputType> OutputType for Planned<T> {
    fn type_name() -> Cow<'static, str> {
        T::type_name()
    }

    fn qualified_type_name() -> String {
        T::qualified_type_name()
    }

    fn create_type_info(registry: &mut Registry) -> String {
        T::create_type_info(registry)
    }

    async fn resolve(&self, ctx: &ContextSelectionSet<'_>, field: &Positioned<Field>) -> ServerResult<Value> {
        match self {
            // Resolved once: the value moves out.
            Self::Built(value) => Ok(value.lock().unwrap_or_else(std::sync::PoisonError::into_inner).take().unwrap_or_default()),
            Self::Resolve(t) => t.resolve(ctx, field).await,
        }
    }
}

/// How many root fields of the request a plan answered (development
/// answers show it in `x-aggios-planned-reads`, for tests).
#[derive(Default)]
pub struct PlannedReads(pub std::sync::atomic::AtomicU64);

fn answered(ctx: &async_graphql::Context<'_>) {
    if let Ok(r) = crate::graphql::request(ctx) {
        r.extension_or_insert_with(PlannedReads::default).0.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    }
}

fn enabled(ctx: &async_graphql::Context<'_>) -> bool {
    crate::graphql::state(ctx).is_ok_and(|s| s.settings.server.planned_reads)
}

/// A connection root's answer from its page of rows: planned when the
/// selection allows, else the connection for the resolvers.
pub(crate) async fn connection<R, N>(
    ctx: &async_graphql::Context<'_>,
    ty: Ty,
    page: crate::store::page::Page<R>,
    id: fn(&R) -> uuid::Uuid,
    node: fn(&R) -> N,
) -> async_graphql::Result<Planned<crate::graphql::connection::Conn<N>>>
where
    R: Clone + Into<render::AnyRow>,
    N: OutputType,
{
    if let Some(plan) = enabled(ctx).then(|| plan_connection(ctx, ty)).flatten() {
        let db = crate::graphql::request(ctx)?.db()?;
        let rows = crate::store::page::Page {
            items: page.items.iter().cloned().map(Into::into).collect(),
            has_next: page.has_next,
            has_previous: page.has_previous,
        };
        if let Some(value) = render_connection(db, &plan, &rows).await.map_err(crate::error::ApiError::from)? {
            answered(ctx);
            return Ok(Planned::built(value));
        }
    }
    Ok(Planned::Resolve(crate::graphql::connection::connection(page, id, |r| node(&r))))
}

/// A single-object root's answer from its row, planned when it can be.
pub(crate) async fn object<R, N>(ctx: &async_graphql::Context<'_>, ty: Ty, row: R, node: fn(&R) -> N) -> async_graphql::Result<Planned<N>>
where
    R: Clone + Into<render::AnyRow>,
    N: OutputType,
{
    if let Some(plan) = enabled(ctx).then(|| plan_object(ctx, ty)).flatten() {
        let db = crate::graphql::request(ctx)?.db()?;
        if let Some(value) = render_one(db, &plan, row.clone().into()).await.map_err(crate::error::ApiError::from)? {
            answered(ctx);
            return Ok(Planned::built(value));
        }
    }
    Ok(Planned::Resolve(node(&row)))
}

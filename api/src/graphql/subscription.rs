//! The subscription root: what an agency's screens follow live. A
//! subscription runs in two ways, both through the whole schema (its
//! guards, limits and rate limits):
//! - once when it starts, with [`Registering`] in its data: the root field
//!   checks its arguments, records what it follows ([`Interest`]) and yields
//!   nothing;
//! - once per matching change, with [`Delivered`] in its data and a fresh
//!   request context (its own short transaction and dataloaders): the root
//!   field yields that change, and its selection is resolved like a query's.
//!
//! The HTTP layer (`http::live`) keeps the interests and runs the second
//! step when the bus brings a change.

use std::sync::{Mutex, PoisonError};

use async_graphql::{Context, Enum, ID, Object, Subscription};
use chrono::{DateTime, Utc};
use futures::Stream;
use uuid::Uuid;

use super::{
    guards::{KeyScope, RoleAtLeast},
    parse_opt_id,
    plan::{self, Planned, Ty},
    request,
    types::{AuditEvent, Client, Document, Project},
};
use crate::{
    auth::{Role, Scope},
    events::{self, Change, Topic},
    store::{
        self,
        rows::{ClientRow, DocumentRow, ProjectRow},
    },
};

/// The change an event's execution answers.
pub struct Delivered(pub Change);

/// Filled by the root field when a subscription starts (in the request's
/// data as an `Arc`, so that its runner reads it after).
#[derive(Default)]
pub struct Registering(Mutex<Option<Interest>>);

impl Registering {
    pub fn interest(&self) -> Option<Interest> {
        self.0.lock().unwrap_or_else(PoisonError::into_inner).clone()
    }
}

/// What one subscription follows: a kind of object, narrowed by owner.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Interest {
    pub topic: Topic,
    pub client: Option<Uuid>,
    pub project: Option<Uuid>,
    pub id: Option<Uuid>,
}

impl Interest {
    pub fn matches(&self, c: &Change) -> bool {
        c.topic == self.topic
            && self.client.is_none_or(|x| c.client == Some(x))
            && self.project.is_none_or(|x| c.project == Some(x))
            && self.id.is_none_or(|x| c.id == x)
    }
}


/// The change to answer when delivering one that `interest` matches;
/// nothing otherwise (when registering, after recording the interest).
fn delivered(ctx: &Context<'_>, interest: Interest) -> Option<Change> {
    match ctx.data_opt::<Delivered>() {
        Some(Delivered(change)) => interest.matches(change).then(|| change.clone()),
        None => {
            if let Some(registering) = ctx.data_opt::<std::sync::Arc<Registering>>() {
                *registering.0.lock().unwrap_or_else(PoisonError::into_inner) = Some(interest);
            }
            None
        }
    }
}

fn follow<T>(ctx: &Context<'_>, interest: Interest, make: fn(Change) -> T) -> impl Stream<Item = T> + use<T> {
    futures::stream::iter(delivered(ctx, interest).map(make))
}

#[derive(Default)]
pub struct Subscription;

#[Subscription]
impl Subscription {
    /// Changes to the agency's clients; only one client's with `clientId`.
    #[graphql(guard = "RoleAtLeast(Role::Member).or(KeyScope(Scope::Read))")]
    async fn client_changed(&self, ctx: &Context<'_>, client_id: Option<ID>) -> async_graphql::Result<impl Stream<Item = ClientChange> + use<>> {
        let client = parse_opt_id(client_id.as_ref(), "client")?;
        Ok(follow(ctx, Interest { topic: Topic::Client, client, project: None, id: None }, ClientChange))
    }

    /// Changes to the agency's projects, optionally one client's or one
    /// project's.
    #[graphql(guard = "RoleAtLeast(Role::Member).or(KeyScope(Scope::Read))")]
    async fn project_changed(
        &self,
        ctx: &Context<'_>,
        client_id: Option<ID>,
        project_id: Option<ID>,
    ) -> async_graphql::Result<impl Stream<Item = ProjectChange> + use<>> {
        let (client, project) = (parse_opt_id(client_id.as_ref(), "client")?, parse_opt_id(project_id.as_ref(), "project")?);
        Ok(follow(ctx, Interest { topic: Topic::Project, client, project, id: None }, ProjectChange))
    }

    /// Changes to the agency's documents: uploads (`CREATED`), new versions
    /// (`VERSION_ADDED`), renames and deletions; optionally one client's
    /// (directly or through its projects), one project's or one document's.
    #[graphql(guard = "RoleAtLeast(Role::Member).or(KeyScope(Scope::Read))")]
    async fn document_changed(
        &self,
        ctx: &Context<'_>,
        client_id: Option<ID>,
        project_id: Option<ID>,
        document_id: Option<ID>,
    ) -> async_graphql::Result<impl Stream<Item = DocumentChange> + use<>> {
        let interest = Interest {
            topic: Topic::Document,
            client: parse_opt_id(client_id.as_ref(), "client")?,
            project: parse_opt_id(project_id.as_ref(), "project")?,
            id: parse_opt_id(document_id.as_ref(), "document")?,
        };
        Ok(follow(ctx, interest, DocumentChange))
    }

    /// Every new audit event of the agency (owners and admins).
    #[graphql(guard = "RoleAtLeast(Role::Admin)")]
    async fn audit_event_recorded(&self, ctx: &Context<'_>) -> async_graphql::Result<impl Stream<Item = AuditEvent> + use<>> {
        let event = match delivered(ctx, Interest { topic: Topic::Audit, client: None, project: None, id: None }) {
            Some(change) => store::audit::by_id(request(ctx)?.db()?, change.id).await?.map(AuditEvent::from),
            None => None,
        };
        Ok(futures::stream::iter(event))
    }
}

#[derive(Enum, Debug, Clone, Copy, PartialEq, Eq)]
#[graphql(remote = "events::ChangeKind")]
pub enum ChangeKind {
    Created,
    Updated,
    Deleted,
    /// A document's new version.
    VersionAdded,
}

fn at(c: &Change) -> DateTime<Utc> {
    DateTime::from_timestamp_micros(c.at_us).unwrap_or_default()
}

fn gone(c: &Change) -> bool {
    c.kind == events::ChangeKind::Deleted
}

fn id(u: Uuid) -> ID {
    ID(u.to_string())
}

/// A client created, updated or deleted.
pub struct ClientChange(Change);

#[Object]
impl ClientChange {
    async fn kind(&self) -> ChangeKind {
        self.0.kind.into()
    }

    async fn client_id(&self) -> ID {
        id(self.0.id)
    }

    /// The client as it is now; null once deleted.
    async fn client(&self, ctx: &Context<'_>) -> async_graphql::Result<Option<Planned<Client>>> {
        if gone(&self.0) {
            return Ok(None);
        }
        let Some(found) = store::clients::by_id(request(ctx)?.db()?, self.0.id).await? else { return Ok(None) };
        Ok(Some(plan::object(ctx, Ty::Client, ClientRow::from(found), |r| Client::from(r)).await?))
    }

    /// When the change was published, after its commit.
    async fn at(&self) -> DateTime<Utc> {
        at(&self.0)
    }
}

/// A project created, updated or deleted.
pub struct ProjectChange(Change);

#[Object]
impl ProjectChange {
    async fn kind(&self) -> ChangeKind {
        self.0.kind.into()
    }

    async fn project_id(&self) -> ID {
        id(self.0.id)
    }

    async fn client_id(&self) -> Option<ID> {
        self.0.client.map(id)
    }

    /// The project as it is now; null once deleted.
    async fn project(&self, ctx: &Context<'_>) -> async_graphql::Result<Option<Planned<Project>>> {
        if gone(&self.0) {
            return Ok(None);
        }
        let Some(found) = store::projects::by_id(request(ctx)?.db()?, self.0.id).await? else { return Ok(None) };
        Ok(Some(plan::object(ctx, Ty::Project, ProjectRow::from(found), |r| Project::from(r)).await?))
    }

    async fn at(&self) -> DateTime<Utc> {
        at(&self.0)
    }
}

/// A document uploaded, renamed, given a new version or deleted.
pub struct DocumentChange(Change);

#[Object]
impl DocumentChange {
    async fn kind(&self) -> ChangeKind {
        self.0.kind.into()
    }

    async fn document_id(&self) -> ID {
        id(self.0.id)
    }

    /// Its project, if it belongs to one.
    async fn project_id(&self) -> Option<ID> {
        self.0.project.map(id)
    }

    /// Its client: its own, or its project's.
    async fn client_id(&self) -> Option<ID> {
        self.0.client.map(id)
    }

    /// The version added (1 for an upload).
    async fn version(&self) -> Option<i32> {
        self.0.version
    }

    /// The document as it is now; null once deleted.
    async fn document(&self, ctx: &Context<'_>) -> async_graphql::Result<Option<Planned<Document>>> {
        if gone(&self.0) {
            return Ok(None);
        }
        let Some(found) = store::documents::by_id(request(ctx)?.db()?, self.0.id).await? else { return Ok(None) };
        Ok(Some(plan::object(ctx, Ty::Document, DocumentRow::from(found), |r| Document::from(r)).await?))
    }

    async fn at(&self) -> DateTime<Utc> {
        at(&self.0)
    }
}

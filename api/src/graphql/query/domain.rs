use async_graphql::{Context, ID, Object};

use crate::{
    auth::{Role, Scope},
    error::ApiError,
    graphql::{
        connection::{Conn, connection, page_args},
        plan::{self, Planned, Ty},
        guards::{KeyScope, RoleAtLeast},
        parse_id, parse_opt_id, request,
        types::{
            AuditEvent, AuditEventFilter, Client, ClientFilter, Document, DocumentFilter, Project, ProjectFilter, enum_name,
        },
    },
    store::{
        self,
        rows::{ClientRow, DocumentRow, ProjectRow},
    },
};


#[derive(Default)]
pub struct DomainQuery;

#[Object]
impl DomainQuery {
    /// The agency's clients, oldest first; at most 100 a page.
    #[graphql(guard = "RoleAtLeast(Role::Member).or(KeyScope(Scope::Read))", complexity = "crate::graphql::limits::connection_cost(first, last, child_complexity)")]
    async fn clients(
        &self,
        ctx: &Context<'_>,
        first: Option<i32>,
        after: Option<String>,
        last: Option<i32>,
        before: Option<String>,
        filter: Option<ClientFilter>,
    ) -> async_graphql::Result<Planned<Conn<Client>>> {
        let f = filter.unwrap_or_default();
        let filter = store::clients::Filter {
            status: f.status.map(|s| enum_name(s).to_owned()),
            common: store::Common { name_contains: f.name_contains, created_after: f.created_after, created_before: f.created_before },
        };
        let page = store::clients::list(request(ctx)?.db()?, &filter, &page_args(first, after, last, before)).await?;
        plan::connection(ctx, Ty::Client, page, |r| r.id, |r| Client::from(r)).await
    }

    #[graphql(guard = "RoleAtLeast(Role::Member).or(KeyScope(Scope::Read))")]
    async fn client(&self, ctx: &Context<'_>, id: ID) -> async_graphql::Result<Planned<Client>> {
        let id = parse_id(&id, "client")?;
        let found = store::clients::by_id(request(ctx)?.db()?, id).await?.ok_or(ApiError::NotFound("client"))?;
        plan::object(ctx, Ty::Client, ClientRow::from(found), |r| Client::from(r)).await
    }

    /// The agency's projects, oldest first; at most 100 a page.
    #[graphql(guard = "RoleAtLeast(Role::Member).or(KeyScope(Scope::Read))", complexity = "crate::graphql::limits::connection_cost(first, last, child_complexity)")]
    async fn projects(
        &self,
        ctx: &Context<'_>,
        first: Option<i32>,
        after: Option<String>,
        last: Option<i32>,
        before: Option<String>,
        filter: Option<ProjectFilter>,
    ) -> async_graphql::Result<Planned<Conn<Project>>> {
        let f = filter.unwrap_or_default();
        let filter = store::projects::Filter {
            status: f.status.map(|s| enum_name(s).to_owned()),
            client_id: parse_opt_id(f.client_id.as_ref(), "client")?,
            common: store::Common { name_contains: f.name_contains, created_after: f.created_after, created_before: f.created_before },
        };
        let page = store::projects::list(request(ctx)?.db()?, &filter, &page_args(first, after, last, before)).await?;
        plan::connection(ctx, Ty::Project, page, |r| r.id, |r| Project::from(r)).await
    }

    #[graphql(guard = "RoleAtLeast(Role::Member).or(KeyScope(Scope::Read))")]
    async fn project(&self, ctx: &Context<'_>, id: ID) -> async_graphql::Result<Planned<Project>> {
        let id = parse_id(&id, "project")?;
        let found = store::projects::by_id(request(ctx)?.db()?, id).await?.ok_or(ApiError::NotFound("project"))?;
        plan::object(ctx, Ty::Project, ProjectRow::from(found), |r| Project::from(r)).await
    }

    /// The agency's documents, oldest first; at most 100 a page.
    #[graphql(guard = "RoleAtLeast(Role::Member).or(KeyScope(Scope::Read))", complexity = "crate::graphql::limits::connection_cost(first, last, child_complexity)")]
    async fn documents(
        &self,
        ctx: &Context<'_>,
        first: Option<i32>,
        after: Option<String>,
        last: Option<i32>,
        before: Option<String>,
        filter: Option<DocumentFilter>,
    ) -> async_graphql::Result<Planned<Conn<Document>>> {
        let f = filter.unwrap_or_default();
        let filter = store::documents::Filter {
            project_id: parse_opt_id(f.project_id.as_ref(), "project")?,
            client_id: parse_opt_id(f.client_id.as_ref(), "client")?,
            common: store::Common { name_contains: f.name_contains, created_after: f.created_after, created_before: f.created_before },
        };
        let page = store::documents::list(request(ctx)?.db()?, &filter, &page_args(first, after, last, before)).await?;
        plan::connection(ctx, Ty::Document, page, |r| r.id, |r| Document::from(r)).await
    }

    #[graphql(guard = "RoleAtLeast(Role::Member).or(KeyScope(Scope::Read))")]
    async fn document(&self, ctx: &Context<'_>, id: ID) -> async_graphql::Result<Planned<Document>> {
        let id = parse_id(&id, "document")?;
        let found = store::documents::by_id(request(ctx)?.db()?, id).await?.ok_or(ApiError::NotFound("document"))?;
        plan::object(ctx, Ty::Document, DocumentRow::from(found), |r| Document::from(r)).await
    }

    /// Who changed what, newest last (owners and admins).
    #[graphql(guard = "RoleAtLeast(Role::Admin)", complexity = "crate::graphql::limits::connection_cost(first, last, child_complexity)")]
    async fn audit_events(
        &self,
        ctx: &Context<'_>,
        first: Option<i32>,
        after: Option<String>,
        last: Option<i32>,
        before: Option<String>,
        filter: Option<AuditEventFilter>,
    ) -> async_graphql::Result<Conn<AuditEvent>> {
        let f = filter.unwrap_or_default();
        let filter = store::audit::Filter {
            action: f.action,
            target_type: f.target_type,
            target_id: parse_opt_id(f.target_id.as_ref(), "target")?,
            actor_user_id: parse_opt_id(f.actor_user_id.as_ref(), "user")?,
            created_after: f.created_after,
            created_before: f.created_before,
        };
        let page = store::audit::list(request(ctx)?.db()?, &filter, &page_args(first, after, last, before)).await?;
        Ok(connection(page, |m| m.id, AuditEvent::from))
    }
}

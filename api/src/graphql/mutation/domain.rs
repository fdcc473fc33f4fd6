use async_graphql::{Context, ID, MaybeUndefined, Object, Upload};
use sea_orm::ActiveValue::Set;
use serde_json::{Map, Value, json};

use crate::{
    auth::{Role, Scope},
    error::{ApiError, ApiResult},
    graphql::{
        guards::{KeyScope, RoleAtLeast},
        parse_id, request,
        types::{
            Client, CreateClientInput, CreateProjectInput, DirectUpload, Document, HttpHeader, Project,
            RequestDocumentUploadInput, UpdateClientInput, UpdateDocumentInput, UpdateProjectInput, UploadDocumentInput,
            enum_name,
        },
    },
    events::{Change, ChangeKind, Topic},
    files::{self, Owner},
    state::AppState,
    store::{self, audit::Event, validate},
    request::RequestContext,
};

/// Exactly one of a project and a client.
fn owner(project: Option<&ID>, client: Option<&ID>) -> ApiResult<Owner> {
    match (project, client) {
        (Some(p), None) => Ok(Owner::Project(parse_id(p, "project")?)),
        (None, Some(c)) => Ok(Owner::Client(parse_id(c, "client")?)),
        _ => Err(ApiError::BadUserInput { field: "projectId", message: "give exactly one of projectId and clientId".into() }),
    }
}

async fn audit(r: &RequestContext, action: &str, target_type: &str, target: uuid::Uuid, changes: Option<Value>) -> ApiResult<()> {
    r.audit(Event { action, target_type, target_id: Some(target), changes }).await
}

/// Tells live subscribers of a client's or project's change once the
/// request commits.
fn announce(r: &RequestContext, topic: Topic, kind: ChangeKind, id: uuid::Uuid, client: uuid::Uuid) -> ApiResult<()> {
    let project = (topic == Topic::Project).then_some(id);
    r.announce(Change::new(r.db()?.tenant(), topic, kind, id).client(Some(client)).project(project));
    Ok(())
}

/// `{ field: value }` of what an update set.
#[derive(Default)]
struct Changes(Map<String, Value>);

impl Changes {
    fn add(&mut self, field: &str, value: impl Into<Value>) {
        self.0.insert(field.into(), value.into());
    }

    fn into_value(self) -> Option<Value> {
        (!self.0.is_empty()).then_some(Value::Object(self.0))
    }
}

/// An optional text field of an update: absent keeps, null or "" clears.
fn maybe_text(
    field: &'static str,
    v: MaybeUndefined<String>,
    check: impl Fn(Option<&str>) -> ApiResult<Option<String>>,
) -> ApiResult<Option<Option<String>>> {
    match v {
        MaybeUndefined::Undefined => Ok(None),
        MaybeUndefined::Null => Ok(Some(None)),
        MaybeUndefined::Value(s) => check(Some(&s)).map(Some),
    }
    .map_err(|e| match e {
        ApiError::BadUserInput { message, .. } => ApiError::BadUserInput { field, message },
        other => other,
    })
}

#[derive(Default)]
pub struct DomainMutation;

#[Object]
impl DomainMutation {
    #[graphql(guard = "RoleAtLeast(Role::Member).or(KeyScope(Scope::ReadWrite))")]
    async fn create_client(&self, ctx: &Context<'_>, input: CreateClientInput) -> async_graphql::Result<Client> {
        let r = request(ctx)?;
        let model = entity::clients::ActiveModel {
            name: Set(validate::name("name", &input.name, 200)?),
            email: Set(validate::optional_email(input.email.as_deref())?),
            phone: Set(validate::optional_phone(input.phone.as_deref())?),
            status: Set(enum_name(input.status).into()),
            notes: Set(validate::optional_text("notes", input.notes.as_deref(), 10_000, true)?),
            ..Default::default()
        };
        let client = store::clients::create(r.db()?, model, r.principal.actor().0).await?;
        let changes = json!({ "name": client.name, "email": client.email, "phone": client.phone, "status": client.status });
        audit(r, "client.create", "client", client.id, Some(changes)).await?;
        announce(r, Topic::Client, ChangeKind::Created, client.id, client.id)?;
        Ok(client.into())
    }

    #[graphql(guard = "RoleAtLeast(Role::Member).or(KeyScope(Scope::ReadWrite))")]
    async fn update_client(&self, ctx: &Context<'_>, id: ID, input: UpdateClientInput) -> async_graphql::Result<Client> {
        let r = request(ctx)?;
        let db = r.db()?;
        let id = parse_id(&id, "client")?;
        let current = store::clients::by_id(db, id).await?.ok_or(ApiError::NotFound("client"))?;
        let mut model: entity::clients::ActiveModel = current.into();
        let mut changes = Changes::default();
        if let Some(name) = input.name {
            let name = validate::name("name", &name, 200)?;
            changes.add("name", name.clone());
            model.name = Set(name);
        }
        if let Some(email) = maybe_text("email", input.email, validate::optional_email)? {
            changes.add("email", email.clone());
            model.email = Set(email);
        }
        if let Some(phone) = maybe_text("phone", input.phone, validate::optional_phone)? {
            changes.add("phone", phone.clone());
            model.phone = Set(phone);
        }
        if let Some(status) = input.status {
            changes.add("status", enum_name(status));
            model.status = Set(enum_name(status).into());
        }
        if let Some(notes) = maybe_text("notes", input.notes, |v| validate::optional_text("notes", v, 10_000, true))? {
            changes.add("notes", notes.clone());
            model.notes = Set(notes);
        }
        let client = store::clients::update(db, model).await?;
        audit(r, "client.update", "client", client.id, changes.into_value()).await?;
        announce(r, Topic::Client, ChangeKind::Updated, client.id, client.id)?;
        Ok(client.into())
    }

    /// Deletes a client. One with projects or documents is a `CONFLICT`
    /// unless `cascade` is true, which deletes those too.
    #[graphql(guard = "RoleAtLeast(Role::Admin).or(KeyScope(Scope::ReadWrite))")]
    async fn delete_client(&self, ctx: &Context<'_>, id: ID, #[graphql(default = false)] cascade: bool) -> async_graphql::Result<bool> {
        let r = request(ctx)?;
        let id = parse_id(&id, "client")?;
        // What a cascade takes along, read first: its deletions are announced too.
        let (projects, documents) = if cascade {
            (store::projects::ids_of_client(r.db()?, id).await?, store::documents::under(r.db()?, Some(id), None).await?)
        } else {
            Default::default()
        };
        if !store::clients::delete(r.db()?, id, cascade).await? {
            return Err(ApiError::NotFound("client").into());
        }
        for (doc, project) in documents {
            r.announce(Change::new(r.db()?.tenant(), Topic::Document, ChangeKind::Deleted, doc).client(Some(id)).project(project));
        }
        for project in projects {
            announce(r, Topic::Project, ChangeKind::Deleted, project, id)?;
        }
        announce(r, Topic::Client, ChangeKind::Deleted, id, id)?;
        if cascade {
            files::quota::recount_usage(r.db()?).await?;
        }
        audit(r, "client.delete", "client", id, Some(json!({ "cascade": cascade }))).await?;
        Ok(true)
    }

    #[graphql(guard = "RoleAtLeast(Role::Member).or(KeyScope(Scope::ReadWrite))")]
    async fn create_project(&self, ctx: &Context<'_>, input: CreateProjectInput) -> async_graphql::Result<Project> {
        let r = request(ctx)?;
        let client = parse_id(&input.client_id, "client")?;
        let model = entity::projects::ActiveModel {
            name: Set(validate::name("name", &input.name, 200)?),
            description: Set(validate::optional_text("description", input.description.as_deref(), 10_000, true)?),
            status: Set(enum_name(input.status).into()),
            due_date: Set(input.due_date),
            ..Default::default()
        };
        let project = store::projects::create(r.db()?, model, client, r.principal.actor().0).await?;
        let changes = json!({ "name": project.name, "clientId": project.client_id, "status": project.status, "dueDate": project.due_date });
        audit(r, "project.create", "project", project.id, Some(changes)).await?;
        announce(r, Topic::Project, ChangeKind::Created, project.id, project.client_id)?;
        Ok(project.into())
    }

    #[graphql(guard = "RoleAtLeast(Role::Member).or(KeyScope(Scope::ReadWrite))")]
    async fn update_project(&self, ctx: &Context<'_>, id: ID, input: UpdateProjectInput) -> async_graphql::Result<Project> {
        let r = request(ctx)?;
        let db = r.db()?;
        let id = parse_id(&id, "project")?;
        let current = store::projects::by_id(db, id).await?.ok_or(ApiError::NotFound("project"))?;
        let mut model: entity::projects::ActiveModel = current.into();
        let mut changes = Changes::default();
        if let Some(name) = input.name {
            let name = validate::name("name", &name, 200)?;
            changes.add("name", name.clone());
            model.name = Set(name);
        }
        if let Some(d) = maybe_text("description", input.description, |v| validate::optional_text("description", v, 10_000, true))? {
            changes.add("description", d.clone());
            model.description = Set(d);
        }
        if let Some(status) = input.status {
            changes.add("status", enum_name(status));
            model.status = Set(enum_name(status).into());
        }
        match input.due_date {
            MaybeUndefined::Undefined => {}
            MaybeUndefined::Null => {
                changes.add("dueDate", Value::Null);
                model.due_date = Set(None);
            }
            MaybeUndefined::Value(d) => {
                changes.add("dueDate", d.to_string());
                model.due_date = Set(Some(d));
            }
        }
        let project = store::projects::update(db, model).await?;
        audit(r, "project.update", "project", project.id, changes.into_value()).await?;
        announce(r, Topic::Project, ChangeKind::Updated, project.id, project.client_id)?;
        Ok(project.into())
    }

    /// Deletes a project. One with documents is a `CONFLICT` unless
    /// `cascade` is true.
    #[graphql(guard = "RoleAtLeast(Role::Admin).or(KeyScope(Scope::ReadWrite))")]
    async fn delete_project(&self, ctx: &Context<'_>, id: ID, #[graphql(default = false)] cascade: bool) -> async_graphql::Result<bool> {
        let r = request(ctx)?;
        let id = parse_id(&id, "project")?;
        let project = store::projects::by_id(r.db()?, id).await?.ok_or(ApiError::NotFound("project"))?;
        let documents = if cascade { store::documents::under(r.db()?, None, Some(id)).await? } else { Vec::new() };
        if !store::projects::delete(r.db()?, id, cascade).await? {
            return Err(ApiError::NotFound("project").into());
        }
        for (doc, _) in documents {
            r.announce(Change::new(r.db()?.tenant(), Topic::Document, ChangeKind::Deleted, doc).client(Some(project.client_id)).project(Some(id)));
        }
        announce(r, Topic::Project, ChangeKind::Deleted, id, project.client_id)?;
        if cascade {
            files::quota::recount_usage(r.db()?).await?;
        }
        audit(r, "project.delete", "project", id, Some(json!({ "cascade": cascade }))).await?;
        Ok(true)
    }

    /// A new document from a file sent with the GraphQL multipart request
    /// spec. The bytes are stored first; the record is written only once
    /// they are, in the request's transaction.
    #[graphql(guard = "RoleAtLeast(Role::Member).or(KeyScope(Scope::ReadWrite))")]
    async fn upload_document(&self, ctx: &Context<'_>, input: UploadDocumentInput) -> async_graphql::Result<Document> {
        let r = request(ctx)?;
        let state = ctx.data::<AppState>()?;
        let owner = owner(input.project_id.as_ref(), input.client_id.as_ref())?;
        let incoming = files::incoming(r, input.file.0)?;
        Ok(files::upload_document(&state.files, r, owner, input.name.as_deref(), incoming).await?.into())
    }

    /// A new version of a document from a file (multipart request spec);
    /// it becomes the current version.
    #[graphql(guard = "RoleAtLeast(Role::Member).or(KeyScope(Scope::ReadWrite))")]
    async fn upload_document_version(&self, ctx: &Context<'_>, document_id: ID, file: Upload) -> async_graphql::Result<Document> {
        let r = request(ctx)?;
        let state = ctx.data::<AppState>()?;
        let id = parse_id(&document_id, "document")?;
        let incoming = files::incoming(r, file.0)?;
        Ok(files::upload_version(&state.files, r, id, incoming).await?.into())
    }

    /// Permission to upload a file straight to storage, bound to its content
    /// type and size. Nothing is recorded until `confirmDocumentUpload`.
    #[graphql(guard = "RoleAtLeast(Role::Member).or(KeyScope(Scope::ReadWrite))")]
    async fn request_document_upload(&self, ctx: &Context<'_>, input: RequestDocumentUploadInput) -> async_graphql::Result<DirectUpload> {
        let r = request(ctx)?;
        let state = ctx.data::<AppState>()?;
        let size = input.size_bytes.get();
        let target = match &input.document_id {
            Some(doc) => {
                if input.project_id.is_some() || input.client_id.is_some() || input.name.is_some() {
                    return Err(ApiError::BadUserInput {
                        field: "documentId",
                        message: "a new version takes documentId alone".into(),
                    }
                    .into());
                }
                Err(parse_id(doc, "document")?)
            }
            None => {
                let name = input.name.clone().ok_or(ApiError::BadUserInput { field: "name", message: "is required for a new document".into() })?;
                Ok((owner(input.project_id.as_ref(), input.client_id.as_ref())?, name))
            }
        };
        let up = files::request_upload(&state.files, r, target, &input.content_type, size).await?;
        Ok(DirectUpload {
            url: up.url,
            method: "PUT".into(),
            headers: up.headers.into_iter().map(|(name, value)| HttpHeader { name, value }).collect(),
            upload_token: up.token,
            expires_at: up.expires_at,
        })
    }

    /// Records a direct upload once its object checks out: it exists, has
    /// the granted size, its bytes match its type, and the quota takes it.
    #[graphql(guard = "RoleAtLeast(Role::Member).or(KeyScope(Scope::ReadWrite))")]
    async fn confirm_document_upload(&self, ctx: &Context<'_>, upload_token: String) -> async_graphql::Result<Document> {
        let r = request(ctx)?;
        let state = ctx.data::<AppState>()?;
        Ok(files::confirm_upload(&state.files, r, &upload_token).await?.into())
    }

    #[graphql(guard = "RoleAtLeast(Role::Member).or(KeyScope(Scope::ReadWrite))")]
    async fn update_document(&self, ctx: &Context<'_>, id: ID, input: UpdateDocumentInput) -> async_graphql::Result<Document> {
        let r = request(ctx)?;
        let db = r.db()?;
        let id = parse_id(&id, "document")?;
        let current = store::documents::by_id(db, id).await?.ok_or(ApiError::NotFound("document"))?;
        let mut model: entity::documents::ActiveModel = current.into();
        let name = validate::name("name", &input.name, 255)?;
        model.name = Set(name.clone());
        let doc = store::documents::update(db, model).await?;
        audit(r, "document.update", "document", doc.id, Some(json!({ "name": name }))).await?;
        files::announce_document(r, &doc, ChangeKind::Updated, None).await?;
        Ok(doc.into())
    }

    #[graphql(guard = "RoleAtLeast(Role::Admin).or(KeyScope(Scope::ReadWrite))")]
    async fn delete_document(&self, ctx: &Context<'_>, id: ID) -> async_graphql::Result<bool> {
        let r = request(ctx)?;
        let id = parse_id(&id, "document")?;
        files::delete_document(r, id).await?;
        Ok(true)
    }
}

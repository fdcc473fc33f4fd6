//! Managing the users of a tenant: owners and admins add, update, change the
//! role of and deactivate users. Only an owner touches owners, and the last
//! active owner can be neither demoted nor deactivated.

use entity::users;
use sea_orm::ActiveValue::Set;
use serde_json::json;
use uuid::Uuid;

use crate::{
    auth::{Auth, Role, password::check_policy, principal::UserPrincipal},
    error::{ApiError, ApiResult},
    store::{
        self, TenantDb, validate,
        audit::Event,
        users::{NewUser, normalize_email},
    },
    request::RequestContext,
};

#[derive(Debug)]
pub struct NewAccount {
    pub email: String,
    pub password: String,
    pub first_name: String,
    pub last_name: String,
    pub role: Role,
}

#[derive(Debug, Default)]
pub struct AccountChanges {
    pub email: Option<String>,
    pub first_name: Option<String>,
    pub last_name: Option<String>,
}

fn caller(ctx: &RequestContext) -> ApiResult<&UserPrincipal> {
    ctx.principal.user().ok_or(ApiError::Unauthenticated)
}

fn role_of(user: &users::Model) -> Role {
    Role::parse(&user.role).unwrap_or(Role::Member)
}

/// The target user of this tenant, and whether the caller may manage them.
async fn target(ctx: &RequestContext, id: Uuid) -> ApiResult<(&TenantDb, users::Model)> {
    let me = caller(ctx)?;
    let db = ctx.db()?;
    let user = store::users::by_id(db, id).await?.ok_or(ApiError::NotFound("user"))?;
    if role_of(&user) == Role::Owner && me.role != Role::Owner {
        return Err(ApiError::Forbidden("only an owner can change an owner"));
    }
    Ok((db, user))
}

async fn ensure_another_owner(db: &TenantDb, user: &users::Model) -> ApiResult<()> {
    if role_of(user) == Role::Owner && user.is_active {
        let owners = store::users::lock_active_owners(db).await?;
        if owners.iter().all(|id| *id == user.id) {
            return Err(ApiError::Conflict(
                "this is the agency's last active owner: make another user an owner first".into(),
            ));
        }
    }
    Ok(())
}

pub async fn create(auth: &Auth, ctx: &RequestContext, new: NewAccount) -> ApiResult<users::Model> {
    let me = caller(ctx)?;
    if new.role == Role::Owner && me.role != Role::Owner {
        return Err(ApiError::Forbidden("only an owner can create an owner"));
    }
    let email = normalize_email(&new.email)?;
    let first_name = validate::name("firstName", &new.first_name, 100)?;
    let last_name = validate::name("lastName", &new.last_name, 100)?;
    check_policy(&new.password, &[&email, &first_name, &last_name])?;
    let password_hash = auth.passwords.hash(&new.password).await?;
    let user = store::users::create(ctx.db()?, NewUser { email, password_hash, first_name, last_name, role: new.role }).await?;
    let changes = json!({ "email": user.email, "role": user.role });
    ctx.audit(Event { action: "user.create", target_type: "user", target_id: Some(user.id), changes: Some(changes) }).await?;
    Ok(user)
}

pub async fn update(auth: &Auth, ctx: &RequestContext, id: Uuid, changes: AccountChanges) -> ApiResult<users::Model> {
    let (db, user) = target(ctx, id).await?;
    let email_changed = changes.email.is_some();
    let mut model: users::ActiveModel = user.into();
    let mut record = serde_json::Map::new();
    if let Some(email) = changes.email {
        let email = normalize_email(&email)?;
        record.insert("email".into(), email.clone().into());
        model.email = Set(email);
    }
    if let Some(first) = changes.first_name {
        let first = validate::name("firstName", &first, 100)?;
        record.insert("firstName".into(), first.clone().into());
        model.first_name = Set(first);
    }
    if let Some(last) = changes.last_name {
        let last = validate::name("lastName", &last, 100)?;
        record.insert("lastName".into(), last.clone().into());
        model.last_name = Set(last);
    }
    let user = store::users::save(db, model).await?;
    ctx.audit(Event { action: "user.update", target_type: "user", target_id: Some(user.id), changes: Some(record.into()) }).await?;
    if email_changed {
        // The email is in the access token: the next one must carry the new.
        auth.revocations.cut_user(db, user.tenant_id, user.id).await?;
    }
    Ok(user)
}

pub async fn change_role(auth: &Auth, ctx: &RequestContext, id: Uuid, role: Role) -> ApiResult<users::Model> {
    if role == Role::Owner && caller(ctx)?.role != Role::Owner {
        return Err(ApiError::Forbidden("only an owner can make someone an owner"));
    }
    let (db, user) = target(ctx, id).await?;
    if role != Role::Owner {
        ensure_another_owner(db, &user).await?;
    }
    let mut model: users::ActiveModel = user.into();
    model.role = Set(role.as_str().into());
    let user = store::users::save(db, model).await?;
    let changes = json!({ "role": role.as_str() });
    ctx.audit(Event { action: "user.role_change", target_type: "user", target_id: Some(user.id), changes: Some(changes) }).await?;
    // The role is in the access token: the next request must refresh.
    auth.revocations.cut_user(db, user.tenant_id, user.id).await?;
    Ok(user)
}

pub async fn set_active(auth: &Auth, ctx: &RequestContext, id: Uuid, active: bool) -> ApiResult<users::Model> {
    let (db, user) = target(ctx, id).await?;
    if !active {
        ensure_another_owner(db, &user).await?;
    }
    let mut model: users::ActiveModel = user.into();
    model.is_active = Set(active);
    let user = store::users::save(db, model).await?;
    let action = if active { "user.reactivate" } else { "user.deactivate" };
    ctx.audit(Event { action, target_type: "user", target_id: Some(user.id), changes: Some(json!({ "isActive": active })) }).await?;
    if !active {
        store::sessions::revoke_all(db, user.id).await?;
        auth.revocations.cut_user(db, user.tenant_id, user.id).await?;
    }
    Ok(user)
}

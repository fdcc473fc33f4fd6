//! Sessions: families of refresh tokens. Each use rotates the token; a spent
//! token presented again means it was stolen, and the whole family is
//! revoked.

use chrono::{DateTime, Duration, Utc};
use entity::refresh_tokens as rt;
use sea_orm::{
    ActiveValue::Set, ColumnTrait, EntityTrait, QueryFilter, QueryOrder as _, sea_query::Expr,
};
use uuid::Uuid;

use super::TenantDb;
use super::refresh_token as refresh;
use crate::error::ApiResult;

#[derive(Debug, Clone)]
pub struct ClientInfo {
    pub ip: Option<String>,
    pub user_agent: Option<String>,
}

#[derive(Debug, Clone, Copy)]
pub struct Lifetimes {
    pub idle: Duration,
    pub absolute: Duration,
}

/// A refresh token just issued, with its row.
#[derive(Debug)]
pub struct Issued {
    pub token: String,
    pub row: rt::Model,
}

fn truncate(s: Option<&str>, max: usize) -> Option<String> {
    s.map(|s| s.chars().take(max).collect())
}

async fn insert(
    db: &TenantDb,
    user: Uuid,
    family: Uuid,
    expires_at: DateTime<Utc>,
    lifetimes: Lifetimes,
    client: &ClientInfo,
) -> ApiResult<Issued> {
    let now = Utc::now();
    let new = refresh::generate(db.tenant());
    let row = rt::Entity::insert(rt::ActiveModel {
        id: Set(Uuid::now_v7()),
        tenant_id: Set(db.tenant()),
        user_id: Set(user),
        family_id: Set(family),
        token_hash: Set(new.hash),
        user_agent: Set(truncate(client.user_agent.as_deref(), 512)),
        client_ip: Set(truncate(client.ip.as_deref(), 45)),
        created_at: Set(now),
        last_used_at: Set(now),
        idle_expires_at: Set((now + lifetimes.idle).min(expires_at)),
        expires_at: Set(expires_at),
        revoked_at: Set(None),
        replaced_by: Set(None),
    })
    .exec_with_returning(db)
    .await?;
    Ok(Issued { token: new.token, row })
}

/// A new session (a new family) for `user`.
pub async fn start(db: &TenantDb, user: Uuid, lifetimes: Lifetimes, client: &ClientInfo) -> ApiResult<Issued> {
    insert(db, user, Uuid::now_v7(), Utc::now() + lifetimes.absolute, lifetimes, client).await
}

/// What presenting a refresh token led to.
#[derive(Debug)]
pub enum Rotation {
    Rotated { issued: Box<Issued>, user: Uuid },
    /// Unknown, expired or revoked: refused, nothing changed.
    Refused,
    /// Spent already: the family was revoked.
    Reused { family: Uuid, user: Uuid },
}

pub async fn rotate(db: &TenantDb, token: &str, lifetimes: Lifetimes, client: &ClientInfo) -> ApiResult<Rotation> {
    let hash = refresh::hash(token);
    let Some(row) = rt::Entity::find()
        .filter(rt::Column::TenantId.eq(db.tenant()))
        .filter(rt::Column::TokenHash.eq(hash))
        .one(db)
        .await?
    else {
        return Ok(Rotation::Refused);
    };
    if row.replaced_by.is_some() {
        revoke_family(db, row.family_id).await?;
        return Ok(Rotation::Reused { family: row.family_id, user: row.user_id });
    }
    let now = Utc::now();
    if row.revoked_at.is_some() || row.expires_at <= now || row.idle_expires_at <= now {
        return Ok(Rotation::Refused);
    }
    let issued = insert(db, row.user_id, row.family_id, row.expires_at, lifetimes, client).await?;
    // Only one of two concurrent uses can win this; the loser is a reuse.
    let won = rt::Entity::update_many()
        .col_expr(rt::Column::ReplacedBy, Expr::value(issued.row.id))
        .col_expr(rt::Column::LastUsedAt, Expr::value(now))
        .filter(rt::Column::TenantId.eq(db.tenant()))
        .filter(rt::Column::Id.eq(row.id))
        .filter(rt::Column::ReplacedBy.is_null())
        .filter(rt::Column::RevokedAt.is_null())
        .exec(db)
        .await?
        .rows_affected
        == 1;
    if !won {
        revoke_family(db, row.family_id).await?;
        return Ok(Rotation::Reused { family: row.family_id, user: row.user_id });
    }
    Ok(Rotation::Rotated { issued: Box::new(issued), user: row.user_id })
}

/// Revokes the live tokens of `db`'s tenant that `which` selects.
async fn revoke_where(db: &TenantDb, which: sea_orm::sea_query::SimpleExpr) -> ApiResult<u64> {
    Ok(rt::Entity::update_many()
        .col_expr(rt::Column::RevokedAt, Expr::value(Utc::now()))
        .filter(rt::Column::TenantId.eq(db.tenant()))
        .filter(rt::Column::RevokedAt.is_null())
        .filter(which)
        .exec(db)
        .await?
        .rows_affected)
}

/// Revokes every token of a session.
pub async fn revoke_family(db: &TenantDb, family: Uuid) -> ApiResult<u64> {
    revoke_where(db, rt::Column::FamilyId.eq(family)).await
}

/// Revokes a session of `user`; `false` when it is not theirs or not live.
pub async fn revoke_user_session(db: &TenantDb, user: Uuid, family: Uuid) -> ApiResult<bool> {
    let owned = rt::Entity::find()
        .filter(rt::Column::TenantId.eq(db.tenant()))
        .filter(rt::Column::FamilyId.eq(family))
        .filter(rt::Column::UserId.eq(user))
        .one(db)
        .await?
        .is_some();
    Ok(owned && revoke_family(db, family).await? > 0)
}

/// Revokes every session of `user`.
pub async fn revoke_all(db: &TenantDb, user: Uuid) -> ApiResult<u64> {
    revoke_where(db, rt::Column::UserId.eq(user)).await
}

/// The live sessions of `user`: the current token of each family.
pub async fn live(db: &TenantDb, user: Uuid) -> ApiResult<Vec<rt::Model>> {
    let now = Utc::now();
    Ok(rt::Entity::find()
        .filter(rt::Column::TenantId.eq(db.tenant()))
        .filter(rt::Column::UserId.eq(user))
        .filter(rt::Column::ReplacedBy.is_null())
        .filter(rt::Column::RevokedAt.is_null())
        .filter(rt::Column::ExpiresAt.gt(now))
        .filter(rt::Column::IdleExpiresAt.gt(now))
        .order_by_desc(rt::Column::LastUsedAt)
        .all(db)
        .await?)
}

/// Revokes every session of every user of `db`'s tenant.
pub async fn revoke_tenant(db: &TenantDb) -> ApiResult<u64> {
    revoke_where(db, Expr::value(true)).await
}

//! Finding the accounts of an email before the tenant is known (sign-in on
//! the general API host). On PostgreSQL this runs in a transaction that sets
//! `aggios.login_email`, which a read-only RLS policy on `users` honours for
//! that one email; the tenant setting stays unset, so nothing else is visible.

use entity::{tenants, users};
use sea_orm::{
    ColumnTrait, ConnectionTrait as _, DbBackend, EntityTrait, QueryFilter, Statement, TransactionTrait as _,
};
use uuid::Uuid;

use super::Database;
use crate::error::ApiResult;

#[derive(Debug, Clone)]
pub struct Candidate {
    pub user: users::Model,
    pub tenant: tenants::Model,
}

/// The accounts with `email`, in `tenant` when given.
pub async fn candidates(db: &Database, email: &str, tenant: Option<Uuid>) -> ApiResult<Vec<Candidate>> {
    let conn = db.platform();
    let tx = conn.begin().await?;
    if conn.get_database_backend() == DbBackend::Postgres {
        tx.execute_raw(Statement::from_sql_and_values(
            DbBackend::Postgres,
            "SELECT set_config($1, $2, true)",
            [migration::LOGIN_EMAIL_SETTING.into(), email.into()],
        ))
        .await?;
    }
    let mut query = users::Entity::find().filter(users::Column::Email.eq(email));
    if let Some(t) = tenant {
        query = query.filter(users::Column::TenantId.eq(t));
    }
    let users = query.all(&tx).await?;
    let tenants = if users.is_empty() {
        Vec::new()
    } else {
        tenants::Entity::find().filter(tenants::Column::Id.is_in(users.iter().map(|u| u.tenant_id))).all(&tx).await?
    };
    tx.commit().await?;
    Ok(users
        .into_iter()
        .filter_map(|user| {
            let tenant = tenants.iter().find(|t| t.id == user.tenant_id)?.clone();
            Some(Candidate { user, tenant })
        })
        .collect())
}

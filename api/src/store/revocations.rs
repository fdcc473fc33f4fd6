//! The `revocations` table: the durable list of ended access (see the
//! migration). Rows are added in the transaction of the change that ends
//! access, read whole by every replica, and pruned once no token they could
//! refuse is still alive.

use chrono::{DateTime, Utc};
use sea_orm::{
    ConnectionTrait, DbErr,
    sea_query::{Alias, Expr, ExprTrait as _, Query},
};
use uuid::Uuid;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Kind {
    /// Every token of a user issued before the cut.
    User,
    /// Every token of every user of a tenant issued before the cut.
    Tenant,
    /// Every token of one session.
    Session,
    /// Every token of a platform administrator issued before the cut.
    Admin,
}

impl Kind {
    pub fn as_str(self) -> &'static str {
        match self {
            Kind::User => "user",
            Kind::Tenant => "tenant",
            Kind::Session => "session",
            Kind::Admin => "admin",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "user" => Kind::User,
            "tenant" => Kind::Tenant,
            "session" => Kind::Session,
            "admin" => Kind::Admin,
            _ => return None,
        })
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Revocation {
    pub kind: Kind,
    pub tenant: Option<Uuid>,
    pub subject: Uuid,
    /// Tokens issued before this instant (µs since the epoch) are refused.
    pub cut_at_us: i64,
}

fn table() -> Alias {
    Alias::new("revocations")
}

pub async fn record(conn: &impl ConnectionTrait, r: Revocation, expires_at: DateTime<Utc>) -> Result<(), DbErr> {
    let insert = Query::insert()
        .into_table(table())
        .columns(["id", "kind", "tenant_id", "subject_id", "cut_at_us", "expires_at"].map(Alias::new))
        .values_panic([
            Uuid::now_v7().into(),
            r.kind.as_str().into(),
            r.tenant.into(),
            r.subject.into(),
            r.cut_at_us.into(),
            expires_at.into(),
        ])
        .to_owned();
    conn.execute(&insert).await.map(|_| ())
}

/// Every revocation that can still refuse a token.
pub async fn live(conn: &impl ConnectionTrait) -> Result<Vec<Revocation>, DbErr> {
    let select = Query::select()
        .columns(["kind", "tenant_id", "subject_id", "cut_at_us"].map(Alias::new))
        .from(table())
        .and_where(Expr::col(Alias::new("expires_at")).gt(Utc::now()))
        .to_owned();
    let rows = conn.query_all(&select).await?;
    let mut out = Vec::with_capacity(rows.len());
    for row in rows {
        let kind: String = row.try_get("", "kind")?;
        let Some(kind) = Kind::parse(&kind) else { continue };
        out.push(Revocation {
            kind,
            tenant: row.try_get("", "tenant_id")?,
            subject: row.try_get("", "subject_id")?,
            cut_at_us: row.try_get("", "cut_at_us")?,
        });
    }
    Ok(out)
}

/// Removes rows no live token can be refused by any more.
pub async fn prune(conn: &impl ConnectionTrait) -> Result<u64, DbErr> {
    let delete = Query::delete()
        .from_table(table())
        .and_where(Expr::col(Alias::new("expires_at")).lte(Utc::now()))
        .to_owned();
    Ok(conn.execute(&delete).await?.rows_affected())
}

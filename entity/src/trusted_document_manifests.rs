//! One upload of an agency's trusted documents (a persisted query list).
//! Each upload is a new version; the latest is the active one.

use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "trusted_document_manifests")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: Uuid,
    pub tenant_id: Uuid,
    pub version: i32,
    /// APOLLO or RELAY: the format it was uploaded in.
    pub format: String,
    pub operation_count: i32,
    /// None when the platform uploaded it (CLI).
    pub uploaded_by_user_id: Option<Uuid>,
    pub uploaded_by: String,
    pub created_at: DateTimeUtc,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}

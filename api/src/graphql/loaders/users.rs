use std::{collections::HashMap, sync::Arc};

use async_graphql::dataloader::Loader;
use entity::users;
use uuid::Uuid;

use crate::store::{self, TenantDb};

/// Users by id, one `IN` query per batch, in the request's tenant only.
pub struct UserLoader {
    db: Arc<TenantDb>,
}

impl UserLoader {
    pub fn new(db: Arc<TenantDb>) -> Self {
        Self { db }
    }
}

impl Loader<Uuid> for UserLoader {
    type Value = users::Model;
    type Error = Arc<sea_orm::DbErr>;

    async fn load(&self, keys: &[Uuid]) -> Result<HashMap<Uuid, Self::Value>, Self::Error> {
        let rows = store::users::by_ids(self.db.as_ref(), keys).await.map_err(Arc::new)?;
        Ok(rows.into_iter().map(|u| (u.id, u)).collect())
    }
}

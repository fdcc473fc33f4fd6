//! What live subscribers hear of a document's change.

use entity::documents;

use crate::{
    error::ApiResult,
    events::{Change, ChangeKind, Topic},
    request::RequestContext,
    store,
};

/// Tells live subscribers of `doc`'s change once the request commits; a
/// project's document belongs to the project's client too.
pub async fn announce_document(r: &RequestContext, doc: &documents::Model, kind: ChangeKind, version: Option<i32>) -> ApiResult<()> {
    let db = r.db()?;
    let client = match (doc.client_id, doc.project_id) {
        (Some(c), _) => Some(c),
        (None, Some(p)) => store::projects::by_id(db, p).await?.map(|p| p.client_id),
        (None, None) => None,
    };
    let mut change = Change::new(db.tenant(), Topic::Document, kind, doc.id).client(client).project(doc.project_id);
    change.version = version;
    r.announce(change);
    Ok(())
}

//! Relay connections from store pages.

use async_graphql::{
    OutputType,
    connection::{Connection, Edge},
};
use uuid::Uuid;

use crate::store::page::{Page, PageArgs, cursor};

pub type Conn<N> = Connection<String, N>;

pub fn page_args(first: Option<i32>, after: Option<String>, last: Option<i32>, before: Option<String>) -> PageArgs {
    PageArgs { first, after, last, before }
}

pub fn connection<M, N: OutputType>(page: Page<M>, id: fn(&M) -> Uuid, node: impl Fn(M) -> N) -> Conn<N> {
    let mut conn = Connection::new(page.has_previous, page.has_next);
    conn.edges.extend(page.items.into_iter().map(|m| Edge::new(cursor(id(&m)), node(m))));
    conn
}

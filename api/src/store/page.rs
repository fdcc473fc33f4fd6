//! Keyset pagination for Relay connections. The order is by `id`: ids are
//! UUIDv7, so id order is creation order, unique and stable under inserts.
//! Cursors are opaque (`base64url("c1:" + id)`).

use base64::{Engine as _, engine::general_purpose::URL_SAFE_NO_PAD};
use sea_orm::{ColumnTrait, EntityTrait, QueryFilter, QueryOrder as _, QuerySelect as _, Select};
use uuid::Uuid;

use crate::error::{ApiError, ApiResult};

pub const DEFAULT_PAGE: u64 = 20;
pub const MAX_PAGE: u64 = 100;

#[derive(Debug, Default, Clone)]
pub struct PageArgs {
    pub first: Option<i32>,
    pub after: Option<String>,
    pub last: Option<i32>,
    pub before: Option<String>,
}

#[derive(Debug, Clone, Copy)]
pub struct Window {
    forward: bool,
    limit: u64,
    after: Option<Uuid>,
    before: Option<Uuid>,
}

#[derive(Debug)]
pub struct Page<T> {
    pub items: Vec<T>,
    pub has_next: bool,
    pub has_previous: bool,
}

pub fn cursor(id: Uuid) -> String {
    URL_SAFE_NO_PAD.encode(format!("c1:{id}"))
}

fn decode(field: &'static str, cursor: &str) -> ApiResult<Uuid> {
    URL_SAFE_NO_PAD
        .decode(cursor)
        .ok()
        .and_then(|b| String::from_utf8(b).ok())
        .and_then(|s| s.strip_prefix("c1:").and_then(|id| Uuid::try_parse(id).ok()))
        .ok_or(ApiError::BadUserInput { field, message: "is not a cursor this API gave out".into() })
}

fn size(field: &'static str, n: i32) -> ApiResult<u64> {
    match u64::try_from(n) {
        Ok(n) if n <= MAX_PAGE => Ok(n),
        _ => Err(ApiError::BadUserInput { field, message: format!("must be between 0 and {MAX_PAGE}") }),
    }
}

impl PageArgs {
    pub fn window(&self) -> ApiResult<Window> {
        if self.first.is_some() && self.last.is_some() {
            return Err(ApiError::BadUserInput { field: "last", message: "give `first` or `last`, not both".into() });
        }
        let after = self.after.as_deref().map(|c| decode("after", c)).transpose()?;
        let before = self.before.as_deref().map(|c| decode("before", c)).transpose()?;
        Ok(match self.last {
            Some(n) => Window { forward: false, limit: size("last", n)?, after, before },
            None => Window { forward: true, limit: self.first.map(|n| size("first", n)).transpose()?.unwrap_or(DEFAULT_PAGE), after, before },
        })
    }
}

impl Window {
    /// Bounds, order and one extra row (to know whether there is more).
    pub fn apply<E: EntityTrait>(&self, select: Select<E>, id: impl ColumnTrait) -> Select<E> {
        let mut select = select;
        if let Some(a) = self.after {
            select = select.filter(id.gt(a));
        }
        if let Some(b) = self.before {
            select = select.filter(id.lt(b));
        }
        let select = if self.forward { select.order_by_asc(id) } else { select.order_by_desc(id) };
        select.limit(self.limit + 1)
    }

    pub fn finish<T>(&self, mut rows: Vec<T>) -> Page<T> {
        let more = rows.len() as u64 > self.limit;
        rows.truncate(usize::try_from(self.limit).unwrap_or(usize::MAX));
        if self.forward {
            Page { items: rows, has_next: more, has_previous: self.after.is_some() }
        } else {
            rows.reverse();
            Page { items: rows, has_next: self.before.is_some(), has_previous: more }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cursors_round_trip_and_bad_arguments_are_refused_by_name() {
        let id = Uuid::now_v7();
        let w = PageArgs { after: Some(cursor(id)), first: Some(3), ..Default::default() }.window().unwrap();
        assert_eq!(w.after, Some(id));
        assert!(PageArgs { first: Some(101), ..Default::default() }.window().is_err());
        assert!(PageArgs { first: Some(-1), ..Default::default() }.window().is_err());
        assert!(PageArgs { first: Some(1), last: Some(1), ..Default::default() }.window().is_err());
        assert!(PageArgs { after: Some("bm9wZQ".into()), ..Default::default() }.window().is_err());
        let w = PageArgs { first: Some(2), ..Default::default() }.window().unwrap();
        let page = w.finish(vec![1, 2, 3]);
        assert_eq!((page.items, page.has_next), (vec![1, 2], true));
        let w = PageArgs { last: Some(2), ..Default::default() }.window().unwrap();
        let page = w.finish(vec![3, 2, 1]);
        assert_eq!((page.items, page.has_previous), (vec![2, 3], true));
    }
}

//! The list shape of docs/api.md: `?page=1&per_page=20` (max 100) →
//! `{"items": [...], "page": 1, "per_page": 20, "total": 57}`.

use serde::Serialize;

use crate::{FieldError, Problem};

pub const DEFAULT_PER_PAGE: i64 = 20;
pub const MAX_PER_PAGE: i64 = 100;
/// Lists serve their first 100 pages (10,000 results at most, at 100 a page): deeper pages are a
/// 422, so no query (a search in particular) ever works for the sake of a page far away. Narrow
/// the query instead. A bound on `page` alone, unlike one on `page * per_page`, is one the
/// OpenAPI document can state (`maximum: 100`).
pub const MAX_PAGE: i64 = 100;

/// A validated page request. Query structs carry `page` and `per_page` as plain optional fields
/// (serde's `flatten` breaks number parsing in query strings) and call [`PageRequest::new`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PageRequest {
    pub page: i64,
    pub per_page: i64,
}

impl PageRequest {
    /// A page within the result window.
    pub fn new(page: Option<i64>, per_page: Option<i64>) -> Result<Self, Problem> {
        Self::checked(page, per_page, true)
    }

    /// A page of a list with no window: one user's own rows (their bookings, their payments),
    /// whose offsets cost little, or a list operators must read whole (every booking, for the
    /// ledger check).
    pub fn for_operators(page: Option<i64>, per_page: Option<i64>) -> Result<Self, Problem> {
        Self::checked(page, per_page, false)
    }

    fn checked(page: Option<i64>, per_page: Option<i64>, windowed: bool) -> Result<Self, Problem> {
        let page = page.unwrap_or(1);
        let per_page = per_page.unwrap_or(DEFAULT_PER_PAGE);
        let mut errors = Vec::new();
        if page < 1 {
            errors.push(FieldError::new("page", "must be at least 1"));
        }
        if !(1..=MAX_PER_PAGE).contains(&per_page) {
            errors.push(FieldError::new("per_page", format!("must be between 1 and {MAX_PER_PAGE}")));
        }
        if windowed && page > MAX_PAGE {
            errors.push(FieldError::new(
                "page",
                format!("only the first {MAX_PAGE} pages are served; narrow the query"),
            ));
        }
        if errors.is_empty() { Ok(Self { page, per_page }) } else { Err(Problem::invalid(errors)) }
    }

    pub fn offset(&self) -> i64 {
        (self.page - 1).saturating_mul(self.per_page)
    }

    pub fn limit(&self) -> i64 {
        self.per_page
    }
}

impl Default for PageRequest {
    fn default() -> Self {
        Self { page: 1, per_page: DEFAULT_PER_PAGE }
    }
}

#[derive(Debug, Clone, Serialize, serde::Deserialize, utoipa::ToSchema)]
pub struct Page<T> {
    pub items: Vec<T>,
    pub page: i64,
    pub per_page: i64,
    pub total: i64,
}

impl<T> Page<T> {
    pub fn new(items: Vec<T>, request: PageRequest, total: i64) -> Self {
        Self { items, page: request.page, per_page: request.per_page, total }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_and_limits() {
        assert_eq!(PageRequest::new(None, None).expect("valid"), PageRequest::default());
        assert_eq!(PageRequest::new(Some(3), Some(10)).expect("valid").offset(), 20);
        let p = PageRequest::new(Some(0), Some(10_000)).expect_err("invalid");
        assert_eq!(p.status, 422);
        assert_eq!(p.errors.len(), 2);
        assert_eq!(p.errors[1].field, "per_page");
    }

    #[test]
    fn pages_beyond_the_result_window_are_refused() {
        assert!(PageRequest::new(Some(100), Some(100)).is_ok(), "the 10,000th result is served");
        assert!(PageRequest::new(Some(100), Some(1)).is_ok(), "any page up to 100, whatever its size");
        assert!(PageRequest::new(Some(101), Some(100)).is_err());
        assert!(PageRequest::new(Some(101), Some(1)).is_err());
        assert!(PageRequest::new(Some(10_000_000_000_000_000), Some(100)).is_err(), "no overflow");
        assert!(PageRequest::new(Some(0), None).is_err() && PageRequest::new(None, Some(101)).is_err());
        assert!(PageRequest::for_operators(Some(1_000), Some(100)).is_ok(), "operators reach every row");
    }
}

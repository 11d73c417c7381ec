//! A review and the rules its fields follow, checked once at the edge. No axum, no SQL.

use platform::FieldError;
use serde::Serialize;
use time::OffsetDateTime;
use uuid::Uuid;

pub const MAX_TITLE: usize = 120;
pub const MAX_BODY: usize = 4000;

/// A review as the API shows it.
#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
pub struct Review {
    pub id: Uuid,
    pub movie_id: Uuid,
    pub user_id: Uuid,
    /// 1 to 10.
    pub rating: i64,
    pub title: String,
    pub body: String,
    /// The author booked a showtime of the movie or played it.
    pub verified: bool,
    /// 1 when posted, one more on each change; events carry it.
    pub version: i64,
    #[serde(with = "time::serde::rfc3339")]
    #[schema(value_type = String, format = DateTime)]
    pub created_at: OffsetDateTime,
    #[serde(with = "time::serde::rfc3339")]
    #[schema(value_type = String, format = DateTime)]
    pub updated_at: OffsetDateTime,
}

pub fn check_rating(rating: i64, errors: &mut Vec<FieldError>) {
    if !(1..=10).contains(&rating) {
        errors.push(FieldError::new("rating", "must be a whole number from 1 to 10"));
    }
}

/// A title: 1 to 120 characters, not only spaces, no control characters.
pub fn check_title(title: &str, errors: &mut Vec<FieldError>) {
    let chars = title.chars().count();
    if chars == 0 || chars > MAX_TITLE || title.trim().is_empty() || title.chars().any(char::is_control) {
        errors.push(FieldError::new("title", format!("must be 1 to {MAX_TITLE} characters of text")));
    }
}

/// A body: up to 4000 characters; line breaks and tabs are fine, other control characters not.
pub fn check_body(body: &str, errors: &mut Vec<FieldError>) {
    let bad = |c: char| c.is_control() && !matches!(c, '\n' | '\r' | '\t');
    if body.chars().count() > MAX_BODY || body.chars().any(bad) {
        errors.push(FieldError::new("body", format!("must be at most {MAX_BODY} characters of text")));
    }
}

/// The histogram of a movie's ratings: how many of each from 1 to 10.
pub fn histogram(counts: &[(i64, i64)]) -> std::collections::BTreeMap<String, i64> {
    let mut out: std::collections::BTreeMap<String, i64> = (1..=10).map(|r| (r.to_string(), 0)).collect();
    for (rating, n) in counts {
        if let Some(slot) = out.get_mut(&rating.to_string()) {
            *slot += n;
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fields_are_checked() {
        let mut e = Vec::new();
        check_rating(0, &mut e);
        check_rating(11, &mut e);
        check_title("   ", &mut e);
        check_title(&"x".repeat(121), &mut e);
        check_title("a\u{7}b", &mut e);
        check_body("bell\u{7}", &mut e);
        check_body(&"x".repeat(4001), &mut e);
        assert_eq!(e.len(), 7);
        let mut ok = Vec::new();
        check_rating(10, &mut ok);
        check_title("Great", &mut ok);
        check_body("line one\nline two\ttab", &mut ok);
        check_body("", &mut ok);
        assert!(ok.is_empty());
        let h = histogram(&[(3, 2), (10, 1), (42, 5)]);
        assert_eq!((h.len(), h["3"], h["10"], h["1"]), (10, 2, 1, 0));
    }
}

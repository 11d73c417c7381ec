//! Movies as the API sees them, and parsing requests at the edge.

use platform::FieldError;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

/// The genres the schema seeds (docs/api.md); a slug outside this list is a 422.
pub const GENRES: &[&str] = &[
    "action",
    "adventure",
    "animation",
    "comedy",
    "crime",
    "documentary",
    "drama",
    "family",
    "fantasy",
    "history",
    "horror",
    "music",
    "mystery",
    "romance",
    "science-fiction",
    "thriller",
    "war",
    "western",
];

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Movie {
    pub id: Uuid,
    pub title: String,
    pub synopsis: String,
    pub genres: Vec<String>,
    pub runtime_minutes: i64,
    /// `YYYY-MM-DD`.
    pub release_date: Option<String>,
    pub director: String,
    pub cast: Vec<String>,
    /// The average of the reviews' ratings (1-10), null when there are none.
    pub rating: Option<f64>,
    pub rating_count: i64,
    pub poster_url: Option<String>,
    pub featured: bool,
    pub streamable: bool,
    pub imdb_id: Option<String>,
}

/// A movie to create, already checked.
#[derive(Debug, Clone, PartialEq)]
pub struct NewMovie {
    pub title: String,
    pub synopsis: String,
    pub genres: Vec<String>,
    pub runtime_minutes: i64,
    pub release_date: Option<time::Date>,
    pub director: String,
    pub cast: Vec<String>,
    pub poster_url: Option<String>,
    pub featured: bool,
    pub streamable: bool,
    pub imdb_id: Option<String>,
}

/// The body of `POST /movies`, and the fields `PATCH` may change.
#[derive(Debug, Clone, Default, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct MovieInput {
    pub title: Option<String>,
    pub synopsis: Option<String>,
    pub genres: Option<Vec<String>>,
    pub runtime_minutes: Option<i64>,
    pub release_date: Option<String>,
    pub director: Option<String>,
    pub cast: Option<Vec<String>>,
    pub poster_url: Option<String>,
    pub featured: Option<bool>,
    pub streamable: Option<bool>,
    pub imdb_id: Option<String>,
}

const DATE: &[time::format_description::FormatItem<'static>] =
    time::macros::format_description!("[year]-[month]-[day]");

pub fn format_date(d: time::Date) -> String {
    d.format(DATE).unwrap_or_default()
}

fn text(field: &str, value: &str, max: usize, errors: &mut Vec<FieldError>) -> String {
    let v = value.trim();
    if v.chars().count() > max || v.chars().any(|c| c.is_control() && c != '\n') {
        errors.push(FieldError::new(field, format!("must be at most {max} characters of text")));
    }
    v.to_owned()
}

impl MovieInput {
    /// Apply this input over `base` (all defaults for a create) and check the result.
    pub fn apply(self, base: NewMovie) -> Result<NewMovie, Vec<FieldError>> {
        let mut errors = Vec::new();
        let mut m = base;
        if let Some(t) = self.title {
            m.title = text("title", &t, 200, &mut errors);
        }
        if m.title.is_empty() {
            errors.push(FieldError::new("title", "must not be empty"));
        }
        if let Some(s) = self.synopsis {
            m.synopsis = text("synopsis", &s, 5000, &mut errors);
        }
        if let Some(g) = self.genres {
            m.genres = g.iter().map(|s| s.trim().to_ascii_lowercase()).collect();
            m.genres.sort();
            m.genres.dedup();
        }
        if let Some(bad) = m.genres.iter().find(|g| !GENRES.contains(&g.as_str())) {
            errors.push(FieldError::new("genres", format!("unknown genre {bad:?}; see GET /genres")));
        }
        if m.genres.is_empty() {
            errors.push(FieldError::new("genres", "must name at least one genre"));
        }
        if let Some(r) = self.runtime_minutes {
            m.runtime_minutes = r;
        }
        if !(1..=1000).contains(&m.runtime_minutes) {
            errors.push(FieldError::new("runtime_minutes", "must be between 1 and 1000"));
        }
        if let Some(d) = self.release_date {
            match time::Date::parse(d.trim(), DATE) {
                Ok(date) if (1870..=2100).contains(&date.year()) => m.release_date = Some(date),
                _ => errors.push(FieldError::new("release_date", "must be a date like 1972-03-24")),
            }
        }
        if let Some(d) = self.director {
            m.director = text("director", &d, 200, &mut errors);
        }
        if let Some(cast) = self.cast {
            if cast.len() > 50 {
                errors.push(FieldError::new("cast", "at most 50 names"));
            }
            m.cast =
                cast.iter().map(|n| text("cast", n, 200, &mut errors)).filter(|n| !n.is_empty()).collect();
        }
        if let Some(p) = self.poster_url {
            let p = p.trim().to_owned();
            if !(p.starts_with("https://") || p.starts_with("http://")) || p.len() > 2000 {
                errors.push(FieldError::new("poster_url", "must be an http(s) URL"));
            }
            m.poster_url = Some(p);
        }
        if let Some(f) = self.featured {
            m.featured = f;
        }
        if let Some(s) = self.streamable {
            m.streamable = s;
        }
        if let Some(id) = self.imdb_id {
            match parse_imdb_id(&id) {
                Some(id) => m.imdb_id = Some(id),
                None => errors.push(FieldError::new("imdb_id", "must look like tt0068646")),
            }
        }
        if errors.is_empty() { Ok(m) } else { Err(errors) }
    }
}

impl NewMovie {
    /// The starting point of a create: nothing set.
    pub fn empty() -> Self {
        Self {
            title: String::new(),
            synopsis: String::new(),
            genres: Vec::new(),
            runtime_minutes: 0,
            release_date: None,
            director: String::new(),
            cast: Vec::new(),
            poster_url: None,
            featured: false,
            streamable: false,
            imdb_id: None,
        }
    }
}

/// `tt` and 7 or 8 digits.
pub fn parse_imdb_id(raw: &str) -> Option<String> {
    let id = raw.trim().to_ascii_lowercase();
    let digits = id.strip_prefix("tt")?;
    ((7..=8).contains(&digits.len()) && digits.bytes().all(|b| b.is_ascii_digit())).then_some(id)
}

/// `sort=` of the movie list.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Sort {
    Title,
    NewestFirst,
    BestRated,
}

impl Sort {
    pub fn parse(raw: Option<&str>) -> Result<Self, FieldError> {
        match raw.map(str::trim) {
            None | Some("") | Some("title") => Ok(Sort::Title),
            Some("-release_date") => Ok(Sort::NewestFirst),
            Some("-rating") => Ok(Sort::BestRated),
            Some(other) => {
                Err(FieldError::new("sort", format!("{other:?} is not one of title, -release_date, -rating")))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn valid() -> MovieInput {
        MovieInput {
            title: Some(" Alien ".into()),
            genres: Some(vec!["Horror".into(), "science-fiction".into(), "horror".into()]),
            runtime_minutes: Some(117),
            release_date: Some("1979-05-25".into()),
            ..Default::default()
        }
    }

    #[test]
    fn a_valid_movie_is_trimmed_and_its_genres_normalised() {
        let m = valid().apply(NewMovie::empty()).expect("valid");
        assert_eq!(m.title, "Alien");
        assert_eq!(m.genres, vec!["horror", "science-fiction"]);
        assert_eq!(m.release_date.map(format_date).as_deref(), Some("1979-05-25"));
    }

    #[test]
    fn bad_fields_are_named() {
        let input = MovieInput {
            title: Some("  ".into()),
            genres: Some(vec!["space-opera".into()]),
            runtime_minutes: Some(-5),
            release_date: Some("25/05/1979".into()),
            imdb_id: Some("nm0000123".into()),
            poster_url: Some("ftp://x".into()),
            ..Default::default()
        };
        let errors = input.apply(NewMovie::empty()).expect_err("invalid");
        let fields: Vec<&str> = errors.iter().map(|e| e.field.as_str()).collect();
        assert_eq!(fields, ["title", "genres", "runtime_minutes", "release_date", "poster_url", "imdb_id"]);
    }

    #[test]
    fn sorts_and_imdb_ids_parse() {
        assert_eq!(Sort::parse(Some("-rating")), Ok(Sort::BestRated));
        assert!(Sort::parse(Some("rating")).is_err());
        assert_eq!(parse_imdb_id(" TT0068646 ").as_deref(), Some("tt0068646"));
        assert_eq!(parse_imdb_id("tt123"), None);
    }
}

//! Movies as the API sees them, and parsing requests at the edge.

use platform::FieldError;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

/// The genres the schema seeds (docs/api.md); a slug outside this list is a 422.
pub use contracts::catalog::GENRES;

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

// The patterns below say in JSON Schema (ECMA-262 and Python `re` alike) what `apply` checks:
// - text: no control characters but the newline (U+0000-U+0009, U+000B-U+001F, U+007F-U+009F);
// - a title: such text with at least one character that is neither a control character nor
//   whitespace (what `str::trim` removes: U+0009-U+000D, U+0020, U+0085, U+00A0, U+1680,
//   U+2000-U+200A, U+2028, U+2029, U+202F, U+205F, U+3000), so it is not empty once trimmed.
// `maxLength` counts characters as sent, before trimming, and so does `apply`.

/// The body of `POST /movies`: a title, at least one genre and the runtime are required.
#[derive(Debug, Clone, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewMovieInput {
    /// Trimmed; not blank.
    #[schema(
        min_length = 1,
        max_length = 200,
        pattern = r"^[^\u0000-\u0009\u000b-\u001f\u007f-\u009f]*[^\u0000-\u0020\u007f-\u00a0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000][^\u0000-\u0009\u000b-\u001f\u007f-\u009f]*$"
    )]
    pub title: String,
    #[schema(max_length = 5000, pattern = r"^[^\u0000-\u0009\u000b-\u001f\u007f-\u009f]*$")]
    pub synopsis: Option<String>,
    /// Genre slugs (see `GET /genres`); duplicates count once.
    #[schema(
        min_items = 1,
        pattern = r"^(action|adventure|animation|comedy|crime|documentary|drama|family|fantasy|history|horror|music|mystery|romance|science-fiction|thriller|war|western)$"
    )]
    pub genres: Vec<String>,
    #[schema(minimum = 1, maximum = 1000)]
    pub runtime_minutes: i64,
    /// `YYYY-MM-DD`, from 1870 to 2100.
    #[schema(format = Date, pattern = r"^((18[7-9][0-9]|19[0-9]{2}|20[0-9]{2}|2100)-((0[1-9]|1[0-2])-(0[1-9]|1[0-9]|2[0-8])|(0[13-9]|1[0-2])-(29|30)|(0[13578]|1[02])-31)|(18(7[26]|8[048]|9[26])|19(0[48]|[2468][048]|[13579][26])|20([02468][048]|[13579][26]))-02-29)$")]
    pub release_date: Option<String>,
    #[schema(max_length = 200, pattern = r"^[^\u0000-\u0009\u000b-\u001f\u007f-\u009f]*$")]
    pub director: Option<String>,
    /// At most 50 names; blank ones are left out.
    #[schema(max_items = 50, max_length = 200, pattern = r"^[^\u0000-\u0009\u000b-\u001f\u007f-\u009f]*$")]
    pub cast: Option<Vec<String>>,
    /// An http(s) URL without whitespace.
    #[schema(
        max_length = 2000,
        pattern = r"^https?://[^\u0000-\u0020\u007f-\u00a0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000]+$"
    )]
    pub poster_url: Option<String>,
    pub featured: Option<bool>,
    pub streamable: Option<bool>,
    /// `tt` and 7 or 8 digits.
    #[schema(pattern = r"^tt[0-9]{7,8}$")]
    pub imdb_id: Option<String>,
}

impl From<NewMovieInput> for MovieInput {
    fn from(m: NewMovieInput) -> Self {
        Self {
            title: Some(m.title),
            synopsis: m.synopsis,
            genres: Some(m.genres),
            runtime_minutes: Some(m.runtime_minutes),
            release_date: m.release_date,
            director: m.director,
            cast: m.cast,
            poster_url: m.poster_url,
            featured: m.featured,
            streamable: m.streamable,
            imdb_id: m.imdb_id,
        }
    }
}

/// The body of `PATCH /movies/{id}`: the fields to change (null or absent: unchanged). The same
/// rules as `POST /movies` hold for each field sent.
#[derive(Debug, Clone, Default, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct MovieInput {
    /// Trimmed; not blank.
    #[schema(
        min_length = 1,
        max_length = 200,
        pattern = r"^[^\u0000-\u0009\u000b-\u001f\u007f-\u009f]*[^\u0000-\u0020\u007f-\u00a0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000][^\u0000-\u0009\u000b-\u001f\u007f-\u009f]*$"
    )]
    pub title: Option<String>,
    #[schema(max_length = 5000, pattern = r"^[^\u0000-\u0009\u000b-\u001f\u007f-\u009f]*$")]
    pub synopsis: Option<String>,
    /// Genre slugs (see `GET /genres`); duplicates count once.
    #[schema(
        min_items = 1,
        pattern = r"^(action|adventure|animation|comedy|crime|documentary|drama|family|fantasy|history|horror|music|mystery|romance|science-fiction|thriller|war|western)$"
    )]
    pub genres: Option<Vec<String>>,
    #[schema(minimum = 1, maximum = 1000)]
    pub runtime_minutes: Option<i64>,
    /// `YYYY-MM-DD`, from 1870 to 2100.
    #[schema(format = Date, pattern = r"^((18[7-9][0-9]|19[0-9]{2}|20[0-9]{2}|2100)-((0[1-9]|1[0-2])-(0[1-9]|1[0-9]|2[0-8])|(0[13-9]|1[0-2])-(29|30)|(0[13578]|1[02])-31)|(18(7[26]|8[048]|9[26])|19(0[48]|[2468][048]|[13579][26])|20([02468][048]|[13579][26]))-02-29)$")]
    pub release_date: Option<String>,
    #[schema(max_length = 200, pattern = r"^[^\u0000-\u0009\u000b-\u001f\u007f-\u009f]*$")]
    pub director: Option<String>,
    /// At most 50 names; blank ones are left out.
    #[schema(max_items = 50, max_length = 200, pattern = r"^[^\u0000-\u0009\u000b-\u001f\u007f-\u009f]*$")]
    pub cast: Option<Vec<String>>,
    /// An http(s) URL without whitespace.
    #[schema(
        max_length = 2000,
        pattern = r"^https?://[^\u0000-\u0020\u007f-\u00a0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000]+$"
    )]
    pub poster_url: Option<String>,
    pub featured: Option<bool>,
    pub streamable: Option<bool>,
    /// `tt` and 7 or 8 digits.
    #[schema(pattern = r"^tt[0-9]{7,8}$")]
    pub imdb_id: Option<String>,
}

const DATE: &[time::format_description::FormatItem<'static>] =
    time::macros::format_description!("[year]-[month]-[day]");

pub fn format_date(d: time::Date) -> String {
    d.format(DATE).unwrap_or_default()
}

/// `YYYY-MM-DD` exactly (the parser alone would take a sign before the year).
pub fn parse_date(raw: &str) -> Option<time::Date> {
    let shaped = raw.len() == 10
        && raw
            .bytes()
            .enumerate()
            .all(|(i, b)| if i == 4 || i == 7 { b == b'-' } else { b.is_ascii_digit() });
    shaped.then(|| time::Date::parse(raw, DATE).ok()).flatten()
}

/// At most `max` characters as sent, none of them a control character but the newline; the
/// value is kept trimmed.
fn text(field: &str, value: &str, max: usize, errors: &mut Vec<FieldError>) -> String {
    if value.chars().count() > max || value.chars().any(|c| c.is_control() && c != '\n') {
        errors.push(FieldError::new(field, format!("must be at most {max} characters of text")));
    }
    value.trim().to_owned()
}

/// `http://` or `https://` and at least one more character, none of them whitespace or a
/// control character; 2000 characters at most.
pub fn poster_url_ok(url: &str) -> bool {
    let rest = url.strip_prefix("https://").or_else(|| url.strip_prefix("http://"));
    rest.is_some_and(|r| !r.is_empty() && !r.chars().any(|c| c.is_whitespace() || c.is_control()))
        && url.chars().count() <= 2000
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
        if let Some(mut g) = self.genres {
            g.sort();
            g.dedup();
            m.genres = g;
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
            match parse_date(&d) {
                Some(date) if (1870..=2100).contains(&date.year()) => m.release_date = Some(date),
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
            if !poster_url_ok(&p) {
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

/// `tt` and 7 or 8 digits, exactly (the pattern `^tt[0-9]{7,8}$`).
pub fn parse_imdb_id(raw: &str) -> Option<String> {
    let digits = raw.strip_prefix("tt")?;
    ((7..=8).contains(&digits.len()) && digits.bytes().all(|b| b.is_ascii_digit())).then(|| raw.to_owned())
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
        match raw {
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
            genres: Some(vec!["horror".into(), "science-fiction".into(), "horror".into()]),
            runtime_minutes: Some(117),
            release_date: Some("1979-05-25".into()),
            ..Default::default()
        }
    }

    #[test]
    fn a_valid_movie_is_trimmed_and_its_genres_deduplicated() {
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
        assert_eq!(parse_imdb_id("tt0068646").as_deref(), Some("tt0068646"));
        assert_eq!(parse_imdb_id("tt12345678").as_deref(), Some("tt12345678"));
        for bad in ["tt123", " tt0068646", "TT0068646", "tt006864a", "tt123456789"] {
            assert_eq!(parse_imdb_id(bad), None, "{bad:?}");
        }
        assert_eq!(Sort::parse(Some("")), Ok(Sort::Title));
        assert!(Sort::parse(Some(" -rating")).is_err(), "what the pattern refuses is refused");
    }

    /// What the OpenAPI patterns say, the checks do: each case is refused by both.
    #[test]
    fn the_checks_are_exactly_the_documented_ones() {
        let refused =
            |input: MovieInput| input.apply(valid().apply(NewMovie::empty()).expect("valid")).is_err();
        let title = |t: &str| MovieInput { title: Some(t.into()), ..Default::default() };
        assert!(refused(title(" \u{3000} ")), "blank");
        assert!(refused(title("\tAlien")), "a control character, even one trimming would remove");
        assert!(refused(title(&format!("{}Alien", " ".repeat(196)))), "201 characters as sent");
        assert!(!refused(title(&format!("  {}  ", "é".repeat(196)))), "200 characters, not bytes");
        assert!(!refused(title("Alien\nDirector's Cut")), "newlines are text");
        let genres = |g: &[&str]| MovieInput {
            genres: Some(g.iter().map(|s| (*s).to_owned()).collect()),
            ..Default::default()
        };
        assert!(refused(genres(&["Horror"])) && refused(genres(&[" horror"])) && refused(genres(&[])));
        assert!(!refused(genres(&["war", "war"])), "duplicates count once");
        let date = |d: &str| MovieInput { release_date: Some(d.into()), ..Default::default() };
        for bad in ["+1979-05-25", " 1979-05-25", "1979-02-30", "1869-12-31", "2101-01-01", "1979-5-25"] {
            assert!(refused(date(bad)), "{bad:?}");
        }
        assert!(!refused(date("1870-01-01")) && !refused(date("2100-12-31")));
        let poster = |p: &str| MovieInput { poster_url: Some(p.into()), ..Default::default() };
        for bad in
            ["http://", " https://x", "https://x y", "HTTPS://x", &format!("https://{}", "x".repeat(1993))]
        {
            assert!(refused(poster(bad)), "{bad:?}");
        }
        assert!(!refused(poster(&format!("https://{}", "x".repeat(1992)))));
        let cast = |n: usize| MovieInput { cast: Some(vec!["Someone".into(); n]), ..Default::default() };
        assert!(refused(cast(51)) && !refused(cast(50)));
    }
}

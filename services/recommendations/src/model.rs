//! The recommender itself, with no I/O: what a user's signals weigh, the item-to-item model
//! built from everyone's, content similarity (genres, director, cast) for movies with little
//! history, popularity for users with none, and the reasons given. The service keeps its inputs
//! up to date from events ([`crate::engine`]); the offline evaluation (`cargo bench -p
//! recommendations`) feeds it generated histories.

use std::collections::HashMap;

use uuid::Uuid;

/// Neighbours kept per movie.
pub const NEIGHBOURS: usize = 50;
/// Co-watchers at which a similarity counts in full: fewer shrink it (`n / (n + SHRINK)`), so
/// two movies seen together by one person are not "the same people's".
const SHRINK: f32 = 3.0;
/// How many users a movie needs before its history outweighs its content (half-way here).
const COLD: f32 = 10.0;
/// What content similarity weighs beside co-watching, for a movie nobody has seen yet.
const CONTENT: f32 = 0.3;
/// Of those, how many content similarity starts from (each reaches hundreds of movies).
const CONTENT_SEEDS: usize = 10;
/// Seeds (the user's strongest signals) a recommendation is built from.
const SEEDS: usize = 50;
/// A rating at or under this is a dislike: the movie pushes its neighbours down.
pub const LOW_RATING: i64 = 4;

/// What one user did with one movie, merged from every event about it in any order.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct Signal {
    pub booked: bool,
    /// How far they watched, 0 to 1 (None: never played).
    pub watched: Option<f32>,
    /// Their review's rating, 1 to 10, with the review and its version: a later review (ids are
    /// UUID v7, so later sorts higher) or a later version of the same one wins; a deleted review
    /// leaves `rating` None at its version.
    pub rating: Option<i64>,
    pub rating_review: Uuid,
    pub rating_version: i64,
    /// When they last did something with it (Unix ms).
    pub last_at: i64,
}

impl Signal {
    /// Merge another observation: the result does not depend on the order of merges.
    pub fn merge(&mut self, other: &Signal) {
        self.booked |= other.booked;
        self.watched = match (self.watched, other.watched) {
            (Some(a), Some(b)) => Some(a.max(b)),
            (a, b) => a.or(b),
        };
        if (other.rating_review, other.rating_version) > (self.rating_review, self.rating_version) {
            self.rating = other.rating;
            self.rating_review = other.rating_review;
            self.rating_version = other.rating_version;
        }
        self.last_at = self.last_at.max(other.last_at);
    }

    /// How much the user likes the movie: a booking 3, a play 1 plus 2 × how much of it they
    /// watched, a rating from 0 (5/10) to +3 (10/10); a low rating (4 or less) makes it a
    /// dislike, whatever else they did.
    pub fn weight(&self) -> f32 {
        if let Some(r) = self.rating
            && r <= LOW_RATING
        {
            return -((LOW_RATING + 1 - r) as f32);
        }
        let mut w = 0.0;
        if self.booked {
            w += 3.0;
        }
        if let Some(watched) = self.watched {
            w += 1.0 + 2.0 * watched.clamp(0.0, 1.0);
        }
        if let Some(r) = self.rating {
            w += (r as f32 - 5.0) * 0.6;
        }
        w
    }

    /// "watched", "booked", "rated ... 9/10": the strongest thing they did, for a reason.
    fn verb(&self, title: &str) -> String {
        match (self.rating, self.watched, self.booked) {
            (Some(r), _, _) if r >= 8 => format!("because you rated {title} {r}/10"),
            (_, Some(_), _) => format!("because you watched {title}"),
            (_, _, true) => format!("because you booked {title}"),
            _ => format!("because you liked {title}"),
        }
    }
}

/// What the model knows of a movie.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Movie {
    pub id: Uuid,
    pub title: String,
    pub genres: Vec<String>,
    pub director: String,
    pub cast: Vec<String>,
    pub deleted: bool,
}

/// One interaction, as the model is built from: a user's index, a movie's index, the weight,
/// and when (Unix ms).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Interaction {
    pub user: u32,
    pub movie: u32,
    pub weight: f32,
    pub at: i64,
}

/// The part rebuilt in the background: each movie's nearest movies by who liked them, how many
/// users each has, and its popularity of the week.
#[derive(Debug, Clone, Default)]
pub struct Model {
    pub neighbours: Vec<Vec<(u32, f32)>>,
    pub users: Vec<u32>,
    pub popularity: Vec<f32>,
}

impl Model {
    /// Item-to-item cosine similarity over users' positive weights, shrunk for few co-watchers,
    /// keeping each movie's [`NEIGHBOURS`] nearest. Popularity counts the interactions of the
    /// last 7 days before `now` (all of them when there are none), decayed by age.
    pub fn build(ids: &[Uuid], interactions: &[Interaction], now: i64) -> Model {
        let movies = ids.len();
        let mut by_user: HashMap<u32, Vec<(u32, f32)>> = HashMap::new();
        let mut by_movie: Vec<Vec<(u32, f32)>> = vec![Vec::new(); movies];
        let mut popularity = vec![0f32; movies];
        let mut recent = 0usize;
        const HOUR: i64 = 3600 * 1000;
        const WEEK_HOURS: i64 = 7 * 24;
        const WEEK: i64 = WEEK_HOURS * HOUR;
        for i in interactions {
            let m = i.movie as usize;
            if m >= movies {
                continue;
            }
            if i.weight > 0.0 {
                by_user.entry(i.user).or_default().push((i.movie, i.weight));
                by_movie[m].push((i.user, i.weight));
                if now - i.at <= WEEK {
                    // Newer counts more, by the hour: one made now counts 1, one a week old 1/2.
                    // Whole hours, so two replicas building a moment apart rank alike.
                    let hours = (now - i.at).max(0) / HOUR;
                    popularity[m] += 1.0 - hours as f32 / (2.0 * WEEK_HOURS as f32);
                    recent += 1;
                }
            }
        }
        if recent == 0 {
            for (m, users) in by_movie.iter().enumerate() {
                popularity[m] = users.len() as f32;
            }
        }
        let norms: Vec<f32> =
            by_movie.iter().map(|users| users.iter().map(|(_, w)| w * w).sum::<f32>().sqrt()).collect();
        let mut dot = vec![0f32; movies];
        let mut together = vec![0u32; movies];
        let mut touched = Vec::new();
        let mut neighbours = Vec::with_capacity(movies);
        for (i, users) in by_movie.iter().enumerate() {
            for (u, wi) in users {
                for (j, wj) in &by_user[u] {
                    let j = *j as usize;
                    if j == i {
                        continue;
                    }
                    if together[j] == 0 {
                        touched.push(j);
                    }
                    dot[j] += wi * wj;
                    together[j] += 1;
                }
            }
            let mut near: Vec<(u32, f32)> = touched
                .iter()
                .map(|&j| {
                    let n = together[j] as f32;
                    let cosine = dot[j] / (norms[i] * norms[j]).max(f32::EPSILON);
                    (j as u32, cosine * n / (n + SHRINK))
                })
                .collect();
            for &j in &touched {
                dot[j] = 0.0;
                together[j] = 0;
            }
            touched.clear();
            top(&mut near, NEIGHBOURS, |m| ids[m as usize]);
            neighbours.push(near);
        }
        let users = by_movie.iter().map(|u| u.len() as u32).collect();
        Model { neighbours, users, popularity }
    }

    fn users_of(&self, movie: u32) -> u32 {
        self.users.get(movie as usize).copied().unwrap_or(0)
    }

    fn popularity_of(&self, movie: u32) -> f32 {
        self.popularity.get(movie as usize).copied().unwrap_or(0.0)
    }
}

/// Keep the `k` highest scores, best first; ties go by the movies' ids, so every replica gives
/// the same answer (indexes are given in the order each replica heard of the movies).
fn top(items: &mut Vec<(u32, f32)>, k: usize, id: impl Fn(u32) -> Uuid) {
    let order = |a: &(u32, f32), b: &(u32, f32)| b.1.total_cmp(&a.1).then_with(|| id(a.0).cmp(&id(b.0)));
    if items.len() > k {
        items.select_nth_unstable_by(k, order);
        items.truncate(k);
    }
    items.sort_by(order);
}

/// Movies by genre, director and actor, for content similarity.
#[derive(Debug, Clone, Default)]
pub struct ContentIndex {
    genres: HashMap<String, Vec<u32>>,
    directors: HashMap<String, Vec<u32>>,
    cast: HashMap<String, Vec<u32>>,
}

impl ContentIndex {
    pub fn build(movies: &[Movie]) -> ContentIndex {
        let mut index = ContentIndex::default();
        for (m, movie) in movies.iter().enumerate() {
            index.add(m as u32, movie);
        }
        index
    }

    pub fn add(&mut self, m: u32, movie: &Movie) {
        for g in &movie.genres {
            self.genres.entry(g.clone()).or_default().push(m);
        }
        if !movie.director.is_empty() {
            self.directors.entry(movie.director.clone()).or_default().push(m);
        }
        for a in movie.cast.iter().take(5) {
            self.cast.entry(a.clone()).or_default().push(m);
        }
    }

    /// Every movie sharing something with `seed`, with how much (0 to about 2): the Jaccard
    /// index of their genres, 0.8 for the same director, 0.2 per shared actor (at most 0.6).
    fn similar(&self, movies: &[Movie], seed: u32, out: &mut HashMap<u32, (f32, Kinship)>) {
        let Some(s) = movies.get(seed as usize) else { return };
        let mut shared_genres: HashMap<u32, u32> = HashMap::new();
        for g in &s.genres {
            for &m in self.genres.get(g).into_iter().flatten() {
                *shared_genres.entry(m).or_default() += 1;
            }
        }
        for (m, shared) in shared_genres {
            let union = s.genres.len() + movies[m as usize].genres.len() - shared as usize;
            let e = out.entry(m).or_insert((0.0, Kinship::Genre));
            e.0 += shared as f32 / union.max(1) as f32;
        }
        if !s.director.is_empty() {
            for &m in self.directors.get(&s.director).into_iter().flatten() {
                let e = out.entry(m).or_insert((0.0, Kinship::Director));
                e.0 += 0.8;
                e.1 = Kinship::Director;
            }
        }
        let mut shared_cast: HashMap<u32, u32> = HashMap::new();
        for a in s.cast.iter().take(5) {
            for &m in self.cast.get(a).into_iter().flatten() {
                *shared_cast.entry(m).or_default() += 1;
            }
        }
        for (m, n) in shared_cast {
            let e = out.entry(m).or_insert((0.0, Kinship::Cast));
            e.0 += (0.2 * n as f32).min(0.6);
        }
        out.remove(&seed);
    }
}

/// What two movies have in common, for a reason.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kinship {
    Genre,
    Director,
    Cast,
}

/// One suggestion.
#[derive(Debug, Clone, PartialEq)]
pub struct Suggestion {
    pub movie: u32,
    pub score: f32,
    pub reason: String,
}

/// What a query may also ask: only movies passing `allowed` (a cinema's programme), with a
/// boost for some (those showing near the user).
pub struct Filter<'a> {
    pub allowed: &'a dyn Fn(u32) -> bool,
    pub boost: &'a dyn Fn(u32) -> f32,
}

/// Everything a query reads: the movies, their content index, the model.
pub struct View<'a> {
    pub movies: &'a [Movie],
    pub content: &'a ContentIndex,
    pub model: &'a Model,
}

impl View<'_> {
    fn usable(&self, m: u32) -> bool {
        self.movies.get(m as usize).is_some_and(|movie| !movie.deleted && !movie.title.is_empty())
    }

    fn title(&self, m: u32) -> &str {
        self.movies.get(m as usize).map_or("", |movie| movie.title.as_str())
    }

    /// Suggestions for a user with these signals: item-to-item over their likes, content for
    /// movies with little history, popularity to fill; never a movie they already booked,
    /// watched or rated.
    pub fn recommend(
        &self,
        profile: &[(u32, Signal)],
        limit: usize,
        filter: Option<&Filter>,
    ) -> Vec<Suggestion> {
        let seen: std::collections::HashSet<u32> = profile.iter().map(|(m, _)| *m).collect();
        let mut seeds: Vec<(u32, Signal, f32)> = profile.iter().map(|(m, s)| (*m, *s, s.weight())).collect();
        let id = |m: u32| self.movies.get(m as usize).map(|movie| movie.id).unwrap_or_default();
        seeds.sort_by(|a, b| {
            b.2.abs()
                .total_cmp(&a.2.abs())
                .then(b.1.last_at.cmp(&a.1.last_at))
                .then_with(|| id(a.0).cmp(&id(b.0)))
        });
        seeds.truncate(SEEDS);
        // Per candidate: item-to-item score and its best seed; content score and its best seed.
        let mut cf: HashMap<u32, (f32, u32, f32)> = HashMap::new();
        let mut content: HashMap<u32, (f32, u32, f32, Kinship)> = HashMap::new();
        let mut related = HashMap::new();
        for (n, (seed, _, w)) in seeds.iter().enumerate() {
            for (j, sim) in self.model.neighbours.get(*seed as usize).into_iter().flatten() {
                let e = cf.entry(*j).or_insert((0.0, *seed, f32::MIN));
                e.0 += w * sim;
                if w * sim > e.2 {
                    (e.1, e.2) = (*seed, w * sim);
                }
            }
            if n >= CONTENT_SEEDS {
                continue;
            }
            related.clear();
            self.content.similar(self.movies, *seed, &mut related);
            for (j, (sim, kin)) in &related {
                let e = content.entry(*j).or_insert((0.0, *seed, f32::MIN, *kin));
                e.0 += w * sim;
                if w * sim > e.2 {
                    (e.1, e.2, e.3) = (*seed, w * sim, *kin);
                }
            }
        }
        let max_pop = self.model.popularity.iter().copied().fold(0.0, f32::max).max(1.0);
        let mut scored: Vec<(u32, f32, String)> = Vec::new();
        let candidates: std::collections::HashSet<u32> = cf.keys().chain(content.keys()).copied().collect();
        for j in candidates {
            if seen.contains(&j) || !self.usable(j) || filter.is_some_and(|f| !(f.allowed)(j)) {
                continue;
            }
            let history = self.model.users_of(j) as f32;
            let cold = COLD / (COLD + history);
            let (cf_score, cf_seed, cf_best) = cf.get(&j).copied().unwrap_or((0.0, 0, 0.0));
            let (ct_score, ct_seed, ct_best, kin) =
                content.get(&j).copied().unwrap_or((0.0, 0, 0.0, Kinship::Genre));
            // Content counts a little always (ties between equally co-watched movies), and most
            // for a movie few have seen.
            let ct_part = ct_score * CONTENT * (0.05 + cold);
            let mut score = cf_score + ct_part + 0.2 * self.model.popularity_of(j) / max_pop;
            if let Some(f) = filter {
                score *= (f.boost)(j);
            }
            if score <= 0.0 {
                continue;
            }
            // The reason names a seed that pulled this movie up, never one that pushed it down.
            let reason = if cf_score >= ct_part && cf_best > 0.0 {
                let signal = profile.iter().find(|(m, _)| *m == cf_seed).map(|(_, s)| *s).unwrap_or_default();
                signal.verb(self.title(cf_seed))
            } else if ct_best <= 0.0 {
                "popular this week".to_owned()
            } else {
                let seed = self.title(ct_seed);
                match kin {
                    Kinship::Director => format!("from the director of {seed}"),
                    Kinship::Cast => format!("with actors from {seed}"),
                    Kinship::Genre => match shared_genre(self.movies, ct_seed, j) {
                        Some(g) => format!("{g}, like {seed}"),
                        None => format!("like {seed}"),
                    },
                }
            };
            scored.push((j, score, reason));
        }
        scored.sort_by(|a, b| {
            b.1.total_cmp(&a.1).then_with(|| self.movies[a.0 as usize].id.cmp(&self.movies[b.0 as usize].id))
        });
        scored.truncate(limit);
        let mut out: Vec<Suggestion> =
            scored.into_iter().map(|(movie, score, reason)| Suggestion { movie, score, reason }).collect();
        if out.len() < limit {
            let taken: std::collections::HashSet<u32> = out.iter().map(|s| s.movie).chain(seen).collect();
            let genre = favourite_genre(self.movies, profile);
            out.extend(self.popular(limit - out.len(), &taken, genre.as_deref(), filter));
        }
        out
    }

    /// The week's most popular movies not in `taken`; those in the user's favourite genre first.
    pub fn popular(
        &self,
        limit: usize,
        taken: &std::collections::HashSet<u32>,
        genre: Option<&str>,
        filter: Option<&Filter>,
    ) -> Vec<Suggestion> {
        let max_pop = self.model.popularity.iter().copied().fold(0.0, f32::max).max(1.0);
        let in_genre = |m: u32| genre.is_some_and(|g| self.movies[m as usize].genres.iter().any(|x| x == g));
        let mut ranked: Vec<(u32, f32)> = (0..self.movies.len() as u32)
            .filter(|m| !taken.contains(m) && self.usable(*m) && filter.is_none_or(|f| (f.allowed)(*m)))
            .map(|m| {
                let mut score = self.model.popularity_of(m) / max_pop;
                if in_genre(m) {
                    score += 1.0;
                }
                if let Some(f) = filter {
                    score *= (f.boost)(m);
                }
                (m, score)
            })
            .collect();
        top(&mut ranked, limit, |m| self.movies[m as usize].id);
        ranked
            .into_iter()
            .map(|(m, score)| Suggestion {
                movie: m,
                score: score * 0.01,
                reason: match genre {
                    Some(g) if in_genre(m) => format!("popular in {g} this week"),
                    _ => "popular this week".to_owned(),
                },
            })
            .collect()
    }

    /// Movies watched and booked by the same people, then those sharing genres, director or
    /// cast (all of them, for a movie with no history yet).
    pub fn similar(&self, movie: u32, limit: usize) -> Vec<Suggestion> {
        let mut out: Vec<Suggestion> = self
            .model
            .neighbours
            .get(movie as usize)
            .into_iter()
            .flatten()
            .filter(|(j, _)| self.usable(*j))
            .take(limit)
            .map(|(j, sim)| Suggestion {
                movie: *j,
                score: *sim,
                reason: "watched and booked by the same people".into(),
            })
            .collect();
        if out.len() < limit {
            let mut related = HashMap::new();
            self.content.similar(self.movies, movie, &mut related);
            let taken: std::collections::HashSet<u32> = out.iter().map(|s| s.movie).collect();
            let mut ranked: Vec<(u32, f32)> = related
                .iter()
                .filter(|(j, _)| !taken.contains(j) && self.usable(**j))
                .map(|(j, (sim, _))| (*j, sim + 0.001 * self.model.popularity_of(*j)))
                .collect();
            top(&mut ranked, limit - out.len(), |m| self.movies[m as usize].id);
            let seed = self.title(movie);
            out.extend(ranked.into_iter().map(|(j, sim)| {
                let kin = related.get(&j).map_or(Kinship::Genre, |(_, k)| *k);
                let reason = match kin {
                    Kinship::Director => format!("same director as {seed}"),
                    Kinship::Cast => format!("shares actors with {seed}"),
                    Kinship::Genre => match shared_genre(self.movies, movie, j) {
                        Some(g) => format!("also {g}, like {seed}"),
                        None => format!("like {seed}"),
                    },
                };
                Suggestion { movie: j, score: sim * 0.1, reason }
            }));
        }
        out
    }
}

fn shared_genre(movies: &[Movie], a: u32, b: u32) -> Option<String> {
    let (a, b) = (movies.get(a as usize)?, movies.get(b as usize)?);
    a.genres.iter().find(|g| b.genres.contains(g)).cloned()
}

/// The genre the user's likes have most of.
fn favourite_genre(movies: &[Movie], profile: &[(u32, Signal)]) -> Option<String> {
    let mut counts: HashMap<&str, f32> = HashMap::new();
    for (m, s) in profile {
        let w = s.weight();
        if w <= 0.0 {
            continue;
        }
        for g in movies.get(*m as usize).map(|m| m.genres.as_slice()).unwrap_or_default() {
            *counts.entry(g.as_str()).or_default() += w;
        }
    }
    counts.into_iter().max_by(|a, b| a.1.total_cmp(&b.1).then(b.0.cmp(a.0))).map(|(g, _)| g.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn movie(title: &str, genres: &[&str], director: &str) -> Movie {
        Movie {
            id: Uuid::now_v7(),
            title: title.into(),
            genres: genres.iter().map(|g| (*g).to_owned()).collect(),
            director: director.into(),
            cast: Vec::new(),
            deleted: false,
        }
    }

    fn watched(at: i64) -> Signal {
        Signal { watched: Some(1.0), last_at: at, ..Signal::default() }
    }

    #[test]
    fn signals_merge_in_any_order_and_a_low_rating_is_a_dislike() {
        let a = Signal { booked: true, last_at: 5, ..Signal::default() };
        let review = Uuid::now_v7();
        let b = Signal {
            watched: Some(0.4),
            rating: Some(9),
            rating_review: review,
            rating_version: 2,
            last_at: 3,
            ..Signal::default()
        };
        let c = Signal { rating: Some(2), rating_review: review, rating_version: 1, ..Signal::default() };
        let (mut x, mut y) = (a, c);
        x.merge(&b);
        x.merge(&c);
        y.merge(&b);
        y.merge(&a);
        assert_eq!(x, y);
        assert_eq!(x.rating, Some(9));
        assert!(x.weight() > 5.0);
        assert!(c.weight() < 0.0);
        let deleted = Signal { rating: None, rating_review: review, rating_version: 3, ..Signal::default() };
        x.merge(&deleted);
        assert_eq!(x.rating, None);
        // A new review after the deletion starts at version 1 again, and still wins.
        let again =
            Signal { rating: Some(3), rating_review: Uuid::now_v7(), rating_version: 1, ..Signal::default() };
        x.merge(&again);
        assert_eq!(x.rating, Some(3));
        x.merge(&deleted);
        assert_eq!(x.rating, Some(3), "the old review's deletion arriving late changes nothing");
    }

    #[test]
    fn co_watched_movies_come_first_and_nothing_seen_comes_back() {
        let movies = vec![
            movie("Heat", &["crime"], "Michael Mann"),
            movie("Collateral", &["crime"], "Michael Mann"),
            movie("Ronin", &["crime", "action"], "John Frankenheimer"),
            movie("Up", &["animation"], "Pete Docter"),
            movie("Thief", &["crime"], "Michael Mann"),
        ];
        // Five people watched Heat and Ronin; three watched Up.
        let mut interactions = Vec::new();
        for u in 0..5 {
            interactions.push(Interaction { user: u, movie: 0, weight: 3.0, at: 0 });
            interactions.push(Interaction { user: u, movie: 2, weight: 3.0, at: 0 });
        }
        for u in 5..8 {
            interactions.push(Interaction { user: u, movie: 3, weight: 3.0, at: 0 });
        }
        let ids: Vec<Uuid> = movies.iter().map(|m| m.id).collect();
        let model = Model::build(&ids, &interactions, 0);
        let content = ContentIndex::build(&movies);
        let view = View { movies: &movies, content: &content, model: &model };
        let got = view.recommend(&[(0, watched(1))], 4, None);
        assert_eq!(got[0].movie, 2, "{got:?}");
        assert_eq!(got[0].reason, "because you watched Heat");
        assert!(got.iter().all(|s| s.movie != 0), "{got:?}");
        // Collateral and Thief: no history, the same director and genre as Heat.
        let next: Vec<u32> = got[1..3].iter().map(|s| s.movie).collect();
        assert!(next.contains(&1) && next.contains(&4), "{got:?}");
        assert_eq!(got[1].reason, "from the director of Heat");

        let new_user = view.recommend(&[], 2, None);
        assert_eq!(new_user[0].reason, "popular this week");
        assert!([0, 2].contains(&new_user[0].movie), "{new_user:?}");

        let similar = view.similar(4, 3);
        assert_eq!(similar[0].reason, "same director as Thief", "{similar:?}");
        assert!(view.similar(0, 1)[0].reason.contains("same people"));
    }
}

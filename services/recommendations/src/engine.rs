//! The recommender as a replica holds it: the live signals, updated at once from every event
//! (each replica hears every event, [`crate::reactions::Live`]), and the item-to-item model,
//! rebuilt from them in the background and swapped in whole, so a query never waits for a
//! build. The database ([`crate::store`]) is the truth both are loaded from at start and after
//! a lost connection; every update is a merge, so loading and events can interleave freely.

use std::{
    collections::{HashMap, HashSet},
    sync::{
        Arc, RwLock,
        atomic::{AtomicBool, Ordering},
    },
    time::{Duration, Instant},
};

use tokio::sync::Notify;
use uuid::Uuid;

use crate::model::{ContentIndex, Filter, Interaction, Model, Movie, Signal, Suggestion, View};

/// A showtime as the cinema filter needs it.
#[derive(Debug, Clone, PartialEq)]
pub struct Show {
    pub movie: Uuid,
    pub theater: Uuid,
    pub starts_at: i64,
    pub cancelled: bool,
}

/// A movie's latest description, and when it was made (the newest wins).
#[derive(Debug, Clone, PartialEq)]
pub struct MovieFacts {
    pub movie: Movie,
    pub changed_at: i64,
}

#[derive(Debug, Default)]
pub struct Live {
    movies: Vec<Movie>,
    changed_at: Vec<i64>,
    ids: HashMap<Uuid, u32>,
    content: ContentIndex,
    users: HashMap<Uuid, HashMap<u32, Signal>>,
    shows: HashMap<Uuid, Show>,
    /// Bookings whose showtime is not known yet: showtime → users.
    waiting: HashMap<Uuid, HashSet<Uuid>>,
    /// Showtimes cancelled, also those whose schedule was not heard of yet.
    cancelled: HashSet<Uuid>,
    theaters: HashMap<Uuid, HashSet<Uuid>>,
}

impl Live {
    /// The index of a movie, made (as an untitled placeholder) when first named.
    fn index(&mut self, id: Uuid) -> u32 {
        if let Some(i) = self.ids.get(&id) {
            return *i;
        }
        let i = self.movies.len() as u32;
        self.movies.push(Movie { id, ..Movie::default() });
        self.changed_at.push(i64::MIN);
        self.ids.insert(id, i);
        i
    }

    pub fn movie_changed(&mut self, facts: MovieFacts) {
        let i = self.index(facts.movie.id) as usize;
        let deleted = self.movies[i].deleted || facts.movie.deleted;
        if facts.changed_at > self.changed_at[i] {
            let content_changed = {
                let old = &self.movies[i];
                old.genres != facts.movie.genres
                    || old.director != facts.movie.director
                    || old.cast != facts.movie.cast
            };
            let first = self.changed_at[i] == i64::MIN;
            self.movies[i] = facts.movie;
            self.changed_at[i] = facts.changed_at;
            if first {
                // A movie's first description: added as it comes (loading thousands stays linear).
                self.content.add(i as u32, &self.movies[i]);
            } else if content_changed {
                self.content = ContentIndex::build(&self.movies);
            }
        }
        self.movies[i].deleted = deleted;
    }

    pub fn movie_deleted(&mut self, id: Uuid) {
        let i = self.index(id) as usize;
        self.movies[i].deleted = true;
    }

    pub fn signal(&mut self, user: Uuid, movie: Uuid, signal: &Signal) {
        let m = self.index(movie);
        self.users.entry(user).or_default().entry(m).or_default().merge(signal);
    }

    pub fn show(&mut self, id: Uuid, show: Show) {
        let cancelled = self.cancelled.contains(&id) || show.cancelled;
        let theater = show.theater;
        self.shows.insert(id, Show { cancelled, ..show });
        for user in self.waiting.remove(&id).unwrap_or_default() {
            self.theaters.entry(user).or_default().insert(theater);
        }
    }

    pub fn show_cancelled(&mut self, id: Uuid) {
        self.cancelled.insert(id);
        if let Some(s) = self.shows.get_mut(&id) {
            s.cancelled = true;
        }
    }

    /// The user booked a showtime: its theater is one of theirs.
    pub fn booked_at(&mut self, user: Uuid, showtime: Uuid) {
        match self.shows.get(&showtime) {
            Some(show) => {
                let theater = show.theater;
                self.theaters.entry(user).or_default().insert(theater);
            }
            None => {
                self.waiting.entry(showtime).or_default().insert(user);
            }
        }
    }

    /// Every positive or negative signal, as the model is built from: users by id and movies by
    /// id, so every replica sums the same numbers in the same order and gets the same model.
    fn interactions(&self) -> Vec<Interaction> {
        let mut out = Vec::with_capacity(self.users.values().map(HashMap::len).sum());
        let mut users: Vec<(&Uuid, &HashMap<u32, Signal>)> = self.users.iter().collect();
        users.sort_unstable_by_key(|(id, _)| **id);
        for (u, (_, signals)) in users.into_iter().enumerate() {
            let mut signals: Vec<(&u32, &Signal)> = signals.iter().collect();
            signals.sort_unstable_by_key(|(m, _)| self.movies[**m as usize].id);
            for (m, s) in signals {
                out.push(Interaction { user: u as u32, movie: *m, weight: s.weight(), at: s.last_at });
            }
        }
        out
    }
}

/// What a query gets back: a movie, its title, score and why.
#[derive(Debug, Clone, PartialEq)]
pub struct Pick {
    pub movie_id: Uuid,
    pub title: String,
    pub score: f32,
    pub reason: String,
}

pub struct Engine {
    live: RwLock<Live>,
    model: RwLock<Arc<Model>>,
    dirty: AtomicBool,
    wake: Notify,
}

impl Default for Engine {
    fn default() -> Self {
        Self::new()
    }
}

impl Engine {
    pub fn new() -> Self {
        Self {
            live: RwLock::default(),
            model: RwLock::default(),
            dirty: AtomicBool::new(false),
            wake: Notify::new(),
        }
    }

    /// Change the live state; the model is rebuilt soon after.
    pub fn update(&self, change: impl FnOnce(&mut Live)) {
        change(&mut self.live.write().unwrap_or_else(|p| p.into_inner()));
        self.dirty.store(true, Ordering::Release);
        self.wake.notify_one();
    }

    fn model(&self) -> Arc<Model> {
        self.model.read().unwrap_or_else(|p| p.into_inner()).clone()
    }

    /// Rebuild the model from the live signals now (the build runs without any lock held).
    pub fn rebuild(&self, now: i64) -> BuildReport {
        self.dirty.store(false, Ordering::Release);
        let started = Instant::now();
        let (ids, interactions) = {
            let live = self.live.read().unwrap_or_else(|p| p.into_inner());
            (live.movies.iter().map(|m| m.id).collect::<Vec<_>>(), live.interactions())
        };
        let movies = ids.len();
        let model = Model::build(&ids, &interactions, now);
        *self.model.write().unwrap_or_else(|p| p.into_inner()) = Arc::new(model);
        BuildReport { movies, interactions: interactions.len(), took: started.elapsed() }
    }

    /// Rebuild whenever something changed, at most once per `every`, until `shutdown`.
    pub async fn run(
        self: Arc<Self>,
        every: Duration,
        clock: platform::clock::Clock,
        shutdown: tokio_util::sync::CancellationToken,
    ) {
        loop {
            if self.dirty.load(Ordering::Acquire) {
                let engine = self.clone();
                let now = clock.now_ms();
                match tokio::task::spawn_blocking(move || engine.rebuild(now)).await {
                    Ok(report) => tracing::debug!(
                        movies = report.movies,
                        interactions = report.interactions,
                        took_ms = report.took.as_millis() as u64,
                        "recommendation model rebuilt"
                    ),
                    Err(e) => tracing::warn!(error = %e, "rebuilding the recommendation model failed"),
                }
            }
            tokio::select! {
                () = shutdown.cancelled() => return,
                () = self.wake.notified() => {}
                () = tokio::time::sleep(every) => {}
            }
            // Let a burst of events land before building again.
            tokio::select! {
                () = shutdown.cancelled() => return,
                () = tokio::time::sleep(every) => {}
            }
        }
    }

    /// Suggestions for `user`; with `cinema`, only movies with a showtime to come, those at the
    /// user's theaters (where they booked before) first.
    pub fn recommend(&self, user: Uuid, limit: usize, cinema: bool, now: i64) -> Vec<Pick> {
        let model = self.model();
        let live = self.live.read().unwrap_or_else(|p| p.into_inner());
        let mut profile: Vec<(u32, Signal)> =
            live.users.get(&user).map(|s| s.iter().map(|(m, s)| (*m, *s)).collect()).unwrap_or_default();
        profile.sort_unstable_by_key(|(m, _)| live.movies[*m as usize].id);
        let view = View { movies: &live.movies, content: &live.content, model: &model };
        let suggestions = if cinema {
            let mine = live.theaters.get(&user);
            let mut showing: HashMap<u32, bool> = HashMap::new();
            for show in live.shows.values().filter(|s| !s.cancelled && s.starts_at > now) {
                if let Some(m) = live.ids.get(&show.movie) {
                    let near = mine.is_some_and(|t| t.contains(&show.theater));
                    *showing.entry(*m).or_default() |= near;
                }
            }
            let allowed = |m: u32| showing.contains_key(&m);
            let boost = |m: u32| if showing.get(&m).copied().unwrap_or(false) { 2.0 } else { 1.0 };
            view.recommend(&profile, limit, Some(&Filter { allowed: &allowed, boost: &boost }))
        } else {
            view.recommend(&profile, limit, None)
        };
        picks(&live, suggestions)
    }

    /// Movies like `movie`; None when it is not a movie this service has heard of.
    pub fn similar(&self, movie: Uuid, limit: usize) -> Option<Vec<Pick>> {
        let model = self.model();
        let live = self.live.read().unwrap_or_else(|p| p.into_inner());
        let m = *live.ids.get(&movie)?;
        if live.movies[m as usize].title.is_empty() {
            return None;
        }
        let view = View { movies: &live.movies, content: &live.content, model: &model };
        Some(picks(&live, view.similar(m, limit)))
    }
}

fn picks(live: &Live, suggestions: Vec<Suggestion>) -> Vec<Pick> {
    suggestions
        .into_iter()
        .filter_map(|s| {
            let movie = live.movies.get(s.movie as usize)?;
            Some(Pick { movie_id: movie.id, title: movie.title.clone(), score: s.score, reason: s.reason })
        })
        .collect()
}

#[derive(Debug, Clone, Copy)]
pub struct BuildReport {
    pub movies: usize,
    pub interactions: usize,
    pub took: Duration,
}

//! Offline evaluation that can fail: generated histories with planted tastes (groups of users
//! who like groups of movies, with noise and a popularity skew), each user's last interaction
//! held out, and hit rate@10 and NDCG@10 of the model beside a popularity baseline.
//! `cargo bench -p recommendations` runs it at full size and fails when the model does not
//! beat the baseline by a clear margin.

use std::collections::{HashMap, HashSet};

use contracts::catalog::GENRES;

use uuid::Uuid;

use crate::model::{ContentIndex, Interaction, Model, Movie, Signal, View};

/// The shape of a generated history.
#[derive(Debug, Clone, Copy)]
pub struct Shape {
    pub users: usize,
    pub movies: usize,
    pub interactions: usize,
    /// Taste groups: each has its own block of movies, genres and directors.
    pub groups: usize,
    /// The share of interactions picked from the whole catalogue by popularity, not by taste.
    pub noise: f64,
    pub seed: u64,
}

impl Shape {
    pub const SMALL: Shape =
        Shape { users: 2_000, movies: 500, interactions: 40_000, groups: 10, noise: 0.25, seed: 7 };
    pub const FULL: Shape =
        Shape { users: 10_000, movies: 5_000, interactions: 1_000_000, groups: 25, noise: 0.25, seed: 7 };
}

/// A small, fast, reproducible generator (SplitMix64).
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Self {
        Self(seed)
    }

    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    pub fn unit(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }

    pub fn below(&mut self, n: usize) -> usize {
        (self.next_u64() % n.max(1) as u64) as usize
    }
}

/// Ranks drawn with probability ∝ 1 / (rank + 1): a few hits, a long tail.
struct Zipf {
    cumulative: Vec<f64>,
}

impl Zipf {
    fn new(n: usize) -> Self {
        let mut total = 0.0;
        let cumulative = (0..n)
            .map(|r| {
                total += 1.0 / (r as f64 + 1.0);
                total
            })
            .collect();
        Self { cumulative }
    }

    fn sample(&self, rng: &mut Rng) -> usize {
        let x = rng.unit() * self.cumulative.last().copied().unwrap_or(1.0);
        self.cumulative.partition_point(|c| *c < x).min(self.cumulative.len().saturating_sub(1))
    }
}

/// A generated history: the movies and each user's signals, oldest first.
pub struct History {
    pub movies: Vec<Movie>,
    pub users: Vec<Vec<(u32, Signal)>>,
}

pub fn generate(shape: Shape) -> History {
    let mut rng = Rng::new(shape.seed);
    let per_group = (shape.movies / shape.groups).max(1);
    // Movies are shuffled into groups, so a movie's index says nothing of its group.
    let mut order: Vec<usize> = (0..shape.movies).collect();
    for i in (1..order.len()).rev() {
        order.swap(i, rng.below(i + 1));
    }
    let group_of = |m: usize| (order[m] / per_group).min(shape.groups - 1);
    let movies: Vec<Movie> = (0..shape.movies)
        .map(|m| {
            let g = group_of(m);
            // Two genres of the group's own, sometimes a third from anywhere: content that agrees
            // with taste, loosely.
            let mut genres =
                vec![GENRES[g % GENRES.len()].to_owned(), GENRES[(g * 7 + 3) % GENRES.len()].to_owned()];
            if rng.unit() < 0.3 {
                genres.push(GENRES[rng.below(GENRES.len())].to_owned());
            }
            genres.dedup();
            Movie {
                id: Uuid::from_u64_pair(0, m as u64),
                title: format!("Movie {m}"),
                genres,
                director: format!("Director {}", g * 4 + rng.below(4)),
                cast: (0..3).map(|_| format!("Actor {}", g * 20 + rng.below(20))).collect(),
                deleted: false,
            }
        })
        .collect();
    let mut members: Vec<Vec<usize>> = vec![Vec::new(); shape.groups];
    for m in 0..shape.movies {
        members[group_of(m)].push(m);
    }
    let in_group = Zipf::new(per_group);
    let global = Zipf::new(shape.movies);
    let mut users = Vec::with_capacity(shape.users);
    let per_user = shape.interactions / shape.users.max(1);
    for u in 0..shape.users {
        let group = u % shape.groups;
        // Some users are far more active than others.
        let n = ((per_user as f64) * (0.3 + 1.4 * rng.unit())).round().max(2.0) as usize;
        let mut signals: HashMap<u32, Signal> = HashMap::new();
        let mut order = Vec::new();
        for t in 0..n {
            let taste = rng.unit() >= shape.noise;
            let m = if taste {
                let block = &members[group];
                block[in_group.sample(&mut rng).min(block.len() - 1)]
            } else {
                global.sample(&mut rng)
            } as u32;
            let roll = rng.unit();
            let mut signal = Signal { last_at: t as i64, ..Signal::default() };
            if roll < 0.4 {
                signal.booked = true;
            } else if roll < 0.9 {
                signal.watched = Some((0.3 + 0.7 * rng.unit()) as f32);
            } else {
                let r = if taste { 7 + rng.below(4) } else { 2 + rng.below(7) };
                signal.rating = Some(r as i64);
                signal.rating_version = 1;
            }
            if !signals.contains_key(&m) {
                order.push(m);
            }
            signals.entry(m).or_default().merge(&signal);
        }
        users.push(order.into_iter().map(|m| (m, signals[&m])).collect());
    }
    History { movies, users }
}

/// Hit rate@10 and NDCG@10 of one recommender.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Score {
    pub hit_rate: f64,
    pub ndcg: f64,
}

/// The evaluation's result: the model, the baseline, and how many users were asked.
#[derive(Debug, Clone, Copy)]
pub struct Evaluation {
    pub model: Score,
    pub popularity: Score,
    pub users: usize,
}

/// Hold out each user's last interaction (when it is a like), train on the rest, and see
/// where each recommender ranks it in its top 10. At most `sample` users are asked.
pub fn evaluate(history: &History, sample: usize) -> Evaluation {
    let mut train = Vec::new();
    let mut tests = Vec::new();
    for (u, signals) in history.users.iter().enumerate() {
        let Some((last, rest)) = signals.split_last() else { continue };
        for (m, s) in rest {
            train.push(Interaction { user: u as u32, movie: *m, weight: s.weight(), at: s.last_at });
        }
        if last.1.weight() > 0.0 && !rest.is_empty() {
            tests.push((u, last.0));
        }
    }
    let now = train.iter().map(|i| i.at).max().unwrap_or(0);
    let ids: Vec<Uuid> = history.movies.iter().map(|m| m.id).collect();
    let model = Model::build(&ids, &train, now);
    let content = ContentIndex::build(&history.movies);
    let view = View { movies: &history.movies, content: &content, model: &model };
    let step = (tests.len() / sample.max(1)).max(1);
    let (mut m, mut p, mut asked) = (Score::default(), Score::default(), 0usize);
    for &(u, held_out) in tests.iter().step_by(step) {
        let profile = &history.users[u][..history.users[u].len() - 1];
        let ranked: Vec<u32> = view.recommend(profile, 10, None).iter().map(|s| s.movie).collect();
        add(&mut m, &ranked, held_out);
        let seen: HashSet<u32> = profile.iter().map(|(m, _)| *m).collect();
        let baseline: Vec<u32> = view.popular(10, &seen, None, None).iter().map(|s| s.movie).collect();
        add(&mut p, &baseline, held_out);
        asked += 1;
    }
    let per =
        |s: Score| Score { hit_rate: s.hit_rate / asked.max(1) as f64, ndcg: s.ndcg / asked.max(1) as f64 };
    Evaluation { model: per(m), popularity: per(p), users: asked }
}

fn add(score: &mut Score, ranked: &[u32], held_out: u32) {
    if let Some(rank) = ranked.iter().position(|m| *m == held_out) {
        score.hit_rate += 1.0;
        score.ndcg += 1.0 / (rank as f64 + 2.0).log2();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_model_beats_popularity_on_planted_tastes() {
        let history = generate(Shape::SMALL);
        let e = evaluate(&history, 1_000);
        println!("{e:?}");
        assert!(e.users > 500, "{e:?}");
        assert!(e.model.hit_rate > 1.5 * e.popularity.hit_rate, "{e:?}");
        assert!(e.model.ndcg > 1.5 * e.popularity.ndcg, "{e:?}");
    }

    #[test]
    fn without_tastes_there_is_nothing_to_find_and_the_evaluation_says_so() {
        // All noise: the model has no taste to learn, so it cannot beat popularity by much. An
        // evaluation that always passed would pass here too.
        let history = generate(Shape { noise: 1.0, ..Shape::SMALL });
        let e = evaluate(&history, 1_000);
        assert!(e.model.hit_rate < 1.5 * e.popularity.hit_rate, "{e:?}");
    }
}

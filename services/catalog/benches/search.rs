//! Search over 10,000 generated movies: the time of one query, for typical query shapes.
//! `cargo bench -p catalog`; criterion prints the median and the spread per query.

use catalog::{domain::Movie, search::SearchIndex};
use criterion::{Criterion, criterion_group, criterion_main};
use std::hint::black_box;

const WORDS: &[&str] = &[
    "night", "city", "river", "ghost", "king", "summer", "shadow", "iron", "glass", "storm", "garden",
    "silent", "last", "golden", "wild", "dark", "blue", "broken", "hidden", "winter", "machine", "heart",
    "empire", "star",
];
const NAMES: &[&str] =
    &["Ava Stone", "Leo Marsh", "Mia Chen", "Omar Diaz", "Ines Kova", "Paul Wren", "Sara Holm", "Tomas Berg"];

/// A deterministic catalog: titles of two or three words, a synopsis of twelve, a cast of three.
fn movies(n: usize) -> Vec<Movie> {
    let mut seed: u64 = 42;
    let mut next = move || {
        seed = seed.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
        (seed >> 33) as usize
    };
    (0..n)
        .map(|i| {
            let mut pick =
                |k: usize| (0..k).map(|_| WORDS[next() % WORDS.len()]).collect::<Vec<_>>().join(" ");
            let title = format!("{} {i}", pick(2));
            let synopsis = pick(12);
            Movie {
                id: uuid::Uuid::from_u128(i as u128 + 1),
                title,
                synopsis,
                genres: vec!["drama".into()],
                runtime_minutes: 100,
                release_date: None,
                director: NAMES[i % NAMES.len()].into(),
                cast: (0..3).map(|k| NAMES[(i + k + 1) % NAMES.len()].to_owned()).collect(),
                rating: None,
                rating_count: 0,
                poster_url: None,
                featured: false,
                streamable: false,
                imdb_id: None,
            }
        })
        .collect()
}

fn search(c: &mut Criterion) {
    let index = SearchIndex::new().expect("index");
    index.rebuild(&movies(10_000)).expect("built");
    // Criterion reports the median and its confidence interval; the tail comes from here.
    println!("{:<22} {:>10} {:>10}", "query", "p50", "p99");
    for q in ["ghost", "ghots river", "golden empire star", "silen", "leo marsh"] {
        let mut times: Vec<std::time::Duration> = (0..2000)
            .map(|_| {
                let t = std::time::Instant::now();
                black_box(index.search(q, 20, 0).expect("search"));
                t.elapsed()
            })
            .collect();
        times.sort();
        println!("{q:<22} {:>10.1?} {:>10.1?}", times[times.len() / 2], times[times.len() * 99 / 100]);
    }
    let mut group = c.benchmark_group("search 10k movies");
    for q in ["ghost", "ghots river", "golden empire star", "silen", "leo marsh"] {
        group.bench_function(q, |b| b.iter(|| index.search(black_box(q), 20, 0).expect("search")));
    }
    group.finish();
}

criterion_group!(benches, search);
criterion_main!(benches);

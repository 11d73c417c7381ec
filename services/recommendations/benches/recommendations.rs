//! `cargo bench -p recommendations`: the offline evaluation at full size (10,000 users, 5,000
//! movies, 1,000,000 interactions with planted tastes), and what the model costs: build time,
//! memory, query latency. Exits non-zero when the model does not beat the popularity baseline
//! by a clear margin (1.5× on both measures).

use std::time::Instant;

use recommendations::{
    eval::{Shape, evaluate, generate},
    model::{ContentIndex, Interaction, Model, View},
};

fn rss_kib() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmRSS:"))
                .and_then(|l| l.split_whitespace().nth(1).and_then(|n| n.parse().ok()))
        })
        .unwrap_or(0)
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    sorted[((sorted.len() as f64 - 1.0) * p).round() as usize]
}

fn main() {
    // `cargo bench` passes `--bench`; a filter argument picks the small shape (a quick look).
    let small = std::env::args().skip(1).any(|a| a == "small");
    let shape = if small { Shape::SMALL } else { Shape::FULL };
    let started = Instant::now();
    let history = generate(shape);
    let interactions: usize = history.users.iter().map(Vec::len).sum();
    println!(
        "history: {} users, {} movies, {} interactions ({} distinct user-movie pairs), generated in {:.1} s",
        shape.users,
        shape.movies,
        shape.interactions,
        interactions,
        started.elapsed().as_secs_f64()
    );

    let all: Vec<Interaction> = history
        .users
        .iter()
        .enumerate()
        .flat_map(|(u, signals)| {
            signals.iter().map(move |(m, s)| Interaction {
                user: u as u32,
                movie: *m,
                weight: s.weight(),
                at: s.last_at,
            })
        })
        .collect();
    let before = rss_kib();
    let started = Instant::now();
    let ids: Vec<_> = history.movies.iter().map(|m| m.id).collect();
    let model = Model::build(&ids, &all, 0);
    let content = ContentIndex::build(&history.movies);
    let build = started.elapsed();
    let after = rss_kib();
    let neighbours: usize = model.neighbours.iter().map(Vec::len).sum();
    println!(
        "model build: {:.2} s; resident memory +{:.1} MiB during the build; the model kept: {} neighbour pairs, {:.1} MiB",
        build.as_secs_f64(),
        after.saturating_sub(before) as f64 / 1024.0,
        neighbours,
        (neighbours * 8 + history.movies.len() * 32) as f64 / (1024.0 * 1024.0)
    );

    let view = View { movies: &history.movies, content: &content, model: &model };
    let mut times = Vec::new();
    for (i, profile) in history.users.iter().enumerate().step_by(5) {
        let started = Instant::now();
        let got = view.recommend(profile, 10, None);
        times.push(started.elapsed().as_secs_f64() * 1000.0);
        assert!(!got.is_empty() || i == usize::MAX);
    }
    times.sort_by(f64::total_cmp);
    println!(
        "query (GET /recommendations/me's work, {} users): p50 {:.3} ms, p99 {:.3} ms, max {:.3} ms",
        times.len(),
        percentile(&times, 0.5),
        percentile(&times, 0.99),
        times.last().copied().unwrap_or(0.0)
    );

    let started = Instant::now();
    let e = evaluate(&history, 5_000);
    println!("\nleave-last-out evaluation, {} users ({:.1} s):\n", e.users, started.elapsed().as_secs_f64());
    println!("| recommender | hit rate@10 | NDCG@10 |");
    println!("|---|---|---|");
    println!("| item-to-item + content (Marquee) | {:.3} | {:.3} |", e.model.hit_rate, e.model.ndcg);
    println!("| popularity (baseline) | {:.3} | {:.3} |", e.popularity.hit_rate, e.popularity.ndcg);
    println!(
        "| ratio | {:.2}× | {:.2}× |",
        e.model.hit_rate / e.popularity.hit_rate.max(f64::EPSILON),
        e.model.ndcg / e.popularity.ndcg.max(f64::EPSILON)
    );
    if e.model.hit_rate < 1.5 * e.popularity.hit_rate || e.model.ndcg < 1.5 * e.popularity.ndcg {
        eprintln!("the model does not beat the popularity baseline by 1.5×");
        std::process::exit(1);
    }
}

//! The load scenarios run against a live system and measure what they say.

use marquee::loadtest::LoadtestArgs;
use serde_json::json;
use testkit::TestSystem;

/// `scenario` against the test system's gateway, as its admin, briefly.
fn args(sys: &TestSystem, scenario: &str, duration: u64, concurrency: usize) -> LoadtestArgs {
    LoadtestArgs {
        url: sys.gateway.clone(),
        scenario: scenario.into(),
        duration,
        concurrency,
        rate: None,
        direct_url: None,
        admin_email: Some(testkit::ADMIN_EMAIL.into()),
        admin_password: Some(testkit::ADMIN_PASSWORD.into()),
        media_mib: 1,
        range_mib: 1,
    }
}

/// A movie in the catalogue (the scenarios read or sell it).
async fn a_movie(sys: &TestSystem, title: &str) {
    let admin = sys.admin_token().await;
    let movie = sys
        .post(
            "/api/v1/movies",
            json!({"title": title, "genres": ["drama"], "runtime_minutes": 90}),
            Some(&admin),
        )
        .await;
    assert_eq!(movie.status, 201, "{}", movie.body);
}

#[tokio::test]
async fn the_overhead_scenario_measures_bare_direct_and_gateway_alike() {
    let sys = TestSystem::start().await;
    a_movie(&sys, "Stalker").await;
    // No --direct-url: found through the gateway's /health, which names replicas to admins.
    let results = marquee::loadtest::run(args(&sys, "overhead", 1, 2)).await.expect("ran");
    let mut targets = vec![marquee::overhead::BARE, marquee::overhead::DIRECT, marquee::overhead::GATEWAY];
    // nginx is measured beside the gateway when it is installed (CI installs it).
    let nginx = std::path::Path::new("/usr/sbin/nginx").exists();
    assert!(nginx || std::env::var_os("MARQUEE_TEST_REQUIRE_NGINX").is_none(), "nginx is required here");
    if nginx {
        targets.push(marquee::overhead::NGINX);
        assert!(marquee::overhead::gateway_to_nginx(&results).is_some_and(|r| r > 0.0));
    }
    for name in targets {
        let stats = &results[name];
        assert!(stats.latencies.len() > 10, "{name}: {} requests", stats.latencies.len());
        assert_eq!(stats.errors, 0, "{name}");
    }
    let (direct, gateway) = marquee::overhead::ratios(&results).expect("ratios");
    assert!(direct > 0.0 && gateway > 0.0);
}

/// The rush: buyers racing for seats, hold then pay, on showtimes it puts on sale itself; it
/// checks no seat went twice and ends with the ledger check. Closed loop, then open loop.
#[tokio::test]
async fn the_rush_sells_seats_once_and_ends_with_a_clean_ledger() {
    let sys = TestSystem::start().await;
    a_movie(&sys, "Rush").await;
    let args = |rate: Option<f64>| LoadtestArgs { rate, ..args(&sys, "rush", 2, 4) };
    let closed = marquee::loadtest::run(args(None)).await.expect("the rush, its oversell and ledger checks");
    assert!(closed["pay"].latencies.len() > 3, "some bookings were paid");
    // Open loop: 20 bookings a second for 2 s is 40 holds started, answered or not.
    let open = marquee::loadtest::run(args(Some(20.0))).await.expect("the open-loop rush");
    let started: usize =
        ["hold", "hold, taken"].iter().filter_map(|k| open.get(k)).map(|s| s.latencies.len()).sum();
    assert_eq!(started, 40, "{open:?}");
    assert_eq!(open["hold"].errors, 0);
    let report = sys.assert_ledger_clean(std::time::Duration::from_secs(5)).await;
    assert!(report.confirmed > 0);
}

/// The effects scenario: every booking's loyalty points are seen, and how long that took.
#[tokio::test]
async fn the_effects_scenario_sees_each_bookings_points() {
    let sys = TestSystem::start().await;
    a_movie(&sys, "Effects").await;
    // It sells its own seats, so it wants an admin, and says so.
    let anonymous = LoadtestArgs { admin_email: None, admin_password: None, ..args(&sys, "effects", 1, 1) };
    let refused = marquee::loadtest::run(anonymous).await.expect_err("no admin, no run");
    assert!(refused.to_string().contains("--admin-email"), "{refused}");
    let results = marquee::loadtest::run(args(&sys, "effects", 2, 2)).await.expect("the effects scenario");
    let paid = &results["pay"];
    let seen = &results["points visible"];
    assert!(paid.latencies.len() >= 2, "{results:?}");
    assert_eq!((paid.errors, seen.errors), (0, 0), "{results:?}");
    assert_eq!(seen.latencies.len(), paid.latencies.len(), "every paid booking's points were seen");
    // Only the scenario's bookings exist, each confirmed, and money and seats agree.
    let report = sys.assert_ledger_clean(std::time::Duration::from_secs(5)).await;
    assert_eq!(report.confirmed, paid.latencies.len());
}

/// The streaming scenarios: viewers fetch ranges of a large file through their sessions (and
/// send heartbeats), and start and stop sessions.
#[tokio::test]
async fn the_streaming_scenarios_fetch_ranges_and_start_sessions() {
    let sys = TestSystem::start().await;
    let args = |scenario: &str| LoadtestArgs { media_mib: 4, ..args(&sys, scenario, 1, 2) };
    let results = marquee::loadtest::run(args("stream")).await.expect("the stream scenario");
    let ranges = &results["range"];
    assert!(ranges.latencies.len() > 2, "{} ranges", ranges.latencies.len());
    assert_eq!(ranges.errors, 0);
    let results = marquee::loadtest::run(args("playback")).await.expect("the playback scenario");
    assert!(results["start"].latencies.len() > 2);
    assert_eq!((results["start"].errors, results["stop"].errors), (0, 0));
}

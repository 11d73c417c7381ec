//! The load scenarios run against a live system and measure what they say.

use serde_json::json;
use testkit::TestSystem;

#[tokio::test]
async fn the_overhead_scenario_measures_bare_direct_and_gateway_alike() {
    let sys = TestSystem::start().await;
    let admin = sys.admin_token().await;
    let movie = sys
        .post(
            "/api/v1/movies",
            json!({"title": "Stalker", "genres": ["drama"], "runtime_minutes": 162}),
            Some(&admin),
        )
        .await;
    assert_eq!(movie.status, 201, "{}", movie.body);
    let args = marquee::loadtest::LoadtestArgs {
        url: sys.gateway.clone(),
        scenario: "overhead".into(),
        duration: 1,
        concurrency: 2,
        direct_url: None, // found through the gateway's /health
    };
    let results = marquee::loadtest::run(args).await.expect("ran");
    for name in [marquee::overhead::BARE, marquee::overhead::DIRECT, marquee::overhead::GATEWAY] {
        let stats = &results[name];
        assert!(stats.latencies.len() > 10, "{name}: {} requests", stats.latencies.len());
        assert_eq!(stats.errors, 0, "{name}");
    }
    let (direct, gateway) = marquee::overhead::ratios(&results).expect("ratios");
    assert!(direct > 0.0 && gateway > 0.0);
}

use std::time::Duration;

use serde_json::Value;
use testkit::TestSystem;

use crate::{fetch, settings, start, subscriber};

/// `marquee up`'s demo: three featured movies get a real clip at first start and can be
/// watched at once, as HLS when ffmpeg is installed, else as the MP4 itself.
#[tokio::test]
async fn the_demo_makes_featured_movies_streamable_with_a_real_clip() {
    let sys = TestSystem::start_with(settings(true).with("MARQUEE_DEMO", "1")).await;
    let mut streamable: Vec<Value> = Vec::new();
    for _ in 0..300 {
        let featured = sys.get("/api/v1/movies/featured?per_page=3", None).await;
        streamable = featured.body["items"]
            .as_array()
            .map(|items| items.iter().filter(|m| m["streamable"] == Value::Bool(true)).cloned().collect())
            .unwrap_or_default();
        if streamable.len() == 3 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(streamable.len(), 3, "three featured movies became streamable: {streamable:?}");
    let (token, _) = subscriber(&sys, "basic").await;
    let movie = streamable[0]["id"].as_str().expect("id");
    let s = start(&sys, &token, movie).await;
    assert_eq!((s.status, s.body["duration_seconds"].as_i64()), (201, Some(20)), "{}", s.body);
    let url = s.body["stream_url"].as_str().expect("url");
    let (status, _, body) = fetch(&sys, url, &[]).await;
    assert_eq!(status, 200);
    if s.body["kind"] == "hls" {
        assert!(body.starts_with(b"#EXTM3U"), "a playlist");
    } else {
        assert_eq!(&body[4..8], b"ftyp", "an MP4");
        assert_eq!(streaming::clip::mp4_duration_seconds(&body), Some(20.0));
    }
}

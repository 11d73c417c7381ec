//! Media in S3: the same upload and delivery against a real S3 API (moto's server, started here
//! on a free port), as against the directory.

use testkit::TestSystem;

use crate::{fetch, settings, start, streamable, subscriber};

#[tokio::test]
async fn media_in_s3_streams_like_media_in_a_directory() {
    let Some(moto) = testkit::moto::start("marquee-media").await else {
        eprintln!(
            "SKIPPED media_in_s3_streams_like_media_in_a_directory: no moto (pip install 'moto[server]')"
        );
        return;
    };
    let settings = moto.settings(settings(true), "MARQUEE_OBJECT_STORE", "marquee-media", "test");
    let sys = TestSystem::start_with(settings).await;
    let admin = sys.admin_token().await;
    let (movie_id, clip) = streamable(&sys, &admin, 6).await;
    let listing = sys
        .http
        .get(format!("{}/marquee-media?list-type=2&prefix=test/media/{movie_id}/", moto.url))
        .send()
        .await
        .expect("list")
        .text()
        .await
        .expect("xml");
    assert!(listing.contains(&format!("test/media/{movie_id}/")), "the objects are in the bucket: {listing}");
    assert!(!sys.storage.dir().join("objects").join("media").exists(), "and not in the directory");

    // Read it back as a file: a second system on the same bucket would do the same. Here the
    // clip is fetched through a session (HLS when ffmpeg packaged it, else the MP4 with ranges).
    let (token, _) = subscriber(&sys, "basic").await;
    let s = start(&sys, &token, &movie_id).await;
    assert_eq!(s.status, 201, "{}", s.body);
    let url = s.body["stream_url"].as_str().expect("url").to_owned();
    if s.body["kind"] == "hls" {
        let (status, _, playlist) = fetch(&sys, &url, &[]).await;
        assert_eq!(status, 200);
        let playlist = String::from_utf8(playlist).expect("text");
        let segment = playlist.lines().find(|l| !l.starts_with('#') && !l.is_empty()).expect("a segment");
        let base = url.split_once("/index.m3u8").expect("base").0;
        let (status, _, body) = fetch(&sys, &format!("{base}/{segment}"), &[("range", "bytes=0-187")]).await;
        assert_eq!((status, body.len()), (206, 188), "a range of a segment from S3");
    } else {
        let (status, _, body) = fetch(&sys, &url, &[("range", "bytes=100-199")]).await;
        assert_eq!((status, body.as_slice()), (206, &clip[100..200]), "a range from S3");
    }
}

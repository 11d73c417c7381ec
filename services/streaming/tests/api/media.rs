use std::time::Duration;

use serde_json::Value;
use testkit::TestSystem;

use crate::{fetch, have_ffmpeg, movie, settings, start, streamable, subscriber, upload};

/// The files under a movie's media directory, all versions together. (A directory store leaves
/// an emptied version's directory behind; what counts is the files.)
fn files(dir: &std::path::Path) -> usize {
    std::fs::read_dir(dir)
        .map(|d| d.filter_map(Result::ok).map(|v| std::fs::read_dir(v.path()).map_or(0, |f| f.count())).sum())
        .unwrap_or(0)
}

fn header<'a>(headers: &'a reqwest::header::HeaderMap, name: &str) -> Option<&'a str> {
    headers.get(name).and_then(|v| v.to_str().ok())
}

#[tokio::test]
async fn ranges_first_bytes_suffixes_open_ranges_beyond_the_end_and_if_range() {
    let sys = TestSystem::start_with(settings(false)).await;
    let admin = sys.admin_token().await;
    let (movie_id, clip) = streamable(&sys, &admin, 5).await;
    let (token, _) = subscriber(&sys, "basic").await;
    let s = start(&sys, &token, &movie_id).await;
    assert_eq!(s.body["kind"], "file", "{}", s.body);
    let url = s.body["stream_url"].as_str().expect("url").to_owned();
    let size = clip.len();

    let (status, headers, body) = fetch(&sys, &url, &[]).await;
    assert_eq!(status, 200);
    assert_eq!(body, clip, "the whole file, byte for byte");
    assert_eq!(header(&headers, "content-type"), Some("video/mp4"));
    assert_eq!(header(&headers, "accept-ranges"), Some("bytes"));
    assert_eq!(header(&headers, "content-encoding"), None, "video is not compressed again");
    let etag = header(&headers, "etag").expect("an ETag").to_owned();

    let (status, headers, body) =
        fetch(&sys, &url, &[("range", "bytes=0-99"), ("accept-encoding", "gzip")]).await;
    assert_eq!((status, body.as_slice()), (206, &clip[..100]));
    assert_eq!(header(&headers, "content-range"), Some(format!("bytes 0-99/{size}").as_str()));
    assert_eq!(header(&headers, "content-length"), Some("100"));

    let (status, headers, body) = fetch(&sys, &url, &[("range", "bytes=-100")]).await;
    assert_eq!((status, body.as_slice()), (206, &clip[size - 100..]), "a suffix");
    assert_eq!(
        header(&headers, "content-range"),
        Some(format!("bytes {}-{}/{size}", size - 100, size - 1).as_str())
    );

    let (status, _, body) = fetch(&sys, &url, &[("range", "bytes=1000-")]).await;
    assert_eq!((status, body.as_slice()), (206, &clip[1000..]), "an open range");

    let beyond = format!("bytes={size}-");
    let (status, headers, body) = fetch(&sys, &url, &[("range", &beyond)]).await;
    assert_eq!(status, 416);
    assert_eq!(header(&headers, "content-range"), Some(format!("bytes */{size}").as_str()));
    let problem: Value = serde_json::from_slice(&body).expect("a problem");
    assert_eq!(problem["type"], "urn:marquee:problem:range-not-satisfiable");

    let (status, _, body) = fetch(&sys, &url, &[("range", "bytes=10-19"), ("if-range", &etag)]).await;
    assert_eq!((status, body.as_slice()), (206, &clip[10..20]), "If-Range with the current ETag");
    let (status, _, body) = fetch(&sys, &url, &[("range", "bytes=10-19"), ("if-range", "\"stale\"")]).await;
    assert_eq!((status, body.len()), (200, size), "a changed file comes whole");
    let (status, _, body) = fetch(&sys, &url, &[("if-none-match", &etag)]).await;
    assert_eq!((status, body.len()), (304, 0));

    // Straight to the service as well as through the gateway.
    let direct = format!("{}{url}", sys.service_url("streaming"));
    let (status, _, body) = fetch(&sys, &direct, &[("range", "bytes=0-9")]).await;
    assert_eq!((status, body.as_slice()), (206, &clip[..10]));
}

/// The URL with one query parameter replaced.
fn with_param(url: &str, key: &str, value: &str) -> String {
    let (path, query) = url.split_once('?').expect("a query");
    let query: Vec<String> =
        query
            .split('&')
            .map(|pair| {
                if pair.starts_with(&format!("{key}=")) { format!("{key}={value}") } else { pair.to_owned() }
            })
            .collect();
    format!("{path}?{}", query.join("&"))
}

#[tokio::test]
async fn a_tampered_or_expired_signature_is_forbidden() {
    let sys = TestSystem::start_with(settings(false).with("MARQUEE_STREAM_URL_TTL_SECONDS", "30")).await;
    let admin = sys.admin_token().await;
    let (movie_id, _) = streamable(&sys, &admin, 3).await;
    let (token, _) = subscriber(&sys, "basic").await;
    let s = start(&sys, &token, &movie_id).await;
    let url = s.body["stream_url"].as_str().expect("url").to_owned();
    assert_eq!(fetch(&sys, &url, &[("range", "bytes=0-0")]).await.0, 206);

    let forged = with_param(&url, "sig", "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA");
    let later = with_param(&url, "expires", "99999999999");
    let (path, query) = url.split_once('?').expect("query");
    let other_object = format!("{}/seg00000.ts?{query}", path.rsplit_once('/').expect("path").0);
    let other_session =
        url.replace(s.body["session_id"].as_str().expect("id"), &uuid::Uuid::now_v7().to_string());
    for bad in [forged, later, other_object, other_session, path.to_owned()] {
        let (status, _, body) = fetch(&sys, &bad, &[]).await;
        let problem: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
        assert_eq!(
            (status, problem["type"].as_str()),
            (403, Some("urn:marquee:problem:bad-stream-url")),
            "{bad}"
        );
    }
    let hostile = url.replace("/media.mp4?", "/..%2F..%2Fidentity.db?");
    let status = fetch(&sys, &hostile, &[]).await.0;
    assert!(matches!(status, 400 | 404), "not an object name: {status}");

    sys.clock.advance(Duration::from_secs(31));
    assert_eq!(crate::beat(&sys, &token, &s.body, 1.0).await.status, 204, "the session itself runs on");
    let (status, _, body) = fetch(&sys, &url, &[]).await;
    let problem: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
    assert_eq!((status, problem["type"].as_str()), (403, Some("urn:marquee:problem:stream-url-expired")));
}

#[tokio::test]
async fn a_stopped_sessions_url_stops_working() {
    let sys = TestSystem::start_with(settings(false)).await;
    let admin = sys.admin_token().await;
    let (movie_id, _) = streamable(&sys, &admin, 3).await;
    let (token, _) = subscriber(&sys, "basic").await;
    let s = start(&sys, &token, &movie_id).await;
    let url = s.body["stream_url"].as_str().expect("url").to_owned();
    assert_eq!(fetch(&sys, &url, &[("range", "bytes=0-0")]).await.0, 206);
    assert_eq!(crate::stop(&sys, &token, &s.body, 1.0).await.status, 204);
    let refused = testkit::eventually(Duration::from_secs(5), || async {
        fetch(&sys, &url, &[("range", "bytes=0-0")]).await.0 == 403
    })
    .await;
    assert!(refused, "a stopped session's URL is refused (within the moment sessions are cached)");
}

#[tokio::test]
async fn an_hls_playlist_has_every_segment_url_signed_and_fetchable() {
    if !have_ffmpeg("an_hls_playlist_has_every_segment_url_signed_and_fetchable") {
        return;
    }
    let sys = TestSystem::start_with(settings(true)).await;
    let admin = sys.admin_token().await;
    let (movie_id, _) = streamable(&sys, &admin, 20).await;
    let (token, _) = subscriber(&sys, "basic").await;
    let s = start(&sys, &token, &movie_id).await;
    assert_eq!(
        (s.body["kind"].as_str(), s.body["duration_seconds"].as_i64()),
        (Some("hls"), Some(20)),
        "{}",
        s.body
    );
    let url = s.body["stream_url"].as_str().expect("url").to_owned();
    assert!(url.contains("/index.m3u8?"), "{url}");
    let (status, headers, body) = fetch(&sys, &url, &[]).await;
    assert_eq!(status, 200);
    assert_eq!(header(&headers, "content-type"), Some("application/vnd.apple.mpegurl"));
    let playlist = String::from_utf8(body).expect("text");
    assert!(playlist.starts_with("#EXTM3U"), "{playlist}");
    let segments: Vec<&str> = playlist.lines().filter(|l| !l.is_empty() && !l.starts_with('#')).collect();
    assert!(segments.len() >= 3, "20 s in 6 s segments: {playlist}");
    let base = url.split_once("/index.m3u8").expect("base").0;
    for segment in &segments {
        assert!(segment.contains("?expires=") && segment.contains("&sig="), "signed: {segment}");
        let (status, headers, body) = fetch(&sys, &format!("{base}/{segment}"), &[]).await;
        assert_eq!(status, 200, "{segment}");
        assert_eq!(header(&headers, "content-type"), Some("video/mp2t"));
        assert_eq!(body.first(), Some(&0x47), "an MPEG-TS packet starts with the sync byte");
    }
    let (name, query) = segments[0].split_once('?').expect("query");
    let foreign =
        format!("{base}/{}?{query}", if name.ends_with("00.ts") { "seg00001.ts" } else { "seg00000.ts" });
    assert_eq!(fetch(&sys, &foreign, &[]).await.0, 403, "a segment's signature is its own");
    let media = sys.get(&format!("/api/v1/media/{movie_id}"), Some(&admin)).await;
    assert_eq!((media.status, media.body["kind"].as_str()), (200, Some("hls")), "{}", media.body);
    let kept: i64 =
        sqlx::query_scalar("SELECT COUNT(*) FROM media_objects WHERE movie_id = $1 AND name = 'media.mp4'")
            .bind(&movie_id)
            .fetch_one(&sys.db("streaming").pool)
            .await
            .expect("query");
    assert_eq!(kept, 1, "the uploaded MP4 is kept beside its packaging");
}

/// A new upload while someone watches: their session keeps the version it started with, a new
/// session gets the new one, and the old version's objects go once nobody plays them.
#[tokio::test]
async fn a_session_keeps_its_media_version_when_the_media_is_replaced() {
    let sys = TestSystem::start_with(settings(false)).await;
    let admin = sys.admin_token().await;
    let (movie_id, first) = streamable(&sys, &admin, 4).await;
    let (token, _) = subscriber(&sys, "standard").await;
    let watching = start(&sys, &token, &movie_id).await;
    let old_url = watching.body["stream_url"].as_str().expect("url").to_owned();
    let second = streaming::clip::mp4("Second cut", 6);
    assert_ne!(first, second);
    assert_eq!(upload(&sys, &admin, &movie_id, "video/mp4", second.clone()).await.status, 200);

    let (status, _, body) = fetch(&sys, &old_url, &[("range", "bytes=0-")]).await;
    assert_eq!((status, body == first), (206, true), "the running session plays what it started");
    let fresh = start(&sys, &token, &movie_id).await;
    assert_eq!(fresh.body["duration_seconds"], 6, "{}", fresh.body);
    let (status, _, body) = fetch(&sys, fresh.body["stream_url"].as_str().expect("url"), &[]).await;
    assert_eq!((status, body == second), (200, true), "a new session plays the new version");

    let objects = sys.storage.dir().join("objects").join("media").join(&movie_id);
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(files(&objects), 2, "both versions are kept while the old one plays");
    assert_eq!(crate::stop(&sys, &token, &watching.body, 1.0).await.status, 204);
    let cleaned = testkit::eventually(Duration::from_secs(5), || async { files(&objects) == 1 }).await;
    assert!(cleaned, "the old version's objects are removed once nobody plays it: {}", files(&objects));
}

#[tokio::test]
async fn uploads_are_for_admins_of_known_movies_and_must_be_what_they_say() {
    let sys = TestSystem::start_with(settings(false).with("MARQUEE_MEDIA_MAX_BYTES", "100000")).await;
    let admin = sys.admin_token().await;
    let id = movie(&sys, &admin, "Uploads").await;
    let clip = streaming::clip::mp4("Uploads", 2);
    let (customer, _) = sys.user_token().await;
    assert_eq!(upload(&sys, &customer, &id, "video/mp4", clip.clone()).await.status, 403);
    let html = upload(&sys, &admin, &id, "text/html", clip.clone()).await;
    assert_eq!(
        (html.status, html.body["type"].as_str()),
        (415, Some("urn:marquee:problem:unsupported-media-type"))
    );
    let fake = upload(&sys, &admin, &id, "video/mp4", b"<html>not a video</html>".to_vec()).await;
    assert_eq!(fake.status, 422, "{}", fake.body);
    assert_eq!(upload(&sys, &admin, &id, "video/mp4", Vec::new()).await.status, 422, "empty");
    let unknown = uuid::Uuid::now_v7().to_string();
    assert_eq!(upload(&sys, &admin, &unknown, "video/mp4", clip.clone()).await.status, 404);
    let big = upload(&sys, &admin, &id, "video/mp4", vec![0; 200_000]).await;
    assert_eq!((big.status, big.body["type"].as_str()), (413, Some("urn:marquee:problem:too-large")));

    let first = upload(&sys, &admin, &id, "video/mp4", clip.clone()).await;
    assert_eq!(first.status, 201, "{}", first.body);
    assert_eq!(first.body["duration_seconds"], 2);
    let again = upload(&sys, &admin, &id, "video/mp4", streaming::clip::mp4("Again", 3)).await;
    assert_eq!(
        (again.status, again.body["duration_seconds"].as_i64()),
        (200, Some(3)),
        "a replacement: {}",
        again.body
    );
    let objects = sys.storage.dir().join("objects").join("media").join(&id);
    // No session plays the first version, so the sweeper removes it at its next pass.
    let cleaned = testkit::eventually(Duration::from_secs(5), || async { files(&objects) == 1 }).await;
    assert!(cleaned, "the replaced version's objects are removed: {} files", files(&objects));
}

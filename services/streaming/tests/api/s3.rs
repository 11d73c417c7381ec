//! Media in S3: the same upload and delivery against a real S3 API (moto's server, started here
//! on a free port), as against the directory.

use std::{process::Stdio, time::Duration};

use testkit::TestSystem;

use crate::{fetch, settings, start, streamable, subscriber};

/// moto's S3 server on a free port, killed on drop.
struct Moto {
    child: std::process::Child,
    url: String,
}

impl Drop for Moto {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// How to run moto: `MARQUEE_TEST_MOTO` (a `moto_server` path, which CI sets from its
/// virtualenv), else `python3 -m moto.server` when python has moto. `None`: skipped, except
/// where `MARQUEE_TEST_MOTO` is set (then it must work).
fn moto_command() -> Option<std::process::Command> {
    if let Ok(path) = std::env::var("MARQUEE_TEST_MOTO") {
        return Some(std::process::Command::new(path));
    }
    let has_moto = std::process::Command::new("python3")
        .args(["-c", "import moto.server"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    has_moto.then(|| {
        let mut c = std::process::Command::new("python3");
        c.args(["-m", "moto.server"]);
        c
    })
}

async fn moto() -> Option<Moto> {
    let mut command = moto_command()?;
    let port = std::net::TcpListener::bind("127.0.0.1:0").ok()?.local_addr().ok()?.port();
    let child = command
        .args(["-H", "127.0.0.1", "-p", &port.to_string()])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("moto's server starts");
    let moto = Moto { child, url: format!("http://127.0.0.1:{port}") };
    let http = reqwest::Client::new();
    let up = testkit::eventually(Duration::from_secs(30), || async {
        http.get(format!("{}/moto-api/", moto.url)).send().await.is_ok()
    })
    .await;
    assert!(up, "moto's server answered on {}", moto.url);
    // An unsigned CreateBucket: moto does not check signatures.
    let made = http.put(format!("{}/marquee-media", moto.url)).send().await.expect("create bucket");
    assert!(made.status().is_success(), "bucket: {}", made.status());
    Some(moto)
}

#[tokio::test]
async fn media_in_s3_streams_like_media_in_a_directory() {
    let Some(moto) = moto().await else {
        eprintln!(
            "SKIPPED media_in_s3_streams_like_media_in_a_directory: no moto (pip install 'moto[server]')"
        );
        return;
    };
    let settings = settings(true)
        .with("MARQUEE_OBJECT_STORE", "s3://marquee-media/test")
        .with("MARQUEE_S3_ENDPOINT", moto.url.clone())
        .with("MARQUEE_S3_REGION", "us-east-1")
        .with("MARQUEE_S3_ACCESS_KEY_ID", "testing")
        .with("MARQUEE_S3_SECRET_ACCESS_KEY", "testing");
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

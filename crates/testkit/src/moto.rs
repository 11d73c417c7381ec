//! moto's S3 server (a real S3 API, from PyPI, offline) on a free port, for tests of the object
//! store: media in streaming, backups.

use std::{process::Stdio, time::Duration};

/// A running moto server, killed on drop.
pub struct Moto {
    child: std::process::Child,
    pub url: String,
}

impl Drop for Moto {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Moto {
    /// Settings that put the object store (or `key`, e.g. `MARQUEE_BACKUP_STORE`) in `bucket`
    /// under `prefix` on this server.
    pub fn settings(
        &self,
        settings: platform::Settings,
        key: &str,
        bucket: &str,
        prefix: &str,
    ) -> platform::Settings {
        settings
            .with(key, format!("s3://{bucket}/{prefix}"))
            .with("MARQUEE_S3_ENDPOINT", self.url.clone())
            .with("MARQUEE_S3_REGION", "us-east-1")
            .with("MARQUEE_S3_ACCESS_KEY_ID", "testing")
            .with("MARQUEE_S3_SECRET_ACCESS_KEY", "testing")
    }
}

/// How to run moto: `MARQUEE_TEST_MOTO` (a `moto_server` path, which CI sets from its
/// virtualenv), else `python3 -m moto.server` when python has moto. `None`: skipped, except
/// where `MARQUEE_TEST_MOTO` is set (then it must work).
fn command() -> Option<std::process::Command> {
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

/// Start moto with `bucket` made; `None` when moto is not installed (and not required).
pub async fn start(bucket: &str) -> Option<Moto> {
    let mut command = command()?;
    let port = std::net::TcpListener::bind("127.0.0.1:0").ok()?.local_addr().ok()?.port();
    let child = command
        .args(["-H", "127.0.0.1", "-p", &port.to_string()])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("moto's server starts");
    let moto = Moto { child, url: format!("http://127.0.0.1:{port}") };
    let http = reqwest::Client::new();
    let up = crate::eventually(Duration::from_secs(30), || async {
        http.get(format!("{}/moto-api/", moto.url)).send().await.is_ok()
    })
    .await;
    assert!(up, "moto's server answered on {}", moto.url);
    // An unsigned CreateBucket: moto does not check signatures.
    let made = http.put(format!("{}/{bucket}", moto.url)).send().await.expect("create bucket");
    assert!(made.status().is_success(), "bucket: {}", made.status());
    Some(moto)
}

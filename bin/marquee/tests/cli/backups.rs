//! `marquee backup create|list|restore` against running systems: back one up, restore it into a
//! second one started on a new data dir, sign in there.

use std::{
    io::{BufRead, BufReader},
    path::Path,
    process::{Command, Output, Stdio},
};

use serde_json::{Value, json};

use crate::{Process, free_port, stop};

const EMAIL: &str = "ops@marquee.test";
const PASSWORD: &str = "ops-password-1";

/// `marquee up --no-demo` with a known admin and the backups in `store`.
fn up(dir: &Path, port: u16, store: &Path) -> Process {
    let mut child = Command::new(env!("CARGO_BIN_EXE_marquee"))
        .args(["up", "--no-demo", "--data-dir"])
        .arg(dir)
        .args(["--port", &port.to_string()])
        .env("MARQUEE_ADMIN_EMAIL", EMAIL)
        .env("MARQUEE_ADMIN_PASSWORD", PASSWORD)
        .env("MARQUEE_BACKUP_STORE", store)
        .env("MARQUEE_LOG", "warn")
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("marquee starts");
    let stdout = child.stdout.take().expect("stdout");
    for line in BufReader::new(stdout).lines() {
        if line.expect("a line").starts_with("Marquee is up") {
            break;
        }
    }
    Process(Some(child))
}

fn backup(port: u16, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_marquee"))
        .arg("backup")
        .args(args)
        .args(["--url", &format!("http://127.0.0.1:{port}"), "--email", EMAIL, "--password", PASSWORD])
        .env("MARQUEE_LOG", "warn")
        .output()
        .expect("marquee backup runs")
}

#[tokio::test]
async fn the_cli_backs_a_system_up_and_restores_it_into_a_new_one() {
    let root = std::env::temp_dir().join(format!("marquee-cli-backup-{}", uuid::Uuid::new_v4().simple()));
    let (first, second, store) = (root.join("first"), root.join("second"), root.join("store"));
    let http = reqwest::Client::builder().pool_max_idle_per_host(0).build().expect("client");
    let port = free_port();
    let source = up(&first, port, &store);
    let base = format!("http://127.0.0.1:{port}");
    let registered = http
        .post(format!("{base}/api/v1/auth/register"))
        .json(&json!({"email": "kept@example.com", "password": "kept-password-1", "name": "Kept"}))
        .send()
        .await
        .expect("sent");
    assert_eq!(registered.status(), 201);

    let created = backup(port, &["create"]);
    let printed = String::from_utf8_lossy(&created.stdout);
    assert!(created.status.success(), "{printed}\n{}", String::from_utf8_lossy(&created.stderr));
    let ended: Value = serde_json::from_str(&printed).expect("the backup as JSON");
    assert_eq!(ended["status"], "complete", "{ended}");
    let progress = String::from_utf8_lossy(&created.stderr);
    assert!(progress.contains("11/11 services"), "a progress line: {progress}");
    let id = ended["id"].as_str().expect("an id").to_owned();
    let listed = backup(port, &["list"]);
    assert!(String::from_utf8_lossy(&listed.stdout).contains(&id), "listed");
    stop(source);

    let port = free_port();
    let target = up(&second, port, &store);
    let restored = backup(port, &["restore", &id]);
    let printed = String::from_utf8_lossy(&restored.stdout);
    assert!(restored.status.success(), "{printed}\n{}", String::from_utf8_lossy(&restored.stderr));
    let login = http
        .post(format!("http://127.0.0.1:{port}/api/v1/auth/login"))
        .json(&json!({"email": "kept@example.com", "password": "kept-password-1"}))
        .send()
        .await
        .expect("sent");
    assert_eq!(login.status(), 200, "the account came back with its password");
    // Once more: the system is no longer empty, and says so.
    let again = backup(port, &["restore", &id]);
    assert!(!again.status.success());
    let said = String::from_utf8_lossy(&again.stderr);
    assert!(said.contains("409") && said.contains("identity"), "{said}");
    stop(target);
    let _ = std::fs::remove_dir_all(&root);
}

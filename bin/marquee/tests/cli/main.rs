//! The `marquee` binary itself: `marquee up` from an empty data dir, and again on the same one.

mod backups;
mod loadtest;
mod replica;

use std::{
    io::{BufRead, BufReader},
    process::{Child, Command, Stdio},
    time::{Duration, Instant},
};

use serde_json::{Value, json};

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port")
}

/// Start `marquee up` and return it with the lines it printed before it was ready.
/// A started marquee process. A test that fails before stopping it must not leave it running,
/// so dropping it kills the process.
struct Process(Option<Child>);

impl Process {
    fn child(&mut self) -> &mut Child {
        self.0.as_mut().expect("the process is running")
    }
}

impl Drop for Process {
    fn drop(&mut self) {
        if let Some(mut child) = self.0.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

fn up(data_dir: &std::path::Path, port: u16) -> (Process, Vec<String>) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_marquee"))
        .args(["up", "--data-dir"])
        .arg(data_dir)
        .args(["--port", &port.to_string()])
        .env_remove("MARQUEE_ADMIN_EMAIL")
        .env_remove("MARQUEE_ADMIN_PASSWORD")
        .env("MARQUEE_LOG", "warn")
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("marquee starts");
    let stdout = child.stdout.take().expect("stdout");
    let mut lines = Vec::new();
    for line in BufReader::new(stdout).lines() {
        let line = line.expect("a line");
        let ready = line.starts_with("Marquee is up");
        lines.push(line);
        if ready {
            // Keep reading the admin line that follows, if any, without blocking on more.
            break;
        }
    }
    (Process(Some(child)), lines)
}

/// SIGTERM, and a clean exit within 15 seconds.
fn stop(mut process: Process) {
    let mut child = process.0.take().expect("the process is running");
    let status = Command::new("kill").args(["-TERM", &child.id().to_string()]).status().expect("kill runs");
    assert!(status.success());
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        if let Some(exit) = child.try_wait().expect("wait") {
            assert!(exit.success(), "marquee exits cleanly on SIGTERM: {exit}");
            return;
        }
        assert!(Instant::now() < deadline, "marquee stops within 15 s of SIGTERM");
        std::thread::sleep(Duration::from_millis(50));
    }
}

async fn get(http: &reqwest::Client, url: String) -> (u16, Value) {
    let res = http.get(url).send().await.expect("sent");
    (res.status().as_u16(), res.json().await.unwrap_or(Value::Null))
}

#[tokio::test]
async fn up_starts_from_an_empty_data_dir_and_restarts_with_users_and_keys_intact() {
    let dir = std::env::temp_dir().join(format!("marquee-cli-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let port = free_port();
    let base = format!("http://127.0.0.1:{port}");
    // No pooled connections: the server goes away between the two runs.
    let http = reqwest::Client::builder().pool_max_idle_per_host(0).build().expect("client");

    let (child, lines) = up(&dir, port);
    assert!(lines.iter().any(|l| l.contains(&base)), "it prints the URL: {lines:?}");
    let (status, health) = get(&http, format!("{base}/health")).await;
    assert_eq!(status, 200, "{health}");
    let register = http
        .post(format!("{base}/api/v1/auth/register"))
        .json(&json!({"email": "keep@example.com", "password": "persistent-1", "name": "Keep"}))
        .send()
        .await
        .expect("sent");
    assert_eq!(register.status(), 201);
    // Without MARQUEE_SMTP_URL the welcome email is a file where the output said.
    let mail_dir = dir.join("mail");
    assert!(
        lines.iter().any(|l| l.contains(&format!("Emails are written to {}", mail_dir.display()))),
        "it says where emails go: {lines:?}"
    );
    let welcome = testkit::eventually(Duration::from_secs(10), || async {
        std::fs::read_dir(&mail_dir).into_iter().flatten().flatten().any(|f| {
            f.path().extension().is_some_and(|e| e == "eml")
                && std::fs::read_to_string(f.path()).is_ok_and(|m| m.contains("To: Keep <keep@example.com>"))
        })
    })
    .await;
    assert!(welcome, "the welcome email is an .eml file in {}", mail_dir.display());
    let (_, jwks_before) = get(&http, format!("{base}/.well-known/jwks.json")).await;
    let (_, movies) = get(&http, format!("{base}/api/v1/movies?per_page=1")).await;
    let demo = movies["total"].as_i64().expect("a total");
    assert!(demo >= 150, "the demo catalog was loaded: {demo} movies");
    let (_, found) = get(&http, format!("{base}/api/v1/movies/search?q=godfathr")).await;
    assert_eq!(found["items"][0]["title"], "The Godfather");
    // Theaters and a week of showtimes follow in the background.
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let (_, shows) = get(&http, format!("{base}/api/v1/showtimes?per_page=1")).await;
        if shows["total"].as_i64().unwrap_or(0) >= 50 {
            break;
        }
        assert!(Instant::now() < deadline, "the demo week of showtimes appeared: {shows}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    stop(child);

    let (child, _) = up(&dir, port);
    let (status, _) = get(&http, format!("{base}/health")).await;
    assert_eq!(status, 200);
    let (_, jwks_after) = get(&http, format!("{base}/.well-known/jwks.json")).await;
    assert_eq!(jwks_before, jwks_after, "the signing keys survived the restart");
    let login = http
        .post(format!("{base}/api/v1/auth/login"))
        .json(&json!({"email": "keep@example.com", "password": "persistent-1"}))
        .send()
        .await
        .expect("sent");
    assert_eq!(login.status(), 200, "the user survived the restart");
    let (_, movies) = get(&http, format!("{base}/api/v1/movies?per_page=1")).await;
    assert_eq!(movies["total"].as_i64(), Some(demo), "the demo catalog is loaded once, not again");
    let (_, theaters) = get(&http, format!("{base}/api/v1/theaters")).await;
    assert_eq!(theaters["total"], 2, "demo theaters are made once");
    stop(child);
    let _ = std::fs::remove_dir_all(&dir);
}

#[tokio::test]
async fn settings_come_from_marquee_toml_and_a_named_file_that_is_missing_is_an_error() {
    let dir = std::env::temp_dir().join(format!("marquee-toml-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("dir");
    let port = free_port();
    std::fs::write(
        dir.join("marquee.toml"),
        format!("port = {port}\ndata_dir = \"{}\"\n", dir.join("data").display()),
    )
    .expect("config written");
    let mut child = Process(Some(
        Command::new(env!("CARGO_BIN_EXE_marquee"))
            .current_dir(&dir)
            .env_remove("MARQUEE_PORT")
            .env_remove("MARQUEE_DATA_DIR")
            .env("MARQUEE_LOG", "warn")
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("marquee starts"),
    ));
    // The line that says where it is up (log lines are JSON, and a library may warn first).
    let first = BufReader::new(child.child().stdout.take().expect("stdout"))
        .lines()
        .map(|line| line.expect("text"))
        .find(|line| line.starts_with("Marquee is up"))
        .expect("a line");
    assert!(first.contains(&format!(":{port}")), "the port came from marquee.toml: {first}");
    assert!(dir.join("data").join("identity.db").exists(), "the data dir came from marquee.toml");
    stop(child);

    // migrate applies a service's migrations and exits.
    let out = Command::new(env!("CARGO_BIN_EXE_marquee"))
        .args(["migrate", "identity", "--data-dir"])
        .arg(dir.join("migrated"))
        .env_remove("MARQUEE_IDENTITY_DATABASE_URL")
        .env_remove("MARQUEE_DATABASE_URL")
        .output()
        .expect("runs");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(dir.join("migrated").join("identity.db").exists());
    // keys rotate adds a signing key to identity's database, each time.
    for _ in 0..2 {
        let out = Command::new(env!("CARGO_BIN_EXE_marquee"))
            .args(["keys", "rotate", "--data-dir"])
            .arg(dir.join("migrated"))
            .env_remove("MARQUEE_IDENTITY_DATABASE_URL")
            .env_remove("MARQUEE_DATABASE_URL")
            .output()
            .expect("runs");
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        assert!(String::from_utf8_lossy(&out.stdout).contains("published now"));
    }
    let db = platform::db::Db::connect(&platform::db::DbConfig::sqlite(&dir.join("migrated"), "identity"))
        .await
        .expect("identity.db");
    let keys: i64 =
        sqlx::query_scalar("SELECT COUNT(*) FROM signing_keys").fetch_one(&db.pool).await.expect("keys");
    assert_eq!(keys, 2);
    db.close().await;
    let unknown =
        Command::new(env!("CARGO_BIN_EXE_marquee")).args(["migrate", "nothing"]).output().expect("runs");
    assert!(!unknown.status.success());

    // A config file that is named but missing is an error, not silently ignored.
    let out = Command::new(env!("CARGO_BIN_EXE_marquee"))
        .args(["migrate", "identity"])
        .current_dir(&dir)
        .env("MARQUEE_CONFIG", dir.join("nope.toml"))
        .output()
        .expect("runs");
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("nope.toml"));
    let _ = std::fs::remove_dir_all(&dir);
}

/// `marquee serve` with the environment a deployment gives it.
fn serve(service: &str, port: u16, env: &[(String, String)]) -> Process {
    let child = Command::new(env!("CARGO_BIN_EXE_marquee"))
        .args(["serve", service, "--port", &port.to_string(), "--bind", "127.0.0.1"])
        .envs(env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
        .env("MARQUEE_LOG", "warn")
        .env("MARQUEE_RELAY_POLL_MS", "100")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("marquee serve starts");
    Process(Some(child))
}

async fn wait_ready(http: &reqwest::Client, url: &str) {
    let deadline = Instant::now() + Duration::from_secs(20);
    while Instant::now() < deadline {
        if http.get(url).send().await.is_ok_and(|r| r.status().is_success()) {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("{url} did not become ready");
}

/// `marquee serve` without a broker would publish into an in-process bus that nobody in the
/// process listens to, and lose every event: it refuses to start instead.
#[tokio::test]
async fn serve_refuses_to_start_without_a_broker() {
    let storage = testkit::Storage::fresh().await.expect("storage");
    let output = Command::new(env!("CARGO_BIN_EXE_marquee"))
        .args(["serve", "identity", "--port", &free_port().to_string(), "--bind", "127.0.0.1"])
        .envs(storage.serve_env("identity"))
        .env_remove("MARQUEE_AMQP_URL")
        .env("MARQUEE_SERVICE_SECRET", "a-shared-secret-for-this-test-only")
        .output()
        .expect("marquee serve runs");
    assert!(!output.status.success(), "it must not start");
    let said = String::from_utf8_lossy(&output.stderr);
    assert!(said.contains("MARQUEE_AMQP_URL"), "it says why: {said}");
}

/// The distributed shape: two identity replicas started together on one empty database, and a
/// gateway, each its own process, on PostgreSQL and RabbitMQ. `marquee serve` needs a broker, so
/// in the embedded test run (no MARQUEE_TEST_AMQP_URL) this test is skipped, and says so.
#[tokio::test]
async fn serve_runs_replicas_and_the_gateway_as_separate_processes() {
    let Some((url, namespace)) = testkit::test_broker().1 else {
        eprintln!(
            "SKIPPED serve_runs_replicas_and_the_gateway_as_separate_processes: needs MARQUEE_TEST_AMQP_URL"
        );
        return;
    };
    let storage = testkit::Storage::fresh().await.expect("storage");
    let mut env = storage.serve_env("identity");
    let secret = "a-shared-secret-for-this-test-only";
    env.push(("MARQUEE_SERVICE_SECRET".into(), secret.into()));
    env.push(("MARQUEE_AMQP_URL".into(), url.clone()));
    env.push(("MARQUEE_AMQP_NAMESPACE".into(), namespace.clone()));
    let rabbit = Some((url, namespace));
    let (p1, p2, pg) = (free_port(), free_port(), free_port());
    let replicas = [serve("identity", p1, &env), serve("identity", p2, &env)];
    let urls = format!("http://127.0.0.1:{p1},http://127.0.0.1:{p2}");
    env.push(("MARQUEE_IDENTITY_URL".into(), urls));
    let gateway = serve("gateway", pg, &env);
    let http = reqwest::Client::builder().pool_max_idle_per_host(0).build().expect("client");
    let base = format!("http://127.0.0.1:{pg}");
    for port in [p1, p2] {
        wait_ready(&http, &format!("http://127.0.0.1:{port}/health/ready")).await;
    }
    wait_ready(&http, &format!("{base}/health")).await;

    let session: Value = http
        .post(format!("{base}/api/v1/auth/register"))
        .json(&json!({"email": "replicated@example.com", "password": "two-of-us-1", "name": "R"}))
        .send()
        .await
        .expect("sent")
        .json()
        .await
        .expect("json");
    let token = session["access_token"].as_str().expect("a token").to_owned();
    // Round robin sends these to both replicas: each accepts the other's tokens.
    for _ in 0..4 {
        let me = http.get(format!("{base}/api/v1/users/me")).bearer_auth(&token).send().await.expect("sent");
        assert_eq!(me.status(), 200);
    }
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        let activity: Value = http
            .get(format!("{base}/api/v1/users/me/activity"))
            .bearer_auth(&token)
            .send()
            .await
            .expect("sent")
            .json()
            .await
            .expect("json");
        if activity["items"].as_array().is_some_and(|i| i.iter().any(|a| a["kind"] == "registered")) {
            break;
        }
        assert!(Instant::now() < deadline, "user.registered reached the activity log: {activity}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    stop(gateway);
    for replica in replicas {
        stop(replica);
    }
    if let Some((url, namespace)) = rabbit {
        testkit::delete_rabbit_namespace(&url, &namespace, &["identity"]);
    }
}

/// The deploy files run every service this build contains, on the registry's ports.
#[test]
fn the_deploy_files_run_every_service_of_the_registry() {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../deploy");
    let read =
        |file: &str| std::fs::read_to_string(root.join(file)).unwrap_or_else(|e| panic!("{file}: {e}"));
    let (compose, k8s, script) =
        (read("compose.yaml"), read("k8s/services.yaml"), read("run-distributed.sh"));
    for name in marquee::services::SERVICES.iter().copied().chain(["gateway"]) {
        let port = marquee::services::default_port(name);
        let command = format!(r#"["serve", "{name}", "--port", "{port}"]"#);
        assert!(compose.contains(&command), "compose.yaml runs {name} on {port}: {command}");
        assert!(k8s.contains(&format!(r#"["serve", "{name}"]"#)), "k8s/services.yaml runs {name}");
        assert!(script.contains(name), "run-distributed.sh starts {name}");
    }
    // Issue 10, item 2: the service secret goes to identity alone; the others get their own
    // credential.
    assert_eq!(compose.matches("MARQUEE_SERVICE_SECRET: $").count(), 1, "compose: identity only");
    assert_eq!(k8s.matches("name: MARQUEE_SERVICE_SECRET").count(), 1, "k8s: identity only");
    assert!(
        !read("k8s/config.yaml").contains("MARQUEE_SERVICE_SECRET:"),
        "not in the Secret every pod reads"
    );
    let others = marquee::services::SERVICES.iter().filter(|s| **s != "identity").count();
    assert_eq!(
        compose.matches("MARQUEE_SERVICE_CREDENTIAL: $").count(),
        others,
        "compose: a credential each"
    );
    assert_eq!(k8s.matches("name: MARQUEE_SERVICE_CREDENTIAL").count(), others, "k8s: a credential each");
}

/// `marquee events redrive` puts a consumer's dead letters back in its queue: here in the
/// embedded mode's data dir (the RabbitMQ side is tested with the bus, in crates/events).
#[tokio::test]
async fn events_redrive_sends_dead_letters_back_to_their_consumer() {
    let dir = std::env::temp_dir().join(format!("marquee-redrive-{}", uuid::Uuid::new_v4().simple()));
    let marquee = |args: &[&str]| {
        Command::new(env!("CARGO_BIN_EXE_marquee"))
            .args(args)
            .env_remove("MARQUEE_AMQP_URL")
            .env_remove("MARQUEE_DATABASE_URL")
            .env("MARQUEE_LOG", "warn")
            .output()
            .expect("marquee runs")
    };
    let dir_arg = dir.to_string_lossy().to_string();
    assert!(marquee(&["migrate", "booking", "--data-dir", &dir_arg]).status.success());
    let db = platform::db::Db::connect(&platform::db::DbConfig::sqlite(&dir, "booking")).await.expect("db");
    sqlx::query(
        "INSERT INTO event_retries (event_id, consumer, event_type, payload, attempts, next_attempt_at, last_error, dead, created_at) \
         VALUES ('e1', 'booking', 'showtime.cancelled', '{}', 5, 0, 'it failed', 1, 0)",
    )
    .execute(&db.pool)
    .await
    .expect("a dead letter");
    let out = marquee(&["events", "redrive", "--service", "booking", "--data-dir", &dir_arg]);
    let said = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success() && said.contains("booking: 1 dead-lettered events sent back"), "{said}");
    let (dead, attempts): (i64, i64) =
        sqlx::query_as("SELECT dead, attempts FROM event_retries WHERE event_id = 'e1'")
            .fetch_one(&db.pool)
            .await
            .expect("row");
    assert_eq!((dead, attempts), (0, 0), "back in the queue, its attempts counted afresh");
    db.close().await;
    let _ = std::fs::remove_dir_all(&dir);
}

/// Issue 10, item 2: the deploy files shipped a placeholder service secret, and whoever holds
/// the secret can act as any service. `marquee serve` refuses a missing, short or placeholder
/// one.
#[tokio::test]
async fn serve_refuses_a_missing_short_or_placeholder_service_secret() {
    let storage = testkit::Storage::fresh().await.expect("storage");
    for secret in [None, Some("short"), Some("change-me-to-a-long-random-string")] {
        let mut command = Command::new(env!("CARGO_BIN_EXE_marquee"));
        command
            .args(["serve", "identity", "--port", &free_port().to_string(), "--bind", "127.0.0.1"])
            .envs(storage.serve_env("identity"))
            .env("MARQUEE_AMQP_URL", "amqp://guest:guest@127.0.0.1:5672/%2f")
            .env_remove("MARQUEE_SERVICE_SECRET");
        if let Some(secret) = secret {
            command.env("MARQUEE_SERVICE_SECRET", secret);
        }
        let output = command.output().expect("marquee serve runs");
        assert!(!output.status.success(), "{secret:?} must be refused");
        let said = String::from_utf8_lossy(&output.stderr);
        assert!(said.contains("MARQUEE_SERVICE_SECRET"), "{secret:?}: it says why: {said}");
    }
    // Other services need their own credential (or the secret to derive it): a short one is refused.
    let output = Command::new(env!("CARGO_BIN_EXE_marquee"))
        .args(["serve", "booking", "--port", &free_port().to_string(), "--bind", "127.0.0.1"])
        .envs(storage.serve_env("booking"))
        .env("MARQUEE_AMQP_URL", "amqp://guest:guest@127.0.0.1:5672/%2f")
        .env_remove("MARQUEE_SERVICE_SECRET")
        .env("MARQUEE_SERVICE_CREDENTIAL", "short")
        .output()
        .expect("marquee serve runs");
    assert!(!output.status.success());
    assert!(String::from_utf8_lossy(&output.stderr).contains("MARQUEE_SERVICE_CREDENTIAL"));
    // `keys service-credential` derives a service's credential from the secret.
    let output = Command::new(env!("CARGO_BIN_EXE_marquee"))
        .args(["keys", "service-credential", "booking"])
        .env("MARQUEE_SERVICE_SECRET", "a-shared-secret-for-this-test-only")
        .output()
        .expect("runs");
    let printed = String::from_utf8_lossy(&output.stdout).trim().to_owned();
    assert_eq!(printed, platform::auth::service_credential("a-shared-secret-for-this-test-only", "booking"));
}

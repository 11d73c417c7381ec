//! Issue 16, target 4: `MARQUEE_<SERVICE>_DATABASE_READ_URL` sends reads that may lag to a
//! PostgreSQL streaming replica, and reads that must see a write to the primary. Tested against
//! a real replica: the test makes a primary cluster with `initdb`, copies it with
//! `pg_basebackup` into a standby that streams from it, and pauses the standby's replay to see
//! which reads went where.

use std::{
    path::{Path, PathBuf},
    process::Command,
    time::{Duration, Instant},
};

use serde_json::Value;

use crate::{free_port, serve, wait_ready};

/// PostgreSQL's server programs, newest version first.
fn pg_bin() -> Option<PathBuf> {
    let mut versions: Vec<PathBuf> =
        std::fs::read_dir("/usr/lib/postgresql").ok()?.flatten().map(|e| e.path()).collect();
    versions.sort();
    versions.into_iter().rev().map(|v| v.join("bin")).find(|b| b.join("initdb").exists())
}

/// A primary and its streaming standby, in a directory of their own; stopped and removed on drop.
struct Pair {
    dir: PathBuf,
    bin: PathBuf,
    primary: u16,
    standby: u16,
}

/// Run a PostgreSQL program as the `postgres` user (the servers refuse to run as root).
fn as_postgres(bin: &Path, program: &str, args: &[&str]) -> Result<(), String> {
    let path = bin.join(program);
    let out = Command::new("runuser")
        .args(["-u", "postgres", "--"])
        .arg(&path)
        .args(args)
        .output()
        .map_err(|e| format!("{program}: {e}"))?;
    if out.status.success() {
        Ok(())
    } else {
        Err(format!("{program} {args:?}: {}", String::from_utf8_lossy(&out.stderr)))
    }
}

impl Pair {
    fn start(bin: PathBuf) -> Result<Self, String> {
        let dir = std::env::temp_dir().join(format!("marquee-replica-{}", uuid::Uuid::new_v4().simple()));
        std::fs::create_dir_all(&dir).map_err(|e| e.to_string())?;
        let chown = Command::new("chown").args(["postgres:postgres"]).arg(&dir).status();
        if !chown.is_ok_and(|s| s.success()) {
            return Err("chown postgres failed".into());
        }
        let pair = Self { dir, bin, primary: free_port(), standby: free_port() };
        let (primary, standby) = (pair.path("primary"), pair.path("standby"));
        // trust: initdb's pg_hba.conf then lets local replication connections in too.
        as_postgres(&pair.bin, "initdb", &["-D", &primary, "-A", "trust", "-U", "postgres", "--no-sync"])?;
        pair.pg_ctl(&primary, pair.primary)?;
        let port = pair.primary.to_string();
        as_postgres(
            &pair.bin,
            "pg_basebackup",
            &["-h", "127.0.0.1", "-p", &port, "-U", "postgres", "-D", &standby, "-R", "-X", "stream"],
        )?;
        pair.pg_ctl(&standby, pair.standby)?;
        Ok(pair)
    }

    fn path(&self, name: &str) -> String {
        self.dir.join(name).display().to_string()
    }

    fn pg_ctl(&self, data: &str, port: u16) -> Result<(), String> {
        let options =
            format!("-p {port} -k {} -c listen_addresses=127.0.0.1 -c fsync=off", self.dir.display());
        let log = format!("{data}.log");
        as_postgres(&self.bin, "pg_ctl", &["-D", data, "-o", &options, "-l", &log, "-w", "start"])
    }

    fn stop(&self, name: &str) -> Result<(), String> {
        as_postgres(&self.bin, "pg_ctl", &["-D", &self.path(name), "-m", "immediate", "-w", "stop"])
    }

    fn url(&self, port: u16) -> String {
        format!("postgres://postgres@127.0.0.1:{port}/postgres")
    }
}

impl Drop for Pair {
    fn drop(&mut self) {
        for name in ["standby", "primary"] {
            let _ = as_postgres(&self.bin, "pg_ctl", &["-D", &self.path(name), "-m", "immediate", "stop"]);
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

async fn titles(http: &reqwest::Client, base: &str) -> Vec<String> {
    let page: Value = http
        .get(format!("{base}/api/v1/movies?per_page=100"))
        .send()
        .await
        .expect("sent")
        .json()
        .await
        .expect("json");
    page["items"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|m| m["title"].as_str().map(str::to_owned))
        .collect()
}

/// The catalog on a primary with a standby: with the standby's replay paused, a movie written to
/// the primary is found by id (a read that must see writes: the primary) but not yet in the list
/// (a read that may lag: the standby); once replay goes on, the list has it too. Then the standby
/// stops: the lists come from the primary within moments, and a catalog started while the
/// standby is down starts and answers them too.
#[tokio::test]
async fn reads_that_may_lag_go_to_the_replica_and_the_rest_to_the_primary() {
    // The embedded test run has no broker, and `marquee serve` needs one: this test belongs to
    // the distributed run, where MARQUEE_TEST_REQUIRE_REPLICA=1 forbids skipping it.
    let Some((amqp, namespace)) = testkit::test_broker().1 else {
        eprintln!(
            "SKIPPED reads_that_may_lag_go_to_the_replica: `marquee serve` needs MARQUEE_TEST_AMQP_URL"
        );
        return;
    };
    let required = std::env::var("MARQUEE_TEST_REQUIRE_REPLICA").is_ok_and(|v| v == "1");
    let pair = match pg_bin().ok_or_else(|| "no PostgreSQL server programs".to_owned()).and_then(Pair::start)
    {
        Ok(pair) => pair,
        Err(why) => {
            assert!(!required, "MARQUEE_TEST_REQUIRE_REPLICA=1 but the replica could not be made: {why}");
            eprintln!("SKIPPED reads_that_may_lag_go_to_the_replica: {why}");
            return;
        }
    };
    let env = vec![
        ("MARQUEE_CATALOG_DATABASE_URL".to_owned(), pair.url(pair.primary)),
        ("MARQUEE_CATALOG_DATABASE_READ_URL".to_owned(), pair.url(pair.standby)),
        ("MARQUEE_SERVICE_SECRET".to_owned(), "a-shared-secret-for-this-test-only".to_owned()),
        ("MARQUEE_AMQP_URL".to_owned(), amqp),
        ("MARQUEE_AMQP_NAMESPACE".to_owned(), namespace),
    ];
    let port = free_port();
    let _catalog = serve("catalog", port, &env);
    let base = format!("http://127.0.0.1:{port}");
    let http = reqwest::Client::new();
    wait_ready(&http, &format!("{base}/health/ready")).await;

    let standby = platform::db::Db::connect(&platform::db::DbConfig::at(pair.url(pair.standby), None, 1))
        .await
        .expect("the standby");
    let paused = sqlx::query("SELECT pg_wal_replay_pause()").execute(&standby.pool).await;
    paused.expect("replay paused");
    let primary = platform::db::Db::connect(&platform::db::DbConfig::at(pair.url(pair.primary), None, 1))
        .await
        .expect("the primary");
    let new_movie = |title: &str| catalog::domain::NewMovie {
        title: title.into(),
        synopsis: "A movie the standby has not replayed yet.".into(),
        genres: vec!["drama".into()],
        runtime_minutes: 95,
        release_date: None,
        director: "R. Eplica".into(),
        cast: Vec::new(),
        poster_url: None,
        featured: false,
        streamable: false,
        imdb_id: None,
    };
    let write = |movie: catalog::domain::NewMovie| {
        let primary = primary.clone();
        async move {
            let mut tx = primary.begin_write().await.expect("a transaction");
            let stored = catalog::store::insert(&mut tx, &movie).await.expect("inserted");
            tx.commit().await.expect("committed");
            stored
        }
    };
    let movie = new_movie("Written While The Replica Waits");
    let stored = write(movie.clone()).await;

    let by_id = http.get(format!("{base}/api/v1/movies/{}", stored.id)).send().await.expect("sent");
    assert_eq!(by_id.status(), 200, "found by id on the primary");
    assert!(!titles(&http, &base).await.contains(&movie.title), "the list comes from the paused standby");

    sqlx::query("SELECT pg_wal_replay_resume()").execute(&standby.pool).await.expect("replay resumed");
    let deadline = Instant::now() + Duration::from_secs(10);
    while !titles(&http, &base).await.contains(&movie.title) {
        assert!(Instant::now() < deadline, "the standby caught up and the list shows the movie");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }

    // The standby goes away: lists fall back to the primary (after at most a check's interval
    // of errors), and show what is written to it now.
    standby.close().await;
    pair.stop("standby").expect("the standby stopped");
    let later = new_movie("Written With The Replica Gone");
    write(later.clone()).await;
    let lists_from_primary = |base: String| {
        let http = http.clone();
        let title = later.title.clone();
        async move {
            let deadline = Instant::now() + Duration::from_secs(15);
            loop {
                let page = http.get(format!("{base}/api/v1/movies?per_page=100")).send().await;
                if let Ok(page) = page
                    && page.status() == 200
                    && page.json::<Value>().await.is_ok_and(|p| {
                        p["items"].as_array().is_some_and(|i| i.iter().any(|m| m["title"] == title.as_str()))
                    })
                {
                    return;
                }
                assert!(Instant::now() < deadline, "the list came from the primary once the standby stopped");
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
    };
    lists_from_primary(base.clone()).await;
    // A catalog that starts while its replica is down starts, and reads from the primary.
    let port = free_port();
    let _second = serve("catalog", port, &env);
    let second = format!("http://127.0.0.1:{port}");
    wait_ready(&http, &format!("{second}/health/ready")).await;
    lists_from_primary(second).await;
    primary.close().await;
}

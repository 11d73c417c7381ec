//! Backup and restore of 1,000,000 rows across services, beside `pg_dump` and `pg_restore` of
//! the same database, in one run: time, MB/s (of the database's size on disk, the same yardstick
//! for both) and peak memory.
//!
//! `MARQUEE_TEST_DATABASE_URL=postgres://postgres@127.0.0.1:5432/test \
//!  MARQUEE_TEST_AMQP_URL=amqp://guest:guest@127.0.0.1:5672/%2f cargo bench -p backup --bench backup`
//! (`MARQUEE_BENCH_ROWS` to change the size). Marquee's peak is the whole system's process (every
//! service, the backup service and the load of PostgreSQL's answers), reset just before each
//! step; pg_dump's and pg_restore's are their own processes'.

use std::{
    process::Command,
    time::{Duration, Instant},
};

use serde_json::{Value, json};
use testkit::TestSystem;

fn main() -> anyhow::Result<()> {
    if !testkit::distributed() {
        println!(
            "backup bench: set MARQUEE_TEST_DATABASE_URL and MARQUEE_TEST_AMQP_URL (it compares with pg_dump)"
        );
        return Ok(());
    }
    let rows: i64 =
        std::env::var("MARQUEE_BENCH_ROWS").ok().and_then(|v| v.parse().ok()).unwrap_or(1_000_000);
    tokio::runtime::Builder::new_multi_thread().enable_all().build()?.block_on(run(rows))
}

/// Peak and current resident memory of this process, in MB.
fn memory() -> (f64, f64) {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    let field = |name: &str| {
        status
            .lines()
            .find(|l| l.starts_with(name))
            .and_then(|l| l.split_whitespace().nth(1))
            .and_then(|kb| kb.parse::<f64>().ok())
            .unwrap_or(0.0)
            / 1024.0
    };
    (field("VmHWM:"), field("VmRSS:"))
}

fn reset_peak() {
    // Linux: "5" resets the peak resident set size to the current one.
    let _ = std::fs::write("/proc/self/clear_refs", "5");
}

/// Run a command under GNU time: seconds and peak RSS (MB).
fn timed(program: &str, args: &[&str]) -> anyhow::Result<(f64, f64)> {
    let started = Instant::now();
    let out = Command::new("/usr/bin/time").arg("-f").arg("%M").arg(program).args(args).output()?;
    let seconds = started.elapsed().as_secs_f64();
    anyhow::ensure!(out.status.success(), "{program}: {}", String::from_utf8_lossy(&out.stderr));
    let stderr = String::from_utf8_lossy(&out.stderr);
    let kb: f64 = stderr.lines().last().and_then(|l| l.trim().parse().ok()).unwrap_or(0.0);
    Ok((seconds, kb / 1024.0))
}

async fn wait(
    sys: &TestSystem,
    admin: &str,
    id: &str,
    done: impl Fn(&Value) -> bool,
) -> anyhow::Result<Value> {
    loop {
        let b = sys.get(&format!("/api/v1/backups/{id}"), Some(admin)).await;
        anyhow::ensure!(b.status == 200, "{}", b.body);
        if done(&b.body) {
            return Ok(b.body);
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

async fn seed(sys: &TestSystem, rows: i64) -> anyhow::Result<()> {
    let (events, notes) = (rows * 4 / 10, rows * 3 / 10);
    let activity = rows - events - notes;
    let t0 = 1_767_225_600_000i64;
    let steps = [
        (
            "analytics",
            format!(
                "INSERT INTO archive SELECT 'e' || g, 'booking.confirmed', {t0} + g, \
             '{{\"specversion\":\"1.0\",\"id\":\"e' || g || '\",\"type\":\"booking.confirmed\",\"source\":\"booking\",\
             \"data\":{{\"booking_id\":\"' || md5(g::text) || '\",\"total_cents\":' || (g % 5000) || ',\"seats\":[\"A1\",\"A2\"]}}}}', \
             {t0} + g FROM generate_series(1, {events}) g"
            ),
        ),
        (
            "notifications",
            format!(
                "INSERT INTO notifications SELECT md5('n' || g), md5('u' || (g % 5000)), 'booking_confirmed', \
             'Your tickets for The Movie', 'Seats A1 and A2, Saturday 20:00, Marquee Riverside. Show this at the door.', \
             '{{\"booking_id\":\"' || md5(g::text) || '\"}}', {t0} + g, NULL FROM generate_series(1, {notes}) g"
            ),
        ),
        (
            "identity",
            format!(
                "INSERT INTO activity SELECT md5('a' || g), md5('u' || (g % 5000)), 'playback_started', md5('m' || (g % 500)), \
             '{{\"position_seconds\":' || (g % 7200) || '}}', {t0} + g FROM generate_series(1, {activity}) g"
            ),
        ),
    ];
    for (service, sql) in steps {
        sqlx::query(sqlx::AssertSqlSafe(sql)).execute(&sys.db(service).pool).await?;
    }
    Ok(())
}

async fn run(rows: i64) -> anyhow::Result<()> {
    let store = std::env::temp_dir().join(format!("marquee-bench-{}", uuid::Uuid::new_v4().simple()));
    let settings = testkit::test_settings().with("MARQUEE_BACKUP_STORE", store.display().to_string());
    let mut source = TestSystem::start_with(settings.clone()).await;
    seed(&source, rows).await?;
    let url = source.db("identity").url().to_owned();
    let size: i64 = sqlx::query_scalar("SELECT pg_database_size(current_database())")
        .fetch_one(&source.db("identity").pool)
        .await?;
    let mb = size as f64 / 1_048_576.0;
    let admin = source.admin_token().await;

    // Marquee's backup.
    let (_, before) = memory();
    reset_peak();
    let started = Instant::now();
    let asked = source.post("/api/v1/backups", json!({}), Some(&admin)).await;
    anyhow::ensure!(asked.status == 202, "{}", asked.body);
    let id = asked.body["id"].as_str().unwrap_or_default().to_owned();
    let done = wait(&source, &admin, &id, |b| b["status"] != "running").await?;
    let backup_s = started.elapsed().as_secs_f64();
    let (backup_peak, _) = memory();
    anyhow::ensure!(done["status"] == "complete", "{done}");
    let written = done["bytes"].as_f64().unwrap_or(0.0) / 1_048_576.0;

    // pg_dump of the same database (every service's schema), compressed, custom format.
    let dump = store.join("pg.dump");
    let (dump_s, dump_peak) = timed("pg_dump", &["-Fc", "-f", &dump.display().to_string(), "-d", &url])?;
    let dump_mb = std::fs::metadata(&dump).map(|m| m.len()).unwrap_or(0) as f64 / 1_048_576.0;
    source.stop().await;

    // Marquee's restore into a fresh system.
    let target = TestSystem::start_with(settings).await;
    let admin = target.admin_token().await;
    let (_, before_restore) = memory();
    reset_peak();
    let started = Instant::now();
    let asked = target.post(&format!("/api/v1/backups/{id}/restore"), json!({}), Some(&admin)).await;
    anyhow::ensure!(asked.status == 202, "{}", asked.body);
    let ended =
        wait(&target, &admin, &id, |b| b["restore"]["status"].as_str().is_some_and(|s| s != "running"))
            .await?;
    let restore_s = started.elapsed().as_secs_f64();
    let (restore_peak, _) = memory();
    anyhow::ensure!(ended["restore"]["status"] == "complete", "{ended}");

    // pg_restore of the dump into a new database.
    let admin_url = std::env::var("MARQUEE_TEST_DATABASE_URL")?;
    let database = format!("marquee_bench_{}", &uuid::Uuid::new_v4().simple().to_string()[..12]);
    let pool = sqlx::AnyPool::connect(&admin_url).await?;
    sqlx::query(sqlx::AssertSqlSafe(format!("CREATE DATABASE {database}"))).execute(&pool).await?;
    let restore_url =
        format!("{}/{database}", admin_url.rsplit_once('/').map_or(admin_url.as_str(), |(base, _)| base));
    let (pg_restore_s, pg_restore_peak) =
        timed("pg_restore", &["-d", &restore_url, &dump.display().to_string()])?;
    sqlx::query(sqlx::AssertSqlSafe(format!("DROP DATABASE {database}"))).execute(&pool).await?;
    let _ = std::fs::remove_dir_all(&store);

    println!("backup bench: {rows} rows across services, database {mb:.1} MB on disk");
    println!("| step | seconds | MB/s of the database | peak RSS MB | written MB |");
    println!("|---|---|---|---|---|");
    println!(
        "| Marquee backup | {backup_s:.2} | {:.1} | {backup_peak:.0} (+{:.0} over the system's {before:.0}) | {written:.1} |",
        mb / backup_s,
        backup_peak - before
    );
    println!("| pg_dump -Fc | {dump_s:.2} | {:.1} | {dump_peak:.0} | {dump_mb:.1} |", mb / dump_s);
    println!(
        "| Marquee restore | {restore_s:.2} | {:.1} | {restore_peak:.0} (+{:.0} over the system's {before_restore:.0}) | |",
        mb / restore_s,
        restore_peak - before_restore
    );
    println!("| pg_restore | {pg_restore_s:.2} | {:.1} | {pg_restore_peak:.0} | |", mb / pg_restore_s);
    println!(
        "ratios: backup {:.2}x pg_dump's speed, restore {:.2}x pg_restore's",
        dump_s / backup_s,
        pg_restore_s / restore_s
    );
    Ok(())
}

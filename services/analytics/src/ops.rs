//! analytics' use cases: the answers, folded from the read models, and the rebuild.

use std::time::Instant;

use contracts::CloudEvent;
use platform::{
    FieldError,
    pagination::{Page, PageRequest},
};
use time::Date;
use uuid::Uuid;

use crate::{
    AppState,
    domain::{
        DAY_MS, Dashboard, INACTIVE_AFTER_DAYS, Interval, MovieMetrics, Occupancy, PlaysPoint, PopularMovie,
        Range, Rebuild, RevenuePoint, Segment, SegmentMember, Segments, SubscriptionPoint, UserBehavior,
        day_start_ms, parse_day, period_of, ratio, rfc3339_opt,
    },
    error::AnalyticsError,
    projection, store,
};

/// What a series is asked for: the days, their periods, the currency.
#[derive(Debug, Clone, Default)]
pub struct SeriesQuery<'a> {
    pub from: Option<&'a str>,
    pub to: Option<&'a str>,
    pub interval: Interval,
    pub currency: Option<&'a str>,
    pub theater_id: Option<Uuid>,
}

pub const DEFAULT_CURRENCY: &str = "USD";

fn currency(asked: Option<&str>) -> Result<String, AnalyticsError> {
    match asked {
        None => Ok(DEFAULT_CURRENCY.to_owned()),
        Some(c) if c.len() == 3 && c.bytes().all(|b| b.is_ascii_uppercase()) => Ok(c.to_owned()),
        Some(_) => Err(AnalyticsError::Invalid(vec![FieldError::new(
            "currency",
            "must be an ISO 4217 code such as USD",
        )])),
    }
}

fn range(state: &AppState, from: Option<&str>, to: Option<&str>) -> Result<Range, AnalyticsError> {
    Range::parse(from, to, state.clock.now().date()).map_err(AnalyticsError::Invalid)
}

/// Sum per-day rows into their periods.
fn fold<const N: usize>(starts: &[Date], rows: &[(String, [i64; N])]) -> Vec<[i64; N]> {
    let mut sums = vec![[0i64; N]; starts.len()];
    for (day, values) in rows {
        if let Some(i) = parse_day(day).and_then(|d| period_of(starts, d)) {
            for (sum, v) in sums[i].iter_mut().zip(values) {
                *sum += v;
            }
        }
    }
    sums
}

pub async fn revenue(state: &AppState, q: SeriesQuery<'_>) -> Result<Vec<RevenuePoint>, AnalyticsError> {
    let range = range(state, q.from, q.to)?;
    let starts = range.periods(q.interval).map_err(AnalyticsError::Invalid)?;
    let currency = currency(q.currency)?;
    let (from, to) = range.days();
    let money = store::money_by_day(&state.db, &currency, (&from, &to), q.theater_id).await?;
    let bookings = store::bookings_by_day(&state.db, &currency, (&from, &to), q.theater_id).await?;
    let money: Vec<_> = money.into_iter().map(|(d, c, r)| (d, [c, r])).collect();
    let bookings: Vec<_> = bookings.into_iter().map(|(d, b, t)| (d, [b, t])).collect();
    let (money, bookings) = (fold(&starts, &money), fold(&starts, &bookings));
    Ok(starts
        .iter()
        .zip(money.iter().zip(&bookings))
        .map(|(start, ([captured, refunded], [bookings, tickets]))| RevenuePoint {
            period_start: start.to_string(),
            revenue_cents: *captured,
            refunds_cents: *refunded,
            net_cents: captured - refunded,
            bookings: *bookings,
            tickets: *tickets,
            currency: currency.clone(),
        })
        .collect())
}

pub async fn plays(state: &AppState, q: SeriesQuery<'_>) -> Result<Vec<PlaysPoint>, AnalyticsError> {
    let range = range(state, q.from, q.to)?;
    let starts = range.periods(q.interval).map_err(AnalyticsError::Invalid)?;
    let (from, to) = range.days();
    let rows: Vec<_> = store::plays_by_day(&state.db, (&from, &to))
        .await?
        .into_iter()
        .map(|(d, p, c)| (d, [p, c]))
        .collect();
    Ok(starts
        .iter()
        .zip(fold(&starts, &rows))
        .map(|(start, [plays, completed])| PlaysPoint { period_start: start.to_string(), plays, completed })
        .collect())
}

/// Active subscriptions at each period's edges, and what started, renewed and was cancelled in
/// it; churn is the share of those active at the start that were cancelled during it.
pub async fn subscriptions(
    state: &AppState,
    q: SeriesQuery<'_>,
) -> Result<Vec<SubscriptionPoint>, AnalyticsError> {
    let range = range(state, q.from, q.to)?;
    let starts = range.periods(q.interval).map_err(AnalyticsError::Invalid)?;
    let now = state.clock.now_ms();
    // Period edges in ms: each start, and the end of the last (capped at now).
    let mut edges: Vec<i64> = starts.iter().map(|d| day_start_ms(*d)).collect();
    let last_end = starts.last().map(|s| day_start_ms(q.interval.next(*s))).unwrap_or(0);
    edges.push(last_end);
    let history = store::subscription_history(&state.db, last_end).await?;
    let n = starts.len();
    let mut active = vec![0i64; n + 1];
    let (mut started, mut renewed, mut cancelled) = (vec![0i64; n], vec![0i64; n], vec![0i64; n]);
    let mut churned = vec![0i64; n];
    let period = |at: i64| edges[..n].partition_point(|e| *e <= at).checked_sub(1);
    let mut i = 0;
    while i < history.len() {
        let sub = &history[i].0;
        let mut j = i;
        while j < history.len() && &history[j].0 == sub {
            j += 1;
        }
        let events = &history[i..j];
        // Whether this subscription was active at each edge, and cancelled in each period (once
        // however many cancellations it had there: a customer's, then a refund's).
        let was_active: Vec<bool> = edges
            .iter()
            .map(|edge| {
                let t = (*edge).min(now);
                let latest = events.iter().rev().find(|(_, _, at, _)| *at <= t);
                latest.is_some_and(|(_, _, _, end)| *end > t)
            })
            .collect();
        let mut cancelled_in = vec![false; n];
        for (k, (_, kind, at, _)) in events.iter().enumerate() {
            if let Some(p) = period(*at) {
                match (kind.as_str(), k) {
                    ("activated", 0) => started[p] += 1,
                    ("activated", _) => renewed[p] += 1,
                    _ => cancelled_in[p] = true,
                }
            }
        }
        for p in 0..n {
            cancelled[p] += i64::from(cancelled_in[p]);
            churned[p] += i64::from(cancelled_in[p] && was_active[p]);
        }
        for (e, on) in was_active.iter().enumerate() {
            active[e] += i64::from(*on);
        }
        i = j;
    }
    Ok((0..n)
        .map(|p| SubscriptionPoint {
            period_start: starts[p].to_string(),
            active_at_start: active[p],
            active_at_end: active[p + 1],
            started: started[p],
            renewed: renewed[p],
            cancelled: cancelled[p],
            churn_rate: (active[p] > 0).then(|| ratio(churned[p], active[p])),
        })
        .collect())
}

pub const DEFAULT_POPULAR: usize = 10;

pub async fn popular(
    state: &AppState,
    from: Option<&str>,
    to: Option<&str>,
    limit: Option<i64>,
) -> Result<Vec<PopularMovie>, AnalyticsError> {
    let range = range(state, from, to)?;
    let limit = match limit {
        None => DEFAULT_POPULAR,
        Some(n @ 1..=100) => n as usize,
        Some(_) => return Err(AnalyticsError::Invalid(vec![FieldError::new("limit", "must be 1 to 100")])),
    };
    popular_in(state, range, limit).await
}

async fn popular_in(
    state: &AppState,
    range: Range,
    limit: usize,
) -> Result<Vec<PopularMovie>, AnalyticsError> {
    let (from, to) = range.days();
    let mut ranked: Vec<(Uuid, i64, i64)> = store::popularity(&state.db, (&from, &to))
        .await?
        .into_iter()
        .map(|(id, (tickets, plays))| (id, tickets, plays))
        .collect();
    ranked.sort_by(|a, b| (b.1 + b.2).cmp(&(a.1 + a.2)).then(b.1.cmp(&a.1)).then(a.0.cmp(&b.0)));
    ranked.truncate(limit);
    let ids: Vec<Uuid> = ranked.iter().map(|r| r.0).collect();
    let titles = store::titles(&state.db, &ids).await?;
    Ok(ranked
        .into_iter()
        .map(|(movie_id, tickets, plays)| PopularMovie {
            movie_id,
            title: titles.get(&movie_id).cloned().unwrap_or_default(),
            tickets,
            plays,
            score: tickets + plays,
        })
        .collect())
}

pub async fn occupancy(
    state: &AppState,
    theater: Option<Uuid>,
    from: Option<&str>,
    to: Option<&str>,
    page: PageRequest,
) -> Result<Page<Occupancy>, AnalyticsError> {
    let range = range(state, from, to)?;
    let (from, to) = range.days();
    let (rows, total) = store::occupancy(&state.db, (&from, &to), theater, page).await?;
    let items = rows
        .into_iter()
        .map(|s| Occupancy {
            showtime_id: s.showtime_id,
            movie_id: s.movie_id,
            title: s.title.unwrap_or_default(),
            theater_id: s.theater_id,
            starts_at: rfc3339_opt(Some(s.starts_at)).unwrap_or_default(),
            status: if s.cancelled { "cancelled" } else { "scheduled" }.to_owned(),
            capacity: s.capacity,
            sold: s.sold,
            occupancy: ratio(s.sold, s.capacity),
        })
        .collect();
    Ok(Page::new(items, page, total))
}

pub async fn dashboard(state: &AppState, asked_currency: Option<&str>) -> Result<Dashboard, AnalyticsError> {
    let currency = currency(asked_currency)?;
    let now = state.clock.now_ms();
    let since = now - 30 * DAY_MS;
    let w = store::window(&state.db, &currency, since, now + 1).await?;
    let today = state.clock.now().date();
    let last_30 = Range { from: today - time::Duration::days(29), to: today };
    Ok(Dashboard {
        revenue_cents_30d: w.captured - w.refunded,
        refunds_cents_30d: w.refunded,
        bookings_30d: w.bookings,
        tickets_sold_30d: w.tickets,
        active_subscriptions: store::active_subscriptions(&state.db, now).await?,
        plays_30d: w.plays,
        top_movies: popular_in(state, last_30, 5).await?,
        average_occupancy: store::average_occupancy(&state.db, since, now + 30 * DAY_MS, None).await?,
        currency,
    })
}

pub async fn movie(state: &AppState, id: Uuid) -> Result<MovieMetrics, AnalyticsError> {
    let facts = store::movie(&state.db, id).await?.ok_or(AnalyticsError::NotFound("movie"))?;
    Ok(MovieMetrics {
        movie_id: id,
        title: facts.title.unwrap_or_default(),
        bookings: facts.bookings,
        tickets: facts.tickets,
        revenue_cents: facts.revenue_cents,
        refunds_cents: facts.refunds_cents,
        showtimes: facts.showtimes,
        average_occupancy: store::average_occupancy(&state.db, i64::MIN, i64::MAX, Some(id)).await?,
        plays: facts.plays,
        completed_plays: facts.completed,
        completion_rate: (facts.ended > 0).then(|| ratio(facts.completed, facts.ended)),
        viewers: facts.viewers,
    })
}

fn inactive_cutoff(state: &AppState) -> i64 {
    state.clock.now_ms() - INACTIVE_AFTER_DAYS * DAY_MS
}

pub async fn user(
    state: &AppState,
    id: Uuid,
    asked_currency: Option<&str>,
) -> Result<UserBehavior, AnalyticsError> {
    let currency = currency(asked_currency)?;
    let facts = store::user(&state.db, id, &currency).await?.ok_or(AnalyticsError::NotFound("user"))?;
    Ok(UserBehavior {
        user_id: id,
        registered_at: rfc3339_opt(facts.registered_at),
        last_active_at: rfc3339_opt(facts.last_active_at),
        bookings: facts.bookings,
        cancelled_bookings: facts.cancelled,
        tickets: facts.tickets,
        spent_cents: facts.spent,
        refunded_cents: facts.refunded,
        net_spend_cents: facts.net_spend,
        currency,
        plays: facts.plays,
        completed_plays: facts.completed,
        segment: Segment::of(facts.net_spend, facts.last_active_at, state.clock.now_ms()),
    })
}

pub async fn segments(state: &AppState, asked_currency: Option<&str>) -> Result<Segments, AnalyticsError> {
    let currency = currency(asked_currency)?;
    let counts = store::segment_counts(&state.db, &currency, inactive_cutoff(state)).await?;
    let n = |s: Segment| counts.get(s.as_str()).copied().unwrap_or(0);
    Ok(Segments {
        vip: n(Segment::Vip),
        regular: n(Segment::Regular),
        casual: n(Segment::Casual),
        inactive: n(Segment::Inactive),
        currency,
    })
}

pub async fn members(
    state: &AppState,
    segment: Option<Segment>,
    asked_currency: Option<&str>,
    page: PageRequest,
) -> Result<Page<SegmentMember>, AnalyticsError> {
    let currency = currency(asked_currency)?;
    let (rows, total) = store::segment_members(
        &state.db,
        &currency,
        inactive_cutoff(state),
        segment.map(Segment::as_str),
        page,
    )
    .await?;
    let items = rows
        .into_iter()
        .map(|(user_id, segment, net_spend_cents, last_active_at)| SegmentMember {
            user_id,
            segment: match segment.as_str() {
                "vip" => Segment::Vip,
                "regular" => Segment::Regular,
                "casual" => Segment::Casual,
                _ => Segment::Inactive,
            },
            net_spend_cents,
            last_active_at,
        })
        .collect();
    Ok(Page::new(items, page, total))
}

/// How many archived events a rebuild reads at a time.
const REPLAY_BATCH: i64 = 500;
/// A rebuild "running" for longer than this was cut off by a stop (its transaction rolled back).
const REBUILD_GIVE_UP_MS: i64 = 3600 * 1000;

/// Start a rebuild in the background; 409 while one is running. Its progress is at
/// `GET /analytics/rebuilds/{id}`: a rebuild outlasts any request's timeout once the archive
/// is large.
pub async fn start_rebuild(state: &AppState) -> Result<Rebuild, AnalyticsError> {
    let now = state.clock.now_ms();
    store::fail_interrupted_rebuilds(&state.db, now - REBUILD_GIVE_UP_MS, now).await?;
    if let Some(id) = store::running_rebuild(&state.db, now - REBUILD_GIVE_UP_MS).await? {
        return Err(AnalyticsError::RebuildRunning(id));
    }
    let id = Uuid::now_v7();
    store::insert_rebuild(&state.db, id, now).await?;
    let background = state.clone();
    tokio::spawn(async move {
        let outcome = replay(&background).await.map_err(|e| format!("{e:#}"));
        if let Err(e) = &outcome {
            tracing::error!(rebuild_id = %id, error = %e, "analytics rebuild failed");
        }
        let now = background.clock.now_ms();
        if let Err(e) = store::finish_rebuild(&background.db, id, outcome, now).await {
            tracing::error!(rebuild_id = %id, error = format!("{e:#}"), "recording the rebuild's end failed");
        }
    });
    rebuild(state, id).await
}

pub async fn rebuild(state: &AppState, id: Uuid) -> Result<Rebuild, AnalyticsError> {
    store::rebuild(&state.db, id).await?.ok_or(AnalyticsError::NotFound("rebuild"))
}

/// Empty every read model and replay the archive into them, in one transaction: readers see
/// the old numbers until it commits, then the new ones, never a half-built state, and no new
/// event is applied meanwhile (it waits for the archive's lock and is applied after). The
/// events replayed and how long it took.
pub async fn replay(state: &AppState) -> anyhow::Result<(i64, i64)> {
    let started = Instant::now();
    let mut tx = state.db.begin_write().await?;
    store::lock_archive(&state.db, &mut tx, store::ArchiveLock::Rebuild).await?;
    store::clear_read_models(&mut tx).await?;
    let (mut after, mut events) = (String::new(), 0i64);
    loop {
        let batch = store::archived_after(&mut tx, &after, REPLAY_BATCH).await?;
        let Some((last, _)) = batch.last() else { break };
        after = last.clone();
        for (_, payload) in &batch {
            let event: CloudEvent = serde_json::from_str(payload)?;
            projection::apply(&mut tx, &event).await?;
            events += 1;
        }
    }
    tx.commit().await?;
    let took_ms = started.elapsed().as_millis() as i64;
    tracing::info!(events, took_ms, "analytics rebuilt from its archive");
    Ok((events, took_ms))
}

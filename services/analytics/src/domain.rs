//! What analytics answers with, and the rules behind it: date ranges and their periods, the
//! spend segments, and the CSV form of each list.

use platform::FieldError;
use serde::Serialize;
use time::{Date, Duration, Month};
use utoipa::ToSchema;
use uuid::Uuid;

/// The longest series answered, in periods: a range longer than this asks for `week` or `month`.
pub const MAX_PERIODS: usize = 1000;
/// The range when none is given: the last 30 days, today included.
pub const DEFAULT_DAYS: i64 = 30;
/// Net spend, in minor units, at which a customer is `vip` (200.00) and `regular` (50.00).
pub const VIP_CENTS: i64 = 20_000;
pub const REGULAR_CENTS: i64 = 5_000;
/// A customer seen doing nothing (no booking, payment or play) for this long is `inactive`.
pub const INACTIVE_AFTER_DAYS: i64 = 90;
pub const DAY_MS: i64 = 24 * 3600 * 1000;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum Interval {
    #[default]
    Day,
    /// Weeks start on Monday (ISO 8601).
    Week,
    Month,
}

impl Interval {
    /// The first day of the period that holds `day`.
    pub fn start_of(self, day: Date) -> Date {
        match self {
            Interval::Day => day,
            Interval::Week => day - Duration::days(i64::from(day.weekday().number_days_from_monday())),
            Interval::Month => day.replace_day(1).unwrap_or(day),
        }
    }

    /// The first day of the period after the one starting on `start`.
    pub fn next(self, start: Date) -> Date {
        match self {
            Interval::Day => start + Duration::days(1),
            Interval::Week => start + Duration::days(7),
            Interval::Month => {
                let (year, month) = if start.month() == Month::December {
                    (start.year() + 1, Month::January)
                } else {
                    (start.year(), start.month().next())
                };
                Date::from_calendar_date(year, month, 1).unwrap_or(start + Duration::days(31))
            }
        }
    }
}

/// An inclusive range of days, `from` to `to`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Range {
    pub from: Date,
    pub to: Date,
}

impl Range {
    /// From the query's `from` and `to` (`YYYY-MM-DD`); missing ends default to the last
    /// [`DEFAULT_DAYS`] days up to `today`.
    pub fn parse(from: Option<&str>, to: Option<&str>, today: Date) -> Result<Range, Vec<FieldError>> {
        let mut errors = Vec::new();
        let mut day = |field: &str, value: Option<&str>| match value.map(parse_day) {
            None => None,
            Some(Some(d)) if (2000..=2100).contains(&d.year()) => Some(d),
            Some(_) => {
                errors.push(FieldError::new(field, "must be a date from 2000-01-01 to 2100-12-31"));
                None
            }
        };
        let (from, to) = (day("from", from), day("to", to));
        if !errors.is_empty() {
            return Err(errors);
        }
        let to = to.unwrap_or(today);
        let from = from.unwrap_or(to - Duration::days(DEFAULT_DAYS - 1));
        if from > to {
            return Err(vec![FieldError::new("from", "must not be after to")]);
        }
        Ok(Range { from, to })
    }

    /// `YYYY-MM-DD` of each end, as the read models store days.
    pub fn days(&self) -> (String, String) {
        (self.from.to_string(), self.to.to_string())
    }

    /// The start of each period touching the range, oldest first.
    pub fn periods(&self, interval: Interval) -> Result<Vec<Date>, Vec<FieldError>> {
        let mut starts = Vec::new();
        let mut start = interval.start_of(self.from);
        while start <= self.to {
            if starts.len() == MAX_PERIODS {
                return Err(vec![FieldError::new(
                    "to",
                    format!("the range holds more than {MAX_PERIODS} periods; ask for a longer interval"),
                )]);
            }
            starts.push(start);
            start = interval.next(start);
        }
        Ok(starts)
    }
}

pub fn parse_day(s: &str) -> Option<Date> {
    Date::parse(s, time::macros::format_description!("[year]-[month]-[day]")).ok()
}

pub fn day_start_ms(day: Date) -> i64 {
    platform::time::to_ms(day.midnight().assume_utc())
}

pub fn utc_day(ms: i64) -> String {
    platform::time::from_ms(ms).date().to_string()
}

/// Which period of `starts` (sorted) a day belongs to.
pub fn period_of(starts: &[Date], day: Date) -> Option<usize> {
    match starts.binary_search(&day) {
        Ok(i) => Some(i),
        Err(0) => None,
        Err(i) => Some(i - 1),
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, serde::Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum Segment {
    /// Net spend of 200.00 or more.
    Vip,
    /// 50.00 to 200.00.
    Regular,
    /// Under 50.00.
    Casual,
    /// Nothing booked, paid or played for 90 days.
    Inactive,
}

impl Segment {
    pub fn as_str(self) -> &'static str {
        match self {
            Segment::Vip => "vip",
            Segment::Regular => "regular",
            Segment::Casual => "casual",
            Segment::Inactive => "inactive",
        }
    }

    pub fn of(net_spend_cents: i64, last_active_at: Option<i64>, now_ms: i64) -> Segment {
        match last_active_at {
            Some(at) if at >= now_ms - INACTIVE_AFTER_DAYS * DAY_MS => {}
            _ => return Segment::Inactive,
        }
        if net_spend_cents >= VIP_CENTS {
            Segment::Vip
        } else if net_spend_cents >= REGULAR_CENTS {
            Segment::Regular
        } else {
            Segment::Casual
        }
    }
}

fn rfc3339(ms: i64) -> String {
    platform::time::from_ms(ms).format(&time::format_description::well_known::Rfc3339).unwrap_or_default()
}

pub fn rfc3339_opt(ms: Option<i64>) -> Option<String> {
    ms.map(rfc3339)
}

/// Occupied share: sold ÷ capacity, 0 for a room without seats.
pub fn ratio(part: i64, whole: i64) -> f64 {
    if whole > 0 { part as f64 / whole as f64 } else { 0.0 }
}

/// One period of `GET /analytics/revenue`.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct RevenuePoint {
    /// `YYYY-MM-DD`, on each theater's clock.
    pub period_start: String,
    /// Captured in the period.
    pub revenue_cents: i64,
    /// Refunded in the period.
    pub refunds_cents: i64,
    pub net_cents: i64,
    /// Bookings confirmed in the period.
    pub bookings: i64,
    /// Their tickets.
    pub tickets: i64,
    pub currency: String,
}

/// One period of `GET /analytics/plays`.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct PlaysPoint {
    /// `YYYY-MM-DD` (UTC).
    pub period_start: String,
    /// Playback sessions started.
    pub plays: i64,
    /// Of those, watched past 90 %.
    pub completed: i64,
}

/// One period of `GET /analytics/subscriptions`.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct SubscriptionPoint {
    /// `YYYY-MM-DD` (UTC).
    pub period_start: String,
    /// Active when the period began.
    pub active_at_start: i64,
    /// Active when it ended (now, for the period under way).
    pub active_at_end: i64,
    /// Subscriptions whose first activation fell in the period.
    pub started: i64,
    /// Renewals paid in the period.
    pub renewed: i64,
    /// Subscriptions cancelled in the period (at the customer's request, by a refund or a failed
    /// renewal), each once.
    pub cancelled: i64,
    /// Of those active at the start, the share cancelled during the period; null when none were
    /// active.
    pub churn_rate: Option<f64>,
}

/// A movie of `GET /analytics/popular-movies`.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct PopularMovie {
    pub movie_id: Uuid,
    pub title: String,
    /// Tickets of confirmed bookings not since cancelled.
    pub tickets: i64,
    /// Playback sessions.
    pub plays: i64,
    /// `tickets + plays`: the order of the list.
    pub score: i64,
}

/// A showtime of `GET /analytics/occupancy`.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct Occupancy {
    pub showtime_id: Uuid,
    pub movie_id: Uuid,
    pub title: String,
    pub theater_id: Uuid,
    pub starts_at: String,
    /// `scheduled` or `cancelled`.
    pub status: String,
    pub capacity: i64,
    /// Seats of confirmed bookings not since cancelled.
    pub sold: i64,
    /// `sold ÷ capacity`, 0 to 1.
    pub occupancy: f64,
}

/// `GET /analytics/movies/{id}`.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct MovieMetrics {
    pub movie_id: Uuid,
    pub title: String,
    pub bookings: i64,
    pub tickets: i64,
    /// What its confirmed bookings paid, and what of it was refunded.
    pub revenue_cents: i64,
    pub refunds_cents: i64,
    pub showtimes: i64,
    /// Mean occupancy of its showtimes that were not cancelled (null: none).
    pub average_occupancy: Option<f64>,
    pub plays: i64,
    pub completed_plays: i64,
    /// Completed ÷ ended sessions (null: none ended).
    pub completion_rate: Option<f64>,
    /// Distinct users who played it.
    pub viewers: i64,
}

/// `GET /analytics/users/{id}/behavior`.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct UserBehavior {
    pub user_id: Uuid,
    pub registered_at: Option<String>,
    pub last_active_at: Option<String>,
    pub bookings: i64,
    pub cancelled_bookings: i64,
    pub tickets: i64,
    /// Captured from the user (tickets and subscriptions), refunded, and the difference.
    pub spent_cents: i64,
    pub refunded_cents: i64,
    pub net_spend_cents: i64,
    pub currency: String,
    pub plays: i64,
    pub completed_plays: i64,
    pub segment: Segment,
}

/// A customer of `GET /analytics/users`.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct SegmentMember {
    pub user_id: Uuid,
    pub segment: Segment,
    pub net_spend_cents: i64,
    pub last_active_at: Option<String>,
}

/// `GET /analytics/segments`: how many customers are in each.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct Segments {
    pub vip: i64,
    pub regular: i64,
    pub casual: i64,
    pub inactive: i64,
    pub currency: String,
}

/// `GET /analytics/dashboard`.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct Dashboard {
    /// Captured less refunded in the last 30 days.
    pub revenue_cents_30d: i64,
    pub refunds_cents_30d: i64,
    pub bookings_30d: i64,
    pub tickets_sold_30d: i64,
    pub active_subscriptions: i64,
    pub plays_30d: i64,
    /// The five most popular movies of the last 30 days.
    pub top_movies: Vec<PopularMovie>,
    /// Mean occupancy of the showtimes of the last and the next 30 days (null: none).
    pub average_occupancy: Option<f64>,
    pub currency: String,
}

/// A rebuild: `POST /analytics/rebuild` starts one, `GET /analytics/rebuilds/{id}` follows it.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct Rebuild {
    pub id: Uuid,
    /// `running`, `done` or `failed`.
    pub status: String,
    /// Archived events replayed (when done).
    pub events: i64,
    pub took_ms: i64,
    pub error: Option<String>,
    pub started_at: String,
    pub finished_at: Option<String>,
}

/// A list row as CSV: the header names and the cells, in the same order.
pub trait CsvRow {
    const HEADER: &'static [&'static str];
    fn cells(&self) -> Vec<String>;
}

impl CsvRow for RevenuePoint {
    const HEADER: &'static [&'static str] =
        &["period_start", "revenue_cents", "refunds_cents", "net_cents", "bookings", "tickets", "currency"];
    fn cells(&self) -> Vec<String> {
        vec![
            self.period_start.clone(),
            self.revenue_cents.to_string(),
            self.refunds_cents.to_string(),
            self.net_cents.to_string(),
            self.bookings.to_string(),
            self.tickets.to_string(),
            self.currency.clone(),
        ]
    }
}

impl CsvRow for PlaysPoint {
    const HEADER: &'static [&'static str] = &["period_start", "plays", "completed"];
    fn cells(&self) -> Vec<String> {
        vec![self.period_start.clone(), self.plays.to_string(), self.completed.to_string()]
    }
}

impl CsvRow for SubscriptionPoint {
    const HEADER: &'static [&'static str] = &[
        "period_start",
        "active_at_start",
        "active_at_end",
        "started",
        "renewed",
        "cancelled",
        "churn_rate",
    ];
    fn cells(&self) -> Vec<String> {
        vec![
            self.period_start.clone(),
            self.active_at_start.to_string(),
            self.active_at_end.to_string(),
            self.started.to_string(),
            self.renewed.to_string(),
            self.cancelled.to_string(),
            self.churn_rate.map(|r| format!("{r:.4}")).unwrap_or_default(),
        ]
    }
}

impl CsvRow for PopularMovie {
    const HEADER: &'static [&'static str] = &["movie_id", "title", "tickets", "plays", "score"];
    fn cells(&self) -> Vec<String> {
        vec![
            self.movie_id.to_string(),
            self.title.clone(),
            self.tickets.to_string(),
            self.plays.to_string(),
            self.score.to_string(),
        ]
    }
}

impl CsvRow for Occupancy {
    const HEADER: &'static [&'static str] = &[
        "showtime_id",
        "movie_id",
        "title",
        "theater_id",
        "starts_at",
        "status",
        "capacity",
        "sold",
        "occupancy",
    ];
    fn cells(&self) -> Vec<String> {
        vec![
            self.showtime_id.to_string(),
            self.movie_id.to_string(),
            self.title.clone(),
            self.theater_id.to_string(),
            self.starts_at.clone(),
            self.status.clone(),
            self.capacity.to_string(),
            self.sold.to_string(),
            format!("{:.4}", self.occupancy),
        ]
    }
}

impl CsvRow for SegmentMember {
    const HEADER: &'static [&'static str] = &["user_id", "segment", "net_spend_cents", "last_active_at"];
    fn cells(&self) -> Vec<String> {
        vec![
            self.user_id.to_string(),
            self.segment.as_str().to_owned(),
            self.net_spend_cents.to_string(),
            self.last_active_at.clone().unwrap_or_default(),
        ]
    }
}

/// RFC 4180 CSV: a header line, then one line per row, CRLF line ends; a cell with a comma, a
/// quote or a line break is quoted, its quotes doubled. A cell that a spreadsheet would run as a
/// formula (`=`, `+`, `-`, `@` first) is prefixed with `'` (OWASP's CSV injection advice):
/// titles come from admins, and an export is opened by someone else.
pub fn to_csv<R: CsvRow>(rows: &[R]) -> String {
    let mut out = String::new();
    let mut line = |cells: &mut dyn Iterator<Item = String>| {
        let mut first = true;
        for cell in cells {
            if !first {
                out.push(',');
            }
            first = false;
            out.push_str(&csv_cell(&cell));
        }
        out.push_str("\r\n");
    };
    line(&mut R::HEADER.iter().map(|h| (*h).to_owned()));
    for row in rows {
        line(&mut row.cells().into_iter());
    }
    out
}

fn csv_cell(cell: &str) -> String {
    let numeric = cell.parse::<f64>().is_ok();
    let cell = if !numeric && cell.starts_with(['=', '+', '-', '@', '\t', '\r']) {
        format!("'{cell}")
    } else {
        cell.to_owned()
    };
    if cell.contains([',', '"', '\n', '\r']) { format!("\"{}\"", cell.replace('"', "\"\"")) } else { cell }
}

#[cfg(test)]
mod tests {
    use time::macros::date;

    use super::*;

    #[test]
    fn periods_start_on_the_day_the_monday_and_the_first_of_the_month() {
        let range = Range { from: date!(2026 - 11 - 28), to: date!(2026 - 12 - 02) };
        assert_eq!(range.periods(Interval::Day).expect("ok").len(), 5);
        assert_eq!(
            range.periods(Interval::Week).expect("ok"),
            vec![date!(2026 - 11 - 23), date!(2026 - 11 - 30)]
        );
        assert_eq!(
            range.periods(Interval::Month).expect("ok"),
            vec![date!(2026 - 11 - 01), date!(2026 - 12 - 01)]
        );
        let year = Range { from: date!(2026 - 01 - 15), to: date!(2027 - 01 - 01) };
        assert_eq!(year.periods(Interval::Month).expect("ok").len(), 13);
        assert_eq!(period_of(&year.periods(Interval::Month).expect("ok"), date!(2026 - 12 - 31)), Some(11));
    }

    #[test]
    fn a_range_is_checked_and_bounded() {
        let today = date!(2026 - 12 - 02);
        let default = Range::parse(None, None, today).expect("ok");
        assert_eq!((default.from, default.to), (date!(2026 - 11 - 03), today));
        assert!(Range::parse(Some("2026-12-03"), Some("2026-12-02"), today).is_err());
        assert!(Range::parse(Some("yesterday"), None, today).is_err());
        assert!(Range::parse(Some("1999-12-31"), None, today).is_err(), "the years the schema states");
        let long = Range::parse(Some("2000-01-01"), Some("2100-12-31"), today).expect("ok");
        assert!(long.periods(Interval::Day).is_err());
        assert!(long.periods(Interval::Month).is_err(), "1,212 months");
        let decades = Range::parse(Some("2000-01-01"), Some("2083-01-01"), today).expect("ok");
        assert_eq!(decades.periods(Interval::Month).expect("997 months").len(), 997);
    }

    #[test]
    fn segments_follow_spend_and_activity() {
        let now = 1_000 * DAY_MS;
        let recent = Some(now - DAY_MS);
        assert_eq!(Segment::of(20_000, recent, now), Segment::Vip);
        assert_eq!(Segment::of(19_999, recent, now), Segment::Regular);
        assert_eq!(Segment::of(5_000, recent, now), Segment::Regular);
        assert_eq!(Segment::of(4_999, recent, now), Segment::Casual);
        assert_eq!(Segment::of(50_000, Some(now - 91 * DAY_MS), now), Segment::Inactive);
        assert_eq!(Segment::of(0, None, now), Segment::Inactive);
    }

    #[test]
    fn csv_quotes_what_needs_it_and_defuses_formulas() {
        let rows = vec![PopularMovie {
            movie_id: Uuid::nil(),
            title: "=HYPERLINK(\"x\"), part 2".into(),
            tickets: -1,
            plays: 2,
            score: 1,
        }];
        let csv = to_csv(&rows);
        let lines: Vec<&str> = csv.split("\r\n").collect();
        assert_eq!(lines[0], "movie_id,title,tickets,plays,score");
        assert_eq!(
            lines[1],
            "00000000-0000-0000-0000-000000000000,\"'=HYPERLINK(\"\"x\"\"), part 2\",-1,2,1"
        );
    }
}

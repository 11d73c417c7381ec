//! `marquee check ledger`: does a running deployment's money agree with its bookings?
//!
//! Read through the public API with an admin token, so it checks what customers and the door
//! see, on any deployment:
//! - every booking holds, across the payments filed under it, captured − refunded equal to its
//!   total while it is confirmed and 0 otherwise, and a confirmed booking's payment is one of them;
//! - every sold seat belongs to exactly one confirmed booking (no two confirmed bookings share a
//!   seat, and the seat map shows exactly the confirmed seats as booked);
//! - no ticket of a booking that is not confirmed lets anyone in;
//! - every subscription period keeps at most one capture;
//! - no payment for a booking that does not exist keeps money.
//!
//! Bookings still `held` or `charging` are in flight: they are counted, and a capture they hold
//! is reported (run the check once traffic has stopped and holds have settled).

use std::collections::{BTreeMap, BTreeSet, HashMap};

use anyhow::Context;
use serde_json::Value;

/// What the check found.
#[derive(Debug, Clone, Default)]
pub struct LedgerReport {
    pub bookings: usize,
    pub confirmed: usize,
    pub in_flight: usize,
    pub payments: usize,
    pub captured_cents: i64,
    pub refunded_cents: i64,
    pub tickets_checked: usize,
    /// Each broken invariant, in words.
    pub violations: Vec<String>,
}

impl LedgerReport {
    pub fn is_clean(&self) -> bool {
        self.violations.is_empty()
    }

    pub fn summary(&self) -> String {
        let verdict = if self.is_clean() {
            "clean".to_owned()
        } else {
            format!("{} violations", self.violations.len())
        };
        format!(
            "ledger {verdict}: {} bookings ({} confirmed, {} in flight), {} payments, {} cents captured, {} refunded, {} tickets checked",
            self.bookings,
            self.confirmed,
            self.in_flight,
            self.payments,
            self.captured_cents,
            self.refunded_cents,
            self.tickets_checked
        )
    }
}

async fn get(http: &reqwest::Client, url: &str, token: &str) -> anyhow::Result<Value> {
    let response = http.get(url).bearer_auth(token).send().await.with_context(|| format!("GET {url}"))?;
    let status = response.status();
    let body: Value = response.json().await.unwrap_or(Value::Null);
    anyhow::ensure!(status.is_success(), "GET {url}: {status} {body}");
    Ok(body)
}

/// Every item of a paged list.
async fn all(http: &reqwest::Client, base: &str, path: &str, token: &str) -> anyhow::Result<Vec<Value>> {
    let mut items = Vec::new();
    for page in 1.. {
        let body = get(http, &format!("{base}{path}?page={page}&per_page=100"), token).await?;
        let batch = body["items"].as_array().context("a page without items")?;
        items.extend(batch.iter().cloned());
        let total = body["total"].as_u64().unwrap_or(0) as usize;
        if batch.is_empty() || items.len() >= total {
            break;
        }
    }
    Ok(items)
}

/// The seats of a seat map (`GET /showtimes/{id}/seats`) in `status` (`available`, `held`,
/// `booked`).
pub fn seats_with_status(map: &Value, status: &str) -> Vec<String> {
    map["rows"]
        .as_array()
        .into_iter()
        .flatten()
        .flat_map(|r| r["seats"].as_array().cloned().unwrap_or_default())
        .filter(|s| s["status"] == status)
        .filter_map(|s| s["seat"].as_str().map(str::to_owned))
        .collect()
}

fn held(payment: &Value) -> i64 {
    if payment["status"] == "succeeded" {
        payment["amount_cents"].as_i64().unwrap_or(0) - payment["refunded_cents"].as_i64().unwrap_or(0)
    } else {
        0
    }
}

/// An admin's access token for `base`, from an email and password.
pub async fn admin_token(
    http: &reqwest::Client,
    base: &str,
    email: &str,
    password: &str,
) -> anyhow::Result<String> {
    let url = format!("{}/api/v1/auth/login", base.trim_end_matches('/'));
    let response = http
        .post(&url)
        .json(&serde_json::json!({"email": email, "password": password}))
        .send()
        .await
        .with_context(|| format!("POST {url}"))?;
    let status = response.status();
    let body: Value = response.json().await.unwrap_or(Value::Null);
    anyhow::ensure!(status.is_success(), "signing in as {email}: {status} {body}");
    Ok(body["access_token"].as_str().context("no access token")?.to_owned())
}

/// Check the deployment at `base` (the gateway) with an admin's access token.
pub async fn check(http: &reqwest::Client, base: &str, admin_token: &str) -> anyhow::Result<LedgerReport> {
    let base = base.trim_end_matches('/');
    let bookings = all(http, base, "/api/v1/bookings", admin_token).await?;
    let payments = all(http, base, "/api/v1/payments", admin_token).await?;
    let mut report =
        LedgerReport { bookings: bookings.len(), payments: payments.len(), ..Default::default() };
    let mut by_reference: HashMap<String, Vec<&Value>> = HashMap::new();
    for p in &payments {
        if p["status"] == "succeeded" {
            report.captured_cents += p["amount_cents"].as_i64().unwrap_or(0);
            report.refunded_cents += p["refunded_cents"].as_i64().unwrap_or(0);
        }
        by_reference.entry(p["reference"].as_str().unwrap_or_default().to_owned()).or_default().push(p);
    }

    // Money per booking.
    let mut booking_refs = BTreeSet::new();
    let mut sold: BTreeMap<String, BTreeMap<String, String>> = BTreeMap::new(); // showtime -> seat -> booking
    for b in &bookings {
        let id = b["id"].as_str().unwrap_or_default();
        let status = b["status"].as_str().unwrap_or_default();
        let reference = id.parse().map(contracts::payments::booking_reference).unwrap_or_default();
        let of_booking = by_reference.get(&reference).cloned().unwrap_or_default();
        let holds: i64 = of_booking.iter().map(|p| held(p)).sum();
        booking_refs.insert(reference);
        let total = b["total_cents"].as_i64().unwrap_or(0);
        match status {
            "confirmed" => {
                report.confirmed += 1;
                if holds != total {
                    report
                        .violations
                        .push(format!("confirmed booking {id} holds {holds} cents, not its total {total}"));
                }
                let paid_by = b["payment_id"].as_str();
                if !of_booking.iter().any(|p| p["id"].as_str() == paid_by && held(p) > 0) {
                    report
                        .violations
                        .push(format!("confirmed booking {id}'s payment {paid_by:?} holds no money"));
                }
                let show = b["showtime_id"].as_str().unwrap_or_default().to_owned();
                for seat in b["seats"].as_array().into_iter().flatten().filter_map(Value::as_str) {
                    if let Some(other) =
                        sold.entry(show.clone()).or_default().insert(seat.to_owned(), id.to_owned())
                    {
                        report
                            .violations
                            .push(format!("seat {seat} of showtime {show} sold to {other} and {id}"));
                    }
                }
                let tickets = b["tickets"].as_array().map_or(0, Vec::len);
                let seats = b["seats"].as_array().map_or(0, Vec::len);
                if tickets != seats {
                    report
                        .violations
                        .push(format!("confirmed booking {id} has {tickets} tickets for {seats} seats"));
                }
            }
            "held" | "charging" => {
                report.in_flight += 1;
                if holds != 0 {
                    report.violations.push(format!("{status} booking {id} holds {holds} cents"));
                }
            }
            _ => {
                if holds != 0 {
                    report.violations.push(format!("{status} booking {id} still holds {holds} cents"));
                }
                for ticket in b["tickets"].as_array().into_iter().flatten() {
                    let code = ticket["code"].as_str().unwrap_or_default();
                    let check = get(http, &format!("{base}/api/v1/tickets/{code}"), admin_token).await?;
                    report.tickets_checked += 1;
                    if check["valid"] != false {
                        report.violations.push(format!("ticket {code} of {status} booking {id} is valid"));
                    }
                }
            }
        }
    }

    // Seat maps show exactly the confirmed seats as booked.
    for (show, seats) in &sold {
        let map = get(http, &format!("{base}/api/v1/showtimes/{show}/seats"), admin_token).await?;
        let booked: BTreeSet<String> = seats_with_status(&map, "booked").into_iter().collect();
        let confirmed: BTreeSet<String> = seats.keys().cloned().collect();
        if booked != confirmed {
            let extra: Vec<_> = booked.difference(&confirmed).collect();
            let missing: Vec<_> = confirmed.difference(&booked).collect();
            report.violations.push(format!(
                "showtime {show}: booked seats without a confirmed booking {extra:?}, confirmed seats not booked {missing:?}"
            ));
        }
    }

    // Other references: a subscription period keeps one capture; a booking reference with no
    // booking keeps none.
    for (reference, of_reference) in &by_reference {
        let keeping = of_reference.iter().filter(|p| held(p) > 0).count();
        // `subscription:<id>:<period start>`; older `subscription:<id>` rows file every period
        // under one reference and are not judged.
        let per_period = reference.starts_with("subscription:") && reference.matches(':').count() == 2;
        if per_period && keeping > 1 {
            report.violations.push(format!("{reference} keeps {keeping} captures"));
        }
        let for_a_booking = contracts::payments::booking_of_reference(reference).is_some();
        if for_a_booking && !booking_refs.contains(reference) && keeping > 0 {
            report.violations.push(format!("{reference} keeps money but there is no such booking"));
        }
    }
    Ok(report)
}

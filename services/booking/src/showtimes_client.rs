//! What booking needs to know of a showtime, asked of the showtimes service over HTTP (timeout,
//! breaker; the types are `contracts::showtimes`') and cached briefly: its room's seats and
//! kinds, its price, its start and status.

use std::{sync::Arc, time::Duration};

use platform::{
    cache::{self, Cache},
    client::{ServiceClient, Unavailable},
};
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;
use uuid::Uuid;

use contracts::showtimes::{RoomView, ShowtimeView};
pub use contracts::showtimes::{RowView as Row, SeatView as Seat};

/// A showtime with its room's seats.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ShowtimeInfo {
    pub id: Uuid,
    pub movie_id: Uuid,
    #[serde(with = "time::serde::rfc3339")]
    pub starts_at: OffsetDateTime,
    pub price_cents: i64,
    pub currency: String,
    pub cancelled: bool,
    pub rows: Vec<Row>,
}

impl ShowtimeInfo {
    /// The seat's kind, `None` for a seat the room does not have.
    pub fn kind(&self, seat: &str) -> Option<&str> {
        self.rows.iter().flat_map(|r| &r.seats).find(|s| s.seat == seat).map(|s| s.kind.as_str())
    }

    /// Premium seats cost 1.5 times the showtime's price (rounded up to the cent).
    pub fn price_of(&self, seat: &str) -> i64 {
        match self.kind(seat) {
            Some("premium") => (self.price_cents * 3 + 1) / 2,
            _ => self.price_cents,
        }
    }

    pub fn capacity(&self) -> usize {
        self.rows.iter().map(|r| r.seats.len()).sum()
    }
}

pub struct ShowtimesClient {
    client: ServiceClient,
    cache: Arc<dyn Cache>,
}

/// A showtime's layout and price change rarely (never, once scheduled); a short cache spares
/// showtimes a call per booking. Cancellation is not trusted to the cache: see `fresh`.
const TTL: Duration = Duration::from_secs(30);

impl ShowtimesClient {
    pub fn new(http: platform::transport::Http, urls: Vec<String>, cache: Arc<dyn Cache>) -> Self {
        Self { client: ServiceClient::new(http, "showtimes", urls), cache }
    }

    /// The showtime, cached for a short while.
    pub async fn get(&self, id: Uuid) -> Result<Option<ShowtimeInfo>, Unavailable> {
        let key = format!("showtime:{id}");
        if let Some(info) = cache::get_json::<ShowtimeInfo>(self.cache.as_ref(), &key).await {
            return Ok(Some(info));
        }
        let info = self.fresh(id).await?;
        if let Some(info) = &info {
            cache::set_json(self.cache.as_ref(), &key, info, TTL).await;
        }
        Ok(info)
    }

    /// The showtime as showtimes has it now.
    pub async fn fresh(&self, id: Uuid) -> Result<Option<ShowtimeInfo>, Unavailable> {
        let Some(s) = self.client.get_json::<ShowtimeView>(&format!("/api/v1/showtimes/{id}")).await? else {
            return Ok(None);
        };
        let Some(room) = self.client.get_json::<RoomView>(&format!("/api/v1/rooms/{}", s.room_id)).await?
        else {
            return Ok(None);
        };
        Ok(Some(ShowtimeInfo {
            id: s.id,
            movie_id: s.movie_id,
            starts_at: s.starts_at,
            price_cents: s.price_cents,
            currency: s.currency,
            cancelled: s.status == "cancelled",
            rows: room.layout.rows,
        }))
    }

    /// Forget a cached showtime (it was cancelled).
    pub async fn forget(&self, id: Uuid) {
        let _ = self.cache.delete(&format!("showtime:{id}")).await;
    }
}

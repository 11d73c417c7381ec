//! Event types: `<aggregate>.<past-tense verb>`, stable strings and never Rust type names, since
//! they are routing keys on the broker and rows in other services' inboxes.

pub const USER_REGISTERED: &str = "user.registered";
pub const MOVIE_CREATED: &str = "movie.created";
pub const MOVIE_UPDATED: &str = "movie.updated";
pub const MOVIE_DELETED: &str = "movie.deleted";
pub const SHOWTIME_SCHEDULED: &str = "showtime.scheduled";
pub const SHOWTIME_CANCELLED: &str = "showtime.cancelled";
pub const BOOKING_HELD: &str = "booking.held";
pub const BOOKING_CONFIRMED: &str = "booking.confirmed";
pub const BOOKING_CANCELLED: &str = "booking.cancelled";
pub const BOOKING_EXPIRED: &str = "booking.expired";
pub const PAYMENT_SUCCEEDED: &str = "payment.succeeded";
pub const PAYMENT_FAILED: &str = "payment.failed";
pub const PAYMENT_REFUNDED: &str = "payment.refunded";
pub const SUBSCRIPTION_ACTIVATED: &str = "subscription.activated";
pub const SUBSCRIPTION_CANCELLED: &str = "subscription.cancelled";
pub const PLAYBACK_STARTED: &str = "playback.started";
pub const PLAYBACK_STOPPED: &str = "playback.stopped";
pub const REVIEW_POSTED: &str = "review.posted";
pub const REVIEW_UPDATED: &str = "review.updated";
pub const REVIEW_DELETED: &str = "review.deleted";
pub const POINTS_AWARDED: &str = "points.awarded";
pub const POINTS_REVERSED: &str = "points.reversed";
pub const REWARD_REDEEMED: &str = "reward.redeemed";
pub const TIER_CHANGED: &str = "tier.changed";

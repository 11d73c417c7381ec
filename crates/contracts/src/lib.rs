//! What services say to each other: the CloudEvents envelope, the event types and their payloads,
//! and the request/response types of calls between services. Serde only: no axum, sqlx or lapin,
//! so any service (or an outside consumer) can depend on it cheaply.
//!
//! # Layout
//! - [`envelope`]: the CloudEvents 1.0 envelope every event travels in.
//! - [`event_types`]: the stable event type strings (routing keys on the broker).
//! - [`identity`], [`catalog`], [`showtimes`], [`payments`]: payloads emitted by those services.
//! - [`reviews`]: review payloads, which the catalog consumes for ratings.
//! - [`loyalty`]: points, rewards and tiers, which notifications writes about.
//! - [`services`]: the registry of services: names, ports, paths, the events each consumes.
//! - [`booking`], [`streaming`]: payloads other services emit that identity already consumes.

pub mod booking;
pub mod catalog;
pub mod envelope;
pub mod event_types;
pub mod identity;
pub mod loyalty;
pub mod payments;
pub mod reviews;
pub mod services;
pub mod showtimes;
pub mod streaming;

pub use envelope::CloudEvent;

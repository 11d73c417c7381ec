//! The CloudEvents 1.0 JSON envelope (<https://cloudevents.io>), with the W3C `traceparent`
//! extension so a trace follows an event from the producer's request into every consumer.

use serde::{Deserialize, Serialize, de::DeserializeOwned};
use time::OffsetDateTime;
use uuid::Uuid;

pub const SPEC_VERSION: &str = "1.0";

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CloudEvent {
    /// Unique per event; consumers use it to make redelivery a no-op.
    pub id: Uuid,
    /// The producing service, as a URI reference: `/marquee/identity`.
    pub source: String,
    /// `<aggregate>.<past-tense verb>`, one of [`crate::event_types`]; also the routing key.
    #[serde(rename = "type")]
    pub event_type: String,
    pub specversion: String,
    #[serde(with = "time::serde::rfc3339")]
    pub time: OffsetDateTime,
    /// The id of the aggregate the event is about (a user, a booking, ...).
    pub subject: String,
    pub datacontenttype: String,
    pub data: serde_json::Value,
    /// W3C trace context of the request that caused the event, when there was one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub traceparent: Option<String>,
}

impl CloudEvent {
    /// A new event with a fresh time-ordered id.
    pub fn new<T: Serialize>(
        source_service: &str,
        event_type: &str,
        subject: impl Into<String>,
        data: &T,
    ) -> Result<Self, serde_json::Error> {
        Ok(Self {
            id: Uuid::now_v7(),
            source: format!("/marquee/{source_service}"),
            event_type: event_type.to_owned(),
            specversion: SPEC_VERSION.to_owned(),
            time: OffsetDateTime::now_utc(),
            subject: subject.into(),
            datacontenttype: "application/json".to_owned(),
            data: serde_json::to_value(data)?,
            traceparent: None,
        })
    }

    pub fn with_traceparent(mut self, traceparent: Option<String>) -> Self {
        self.traceparent = traceparent;
        self
    }

    /// The payload as its contract type.
    pub fn data_as<T: DeserializeOwned>(&self) -> Result<T, serde_json::Error> {
        serde_json::from_value(self.data.clone())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_event_round_trips_through_json_with_the_cloudevents_names() {
        let event = CloudEvent::new("identity", "user.registered", "u1", &serde_json::json!({"a": 1}))
            .expect("serializable")
            .with_traceparent(Some("00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01".into()));
        let json = serde_json::to_value(&event).expect("serializable");
        assert_eq!(json["type"], "user.registered");
        assert_eq!(json["specversion"], "1.0");
        assert_eq!(json["source"], "/marquee/identity");
        let back: CloudEvent = serde_json::from_value(json).expect("parses");
        assert_eq!(back, event);
    }
}

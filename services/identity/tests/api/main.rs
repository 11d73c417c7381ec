//! identity through the gateway, in the embedded mode or (with MARQUEE_TEST_* set) on
//! PostgreSQL and RabbitMQ.

mod auth;
mod browser_session;
mod extractors;
mod signin;
mod tokens;
mod users;

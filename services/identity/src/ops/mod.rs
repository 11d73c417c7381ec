//! identity's use cases. The handlers and the admin bootstrap call these; each takes typed
//! inputs and answers [`crate::error::IdentityError`]. A change other services must hear of (a
//! new account) is one unit of work with its event, so the event exists exactly when the change
//! does.
//!
//! - [`auth`]: registering, signing in with its throttle, refreshing and ending sessions.
//! - [`users`]: the signed-in user's profile and activity, and the admin's view of every user.
//! - [`services`]: what other services ask for: the published keys and service tokens.
//!
//! Token lifetimes and sign-in lockouts read the system's time, not the service's clock: every
//! service's verifier checks a token's expiry against the system's time, so the two must agree.

pub mod auth;
pub mod services;
pub mod users;

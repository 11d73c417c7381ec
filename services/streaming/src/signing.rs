//! Signed stream URLs: `/api/v1/stream/<session>/<object>?expires=<unix s>&sig=<base64url>`.
//!
//! The signature is HMAC-SHA-256 over the path, the expiry and the session, under a key every
//! replica of streaming derives from its own credential, and it is checked in constant time. A
//! `<video>` element cannot send an `Authorization` header, so the URL itself is the capability:
//! whoever holds it may fetch that object of that session until it expires (and while the
//! session runs, which the media handler checks).

use aws_lc_rs::hmac;
use base64::{Engine, engine::general_purpose::URL_SAFE_NO_PAD};
use uuid::Uuid;

pub const STREAM_PREFIX: &str = "/api/v1/stream";

#[derive(Clone)]
pub struct UrlSigner {
    key: hmac::Key,
}

/// Why a stream URL is refused (all of them 403).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BadUrl {
    Missing,
    Forged,
    Expired,
}

impl UrlSigner {
    /// The key is derived, not the credential itself, so a leaked URL key says nothing about the
    /// credential identity knows streaming by.
    pub fn new(credential: &str) -> Self {
        let base = hmac::Key::new(hmac::HMAC_SHA256, credential.as_bytes());
        let derived = hmac::sign(&base, b"marquee stream urls v1");
        Self { key: hmac::Key::new(hmac::HMAC_SHA256, derived.as_ref()) }
    }

    fn message(path: &str, expires: i64, session: Uuid) -> String {
        format!("{path}\n{expires}\n{session}")
    }

    /// The path of an object of a session.
    pub fn path(session: Uuid, object: &str) -> String {
        format!("{STREAM_PREFIX}/{session}/{object}")
    }

    /// `?expires=..&sig=..` for an object of a session.
    pub fn query(&self, session: Uuid, object: &str, expires: i64) -> String {
        let path = Self::path(session, object);
        let tag = hmac::sign(&self.key, Self::message(&path, expires, session).as_bytes());
        format!("expires={expires}&sig={}", URL_SAFE_NO_PAD.encode(tag.as_ref()))
    }

    /// The signed path and query of an object of a session.
    pub fn url(&self, session: Uuid, object: &str, expires: i64) -> String {
        format!("{}?{}", Self::path(session, object), self.query(session, object, expires))
    }

    /// Check the `expires` and `sig` of a request for `object` of `session`, at `now` (unix s).
    pub fn verify(
        &self,
        session: Uuid,
        object: &str,
        expires: Option<&str>,
        sig: Option<&str>,
        now: i64,
    ) -> Result<i64, BadUrl> {
        let (Some(expires), Some(sig)) = (expires, sig) else {
            return Err(BadUrl::Missing);
        };
        let expires: i64 = expires.parse().map_err(|_| BadUrl::Forged)?;
        let sig = URL_SAFE_NO_PAD.decode(sig).map_err(|_| BadUrl::Forged)?;
        let path = Self::path(session, object);
        hmac::verify(&self.key, Self::message(&path, expires, session).as_bytes(), &sig)
            .map_err(|_| BadUrl::Forged)?;
        // Checked after the signature, so an expired URL is only reported as such when it was
        // really ours.
        if now >= expires {
            return Err(BadUrl::Expired);
        }
        Ok(expires)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parts(query: &str) -> (String, String) {
        let mut expires = String::new();
        let mut sig = String::new();
        for pair in query.split('&') {
            match pair.split_once('=') {
                Some(("expires", v)) => expires = v.to_owned(),
                Some(("sig", v)) => sig = v.to_owned(),
                _ => {}
            }
        }
        (expires, sig)
    }

    #[test]
    fn a_signed_url_verifies_until_it_expires_and_not_for_anything_else() {
        let signer = UrlSigner::new("credential");
        let session = Uuid::now_v7();
        let (expires, sig) = parts(&signer.query(session, "media.mp4", 1_000));
        assert_eq!(signer.verify(session, "media.mp4", Some(&expires), Some(&sig), 999), Ok(1_000));
        assert_eq!(
            signer.verify(session, "media.mp4", Some(&expires), Some(&sig), 1_000),
            Err(BadUrl::Expired)
        );
        assert_eq!(
            signer.verify(session, "seg001.ts", Some(&expires), Some(&sig), 1),
            Err(BadUrl::Forged),
            "another object"
        );
        assert_eq!(
            signer.verify(Uuid::now_v7(), "media.mp4", Some(&expires), Some(&sig), 1),
            Err(BadUrl::Forged),
            "another session"
        );
        assert_eq!(
            signer.verify(session, "media.mp4", Some("2000"), Some(&sig), 1),
            Err(BadUrl::Forged),
            "a later expiry"
        );
        let other = UrlSigner::new("another credential");
        assert_eq!(other.verify(session, "media.mp4", Some(&expires), Some(&sig), 1), Err(BadUrl::Forged));
        assert_eq!(signer.verify(session, "media.mp4", None, Some(&sig), 1), Err(BadUrl::Missing));
        assert_eq!(signer.verify(session, "media.mp4", Some(&expires), Some("!!"), 1), Err(BadUrl::Forged));
    }
}

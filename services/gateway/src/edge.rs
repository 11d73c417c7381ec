//! What every request meets at the door: who is calling (access tokens verified with identity's
//! keys before anything is forwarded), how fast (rate limits), from where (CORS), and the
//! security headers on the way out.

use std::{net::IpAddr, sync::Arc, time::Duration};

use axum::{
    extract::{Request, State},
    http::{HeaderMap, HeaderName, HeaderValue, Method, header},
    middleware::Next,
    response::{IntoResponse, Response},
};
use platform::{Problem, Settings, auth::Verifier, extract::PeerAddr, forwarded::TrustedProxies};
use tower_http::cors::{AllowOrigin, CorsLayer};

use crate::{
    proxy::ClientIp,
    ratelimit::{Decision, RateLimiter},
};

pub struct Edge {
    pub verifier: Arc<Verifier>,
    pub limiter: Option<RateLimiter>,
    /// Proxies in front of the gateway (a load balancer) whose `X-Forwarded-For` is believed.
    pub trusted_proxies: TrustedProxies,
}

impl Edge {
    pub fn from_settings(settings: &Settings, verifier: Arc<Verifier>) -> anyhow::Result<Self> {
        Ok(Self {
            verifier,
            limiter: RateLimiter::from_settings(settings)?,
            trusted_proxies: TrustedProxies::parse(
                settings.get("MARQUEE_GATEWAY_TRUSTED_PROXIES").unwrap_or_default(),
            )?,
        })
    }

    /// The client's address: the peer, or behind a trusted proxy the address it forwarded for.
    pub fn client_ip(&self, peer: IpAddr, headers: &HeaderMap) -> IpAddr {
        self.trusted_proxies.client_ip(peer, headers)
    }
}

/// Verify the caller's token and apply the rate limits, then pass the request on. A request
/// without a token goes on as anonymous (the service decides whether that is enough).
pub async fn guard(
    State(edge): State<Arc<Edge>>,
    PeerAddr(peer): PeerAddr,
    mut request: Request,
    next: Next,
) -> Response {
    let client = peer.map(|peer| edge.client_ip(peer.ip(), request.headers()));
    if let Some(ip) = client {
        request.extensions_mut().insert(ClientIp(ip));
    }
    let verdict = match platform::auth::bearer(request.headers()) {
        Ok(None) => Ok(None),
        Ok(Some(token)) => edge.verifier.verify(token).await.map(|claims| Some(claims.sub)),
        Err(e) => Err(e),
    };
    let mut limits = None;
    if let (Some(limiter), Some(ip)) = (&edge.limiter, client)
        && !limiter.is_exempt(ip)
    {
        let user = verdict.as_ref().ok().and_then(Option::as_deref);
        let decision = limiter.take(&limiter.buckets(ip, user, request.uri().path())).await;
        if !decision.allowed {
            metrics::counter!("gateway_rate_limited_total").increment(1);
            let retry_after = decision.retry_after.as_secs_f64().ceil().max(1.0) as u64;
            let mut response = Problem::too_many_requests(retry_after)
                .detail(format!("too many requests; try again in {retry_after} s"))
                .into_response();
            rate_limit_headers(response.headers_mut(), &decision);
            return response;
        }
        limits = Some(decision);
    }
    let mut response = match verdict {
        Ok(_) => next.run(request).await,
        Err(e) => Problem::from(e).into_response(),
    };
    if let Some(decision) = limits {
        rate_limit_headers(response.headers_mut(), &decision);
    }
    response
}

/// `RateLimit-Limit`, `-Remaining`, `-Reset` (seconds) and `-Policy` (IETF httpapi draft).
fn rate_limit_headers(headers: &mut HeaderMap, d: &Decision) {
    let secs = |t: Duration| t.as_secs_f64().ceil() as u64;
    let pairs = [
        ("ratelimit-limit", d.limit.burst.to_string()),
        ("ratelimit-remaining", d.remaining.to_string()),
        ("ratelimit-reset", secs(d.reset).to_string()),
        ("ratelimit-policy", format!("{};w={}", d.limit.burst, secs(d.limit.window()).max(1))),
    ];
    for (name, value) in pairs {
        if let Ok(value) = HeaderValue::from_str(&value) {
            headers.insert(HeaderName::from_static(name), value);
        }
    }
}

/// Headers that keep browsers from misreading or framing what the gateway serves.
pub async fn security_headers(request: Request, next: Next) -> Response {
    let mut response = next.run(request).await;
    let html = response
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("text/html"));
    let csp = if html { crate::web::PAGE_POLICY } else { "default-src 'none'; frame-ancestors 'none'" };
    let headers = response.headers_mut();
    for (name, value) in [
        (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
        (header::X_FRAME_OPTIONS, "DENY"),
        (header::REFERRER_POLICY, "no-referrer"),
        (header::CONTENT_SECURITY_POLICY, csp),
    ] {
        if !headers.contains_key(&name) {
            headers.insert(name, HeaderValue::from_static(value));
        }
    }
    response
}

/// CORS for the origins in `MARQUEE_CORS_ORIGINS` (comma-separated, or `*`); none by default,
/// which suits the web UI the gateway serves itself.
pub fn cors(settings: &Settings) -> anyhow::Result<Option<CorsLayer>> {
    let Some(origins) = settings.get("MARQUEE_CORS_ORIGINS").map(str::trim).filter(|o| !o.is_empty()) else {
        return Ok(None);
    };
    let allow = if origins == "*" {
        AllowOrigin::any()
    } else if origins.split(',').any(|o| o.trim() == "*") {
        anyhow::bail!("MARQUEE_CORS_ORIGINS: * stands alone, not in a list");
    } else {
        let list = origins
            .split(',')
            .map(|o| HeaderValue::from_str(o.trim()).map_err(|_| anyhow::anyhow!("CORS origin {o:?}")))
            .collect::<anyhow::Result<Vec<_>>>()?;
        AllowOrigin::list(list)
    };
    Ok(Some(
        CorsLayer::new()
            .allow_origin(allow)
            .allow_methods([
                Method::GET,
                Method::HEAD,
                Method::POST,
                Method::PUT,
                Method::PATCH,
                Method::DELETE,
            ])
            .allow_headers([
                header::AUTHORIZATION,
                header::CONTENT_TYPE,
                HeaderName::from_static("idempotency-key"),
                HeaderName::from_static("x-request-id"),
                HeaderName::from_static("traceparent"),
            ])
            .expose_headers([
                header::LOCATION,
                header::RETRY_AFTER,
                HeaderName::from_static("x-request-id"),
                HeaderName::from_static("ratelimit-limit"),
                HeaderName::from_static("ratelimit-remaining"),
                HeaderName::from_static("ratelimit-reset"),
                HeaderName::from_static("ratelimit-policy"),
            ])
            .max_age(Duration::from_secs(600)),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_wildcard_in_a_list_of_origins_is_a_configuration_error() {
        let settings = Settings::default().with("MARQUEE_CORS_ORIGINS", "https://a.example, *");
        assert!(cors(&settings).is_err());
        assert!(cors(&Settings::default().with("MARQUEE_CORS_ORIGINS", "*")).is_ok_and(|c| c.is_some()));
    }
}

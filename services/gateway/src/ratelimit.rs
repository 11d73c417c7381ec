//! Rate limits: token buckets per client address, per signed-in user, and a tighter one per
//! address on the credential checks, sign-in and registration (password guessing; refreshing a
//! session is not one: hundreds of users behind one address refresh every 15 minutes). One request takes a token from every bucket that
//! applies, or from none when any is empty. The buckets live in Redis when `MARQUEE_REDIS_URL` is
//! set, so every gateway replica enforces the same limit; in the process otherwise, and also
//! while Redis is unreachable (each replica then limits on its own rather than not at all).

use std::{
    collections::HashMap,
    net::IpAddr,
    sync::Mutex,
    time::{Duration, Instant},
};

use ipnet::IpNet;
use platform::{Settings, forwarded::parse_nets};

/// A bucket of `burst` tokens refilled at `per_second`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Limit {
    pub per_second: f64,
    pub burst: u32,
}

impl Limit {
    fn from_settings(settings: &Settings, name: &str, per_second: f64, burst: u32) -> anyhow::Result<Self> {
        let per_second = settings.parse_or(&format!("MARQUEE_RATE_LIMIT_{name}_PER_SECOND"), per_second)?;
        let burst = settings.parse_or(&format!("MARQUEE_RATE_LIMIT_{name}_BURST"), burst)?;
        anyhow::ensure!(per_second > 0.0 && burst >= 1, "rate limit {name}: needs a positive rate and burst");
        Ok(Self { per_second, burst })
    }

    /// How long an empty bucket takes to fill up.
    pub fn window(&self) -> Duration {
        Duration::from_secs_f64(f64::from(self.burst) / self.per_second)
    }
}

/// One bucket a request draws on: its key and its limit.
#[derive(Debug, Clone)]
pub struct Bucket {
    pub key: String,
    pub limit: Limit,
}

/// The verdict on one request, for the answer's `RateLimit-*` headers: the figures of the bucket
/// closest to empty.
#[derive(Debug, Clone, PartialEq)]
pub struct Decision {
    pub allowed: bool,
    pub limit: Limit,
    pub remaining: u32,
    /// Until that bucket is full again.
    pub reset: Duration,
    /// When refused: until a token is back in every bucket.
    pub retry_after: Duration,
}

/// Given each bucket's tokens after refilling, decide and say what each one holds afterwards.
fn decide(buckets: &[Bucket], tokens: &mut [f64]) -> Decision {
    let allowed = tokens.iter().all(|t| *t >= 1.0);
    let mut retry_after = Duration::ZERO;
    for (bucket, t) in buckets.iter().zip(tokens.iter_mut()) {
        if allowed {
            *t -= 1.0;
        } else if *t < 1.0 {
            retry_after = retry_after.max(Duration::from_secs_f64((1.0 - *t) / bucket.limit.per_second));
        }
    }
    let (tightest, t) = buckets
        .iter()
        .zip(tokens.iter())
        .min_by(|a, b| (a.1 / f64::from(a.0.limit.burst)).total_cmp(&(b.1 / f64::from(b.0.limit.burst))))
        .map(|(b, t)| (b.limit, *t))
        .unwrap_or((Limit { per_second: 1.0, burst: 1 }, 1.0));
    Decision {
        allowed,
        limit: tightest,
        remaining: t.max(0.0).floor() as u32,
        reset: Duration::from_secs_f64((f64::from(tightest.burst) - t).max(0.0) / tightest.per_second),
        retry_after,
    }
}

/// Buckets in this process.
#[derive(Default)]
pub struct MemoryBuckets {
    buckets: Mutex<HashMap<String, Held>>,
}

/// What a bucket held when last touched, and when it will be full again.
struct Held {
    tokens: f64,
    at: Instant,
    full_at: Instant,
}

/// Buckets kept in memory at most (about 100 bytes each).
const MAX_BUCKETS: usize = 200_000;

impl MemoryBuckets {
    pub fn take(&self, buckets: &[Bucket]) -> Decision {
        let now = Instant::now();
        let mut map = self.buckets.lock().unwrap_or_else(|p| p.into_inner());
        if map.len() >= MAX_BUCKETS {
            // Forget buckets that have filled up again: they hold nothing a new one would not.
            map.retain(|_, bucket| bucket.full_at > now);
        }
        if map.len() >= MAX_BUCKETS && buckets.iter().any(|b| !map.contains_key(&b.key)) {
            // Every bucket is in use (a flood of new addresses): refuse newcomers rather than
            // forget anyone's limit.
            let mut tokens = vec![0.0; buckets.len()];
            return decide(buckets, &mut tokens);
        }
        let mut tokens: Vec<f64> = buckets
            .iter()
            .map(|b| match map.get(&b.key) {
                Some(held) => {
                    let refill = now.duration_since(held.at).as_secs_f64() * b.limit.per_second;
                    (held.tokens + refill).min(f64::from(b.limit.burst))
                }
                None => f64::from(b.limit.burst),
            })
            .collect();
        let decision = decide(buckets, &mut tokens);
        for (b, t) in buckets.iter().zip(tokens) {
            let until_full = (f64::from(b.limit.burst) - t).max(0.0) / b.limit.per_second;
            let full_at = now + Duration::from_secs_f64(until_full.min(86_400.0));
            map.insert(b.key.clone(), Held { tokens: t, at: now, full_at });
        }
        decision
    }
}

/// The same buckets in Redis, all of a request's taken in one script run so that replicas never
/// interleave. Redis's clock is the one clock all replicas share.
const TAKE_SCRIPT: &str = r"
local now_parts = redis.call('TIME')
local now = tonumber(now_parts[1]) * 1000 + math.floor(tonumber(now_parts[2]) / 1000)
local tokens = {}
local allowed = 1
for i, key in ipairs(KEYS) do
  local burst = tonumber(ARGV[2 * i - 1])
  local per_ms = tonumber(ARGV[2 * i]) / 1000
  local held = redis.call('HMGET', key, 't', 'at')
  local t = tonumber(held[1])
  local at = tonumber(held[2])
  if t == nil or at == nil then
    t = burst
  else
    t = math.min(burst, t + math.max(0, now - at) * per_ms)
  end
  tokens[i] = t
  if t < 1 then allowed = 0 end
end
local out = {allowed}
for i, key in ipairs(KEYS) do
  local burst = tonumber(ARGV[2 * i - 1])
  local per_ms = tonumber(ARGV[2 * i]) / 1000
  if allowed == 1 then tokens[i] = tokens[i] - 1 end
  redis.call('HSET', key, 't', tostring(tokens[i]), 'at', now)
  redis.call('PEXPIRE', key, math.ceil(burst / per_ms) + 1000)
  out[i + 1] = tostring(tokens[i])
end
return out
";

pub struct RedisBuckets {
    connection: redis::aio::ConnectionManager,
    prefix: String,
    script: redis::Script,
}

impl RedisBuckets {
    pub fn new(url: &str, prefix: String) -> anyhow::Result<Self> {
        let client = redis::Client::open(url)?;
        let config = redis::aio::ConnectionManagerConfig::new()
            .set_connection_timeout(Some(Duration::from_secs(1)))
            .set_response_timeout(Some(Duration::from_millis(200)))
            .set_number_of_retries(1);
        let connection = redis::aio::ConnectionManager::new_lazy_with_config(client, config)?;
        Ok(Self { connection, prefix, script: redis::Script::new(TAKE_SCRIPT) })
    }

    pub async fn take(&self, buckets: &[Bucket]) -> anyhow::Result<Decision> {
        let mut invocation = self.script.prepare_invoke();
        for b in buckets {
            invocation.key(format!("{}:{}", self.prefix, b.key)).arg(b.limit.burst).arg(b.limit.per_second);
        }
        let mut conn = self.connection.clone();
        let out: Vec<String> = invocation.invoke_async(&mut conn).await?;
        anyhow::ensure!(out.len() == buckets.len() + 1, "rate-limit script answered {} values", out.len());
        // The script has already taken the tokens; re-deciding on what was left before that
        // gives the same verdict and the headers' figures.
        let allowed = out[0] == "1";
        let mut before: Vec<f64> = out[1..]
            .iter()
            .map(|t| t.parse::<f64>().map(|t| if allowed { t + 1.0 } else { t }))
            .collect::<Result<_, _>>()?;
        Ok(decide(buckets, &mut before))
    }
}

/// Does the request check a password? Those draw on the tight `auth` bucket.
pub fn is_credential_check(path: &str) -> bool {
    matches!(path, "/api/v1/auth/login" | "/api/v1/auth/register")
}

/// The limits and where the buckets are kept.
pub struct RateLimiter {
    pub ip: Limit,
    pub user: Limit,
    pub auth: Limit,
    /// Addresses never limited (`MARQUEE_RATE_LIMIT_EXEMPT`), e.g. the host a load test runs on.
    exempt: Vec<IpNet>,
    memory: MemoryBuckets,
    redis: Option<RedisBuckets>,
    redis_breaker: platform::breaker::CircuitBreaker,
}

impl RateLimiter {
    /// `None` when `MARQUEE_RATE_LIMIT=off`.
    pub fn from_settings(settings: &Settings) -> anyhow::Result<Option<Self>> {
        if settings.get("MARQUEE_RATE_LIMIT").is_some_and(|v| v.eq_ignore_ascii_case("off")) {
            return Ok(None);
        }
        let redis = match settings.get("MARQUEE_REDIS_URL") {
            Some(url) => {
                let namespace = settings.get("MARQUEE_REDIS_NAMESPACE").unwrap_or("marquee");
                Some(RedisBuckets::new(url, format!("{namespace}:gateway:rate"))?)
            }
            None => None,
        };
        Ok(Some(Self {
            ip: Limit::from_settings(settings, "IP", 100.0, 200)?,
            user: Limit::from_settings(settings, "USER", 50.0, 100)?,
            auth: Limit::from_settings(settings, "AUTH", 0.5, 10)?,
            exempt: parse_nets(settings.get("MARQUEE_RATE_LIMIT_EXEMPT").unwrap_or_default())?,
            memory: MemoryBuckets::default(),
            redis,
            redis_breaker: platform::breaker::CircuitBreaker::new(
                "rate-limit-store",
                3,
                Duration::from_secs(5),
            ),
        }))
    }

    pub fn is_exempt(&self, ip: IpAddr) -> bool {
        self.exempt.iter().any(|net| net.contains(&ip))
    }

    /// The buckets a request draws on.
    pub fn buckets(&self, ip: IpAddr, user: Option<&str>, path: &str) -> Vec<Bucket> {
        let ip = client_key(ip);
        let mut buckets = vec![Bucket { key: format!("ip:{ip}"), limit: self.ip }];
        if is_credential_check(path) {
            buckets.push(Bucket { key: format!("auth:{ip}"), limit: self.auth });
        }
        if let Some(user) = user {
            buckets.push(Bucket { key: format!("user:{user}"), limit: self.user });
        }
        buckets
    }

    pub async fn take(&self, buckets: &[Bucket]) -> Decision {
        // While Redis is failing, its breaker sends requests straight to the in-process buckets
        // instead of each one waiting for a reconnection attempt.
        if let Some(redis) = &self.redis
            && self.redis_breaker.allow().is_ok()
        {
            match redis.take(buckets).await {
                Ok(decision) => {
                    self.redis_breaker.record_success();
                    return decision;
                }
                Err(e) => {
                    self.redis_breaker.record_failure();
                    metrics::counter!("gateway_rate_limit_store_errors_total").increment(1);
                    tracing::warn!(error = %e, "rate-limit store unavailable; limiting in this process");
                }
            }
        }
        self.memory.take(buckets)
    }
}

/// The address a bucket is kept for: IPv6 clients get a /64 each (one home or device network),
/// or rotating through their own addresses would escape the limit.
fn client_key(ip: IpAddr) -> String {
    match ip {
        IpAddr::V4(v4) => v4.to_string(),
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => v4.to_string(),
            None => {
                let s = v6.segments();
                format!("{:x}:{:x}:{:x}:{:x}::/64", s[0], s[1], s[2], s[3])
            }
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bucket(key: &str, per_second: f64, burst: u32) -> Bucket {
        Bucket { key: key.into(), limit: Limit { per_second, burst } }
    }

    #[test]
    fn a_bucket_allows_its_burst_then_refuses_until_refilled() {
        let memory = MemoryBuckets::default();
        let b = [bucket("ip:1", 10.0, 3)];
        let remaining: Vec<_> = (0..3).map(|_| memory.take(&b)).map(|d| (d.allowed, d.remaining)).collect();
        assert_eq!(remaining, [(true, 2), (true, 1), (true, 0)]);
        let refused = memory.take(&b);
        assert!(!refused.allowed);
        assert!(refused.retry_after > Duration::ZERO && refused.retry_after <= Duration::from_millis(100));
        std::thread::sleep(Duration::from_millis(120));
        assert!(memory.take(&b).allowed, "a token came back after 1/10 s");
    }

    #[test]
    fn a_refused_request_takes_from_no_bucket() {
        let memory = MemoryBuckets::default();
        let ip = bucket("ip:1", 0.001, 5);
        let auth = bucket("auth:1", 0.001, 1);
        assert!(memory.take(&[ip.clone(), auth.clone()]).allowed);
        let refused = memory.take(&[ip.clone(), auth]);
        assert!(!refused.allowed);
        assert_eq!(refused.remaining, 0, "the auth bucket is the tightest");
        assert_eq!(memory.take(&[ip]).remaining, 3, "5 - 1 - (refused: none) - 1");
    }

    #[test]
    fn ipv6_clients_are_limited_per_64_network() {
        let limiter = RateLimiter::from_settings(&Settings::default()).expect("ok").expect("on");
        let key = |s: &str| limiter.buckets(s.parse().expect("ip"), None, "/api/v1/movies")[0].key.clone();
        assert_eq!(key("2001:db8:1:2::1"), key("2001:db8:1:2:ffff::9"));
        assert_ne!(key("2001:db8:1:2::1"), key("2001:db8:1:3::1"));
        assert_eq!(key("::ffff:192.0.2.1"), key("192.0.2.1"));
    }

    #[test]
    fn exemptions_are_addresses_or_networks() {
        let nets = parse_nets("127.0.0.1, 10.0.0.0/8").expect("parsed");
        let limiter = RateLimiter {
            exempt: nets,
            ..RateLimiter::from_settings(&Settings::default()).expect("ok").expect("on")
        };
        assert!(limiter.is_exempt("127.0.0.1".parse().expect("ip")));
        assert!(limiter.is_exempt("10.1.2.3".parse().expect("ip")));
        assert!(!limiter.is_exempt("192.168.0.1".parse().expect("ip")));
        assert!(parse_nets("not-an-ip").is_err());
    }
}

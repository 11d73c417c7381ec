//! The Ed25519 keys identity signs tokens with. They live in identity's database so they survive
//! restarts and are shared by its replicas.
//!
//! A key's life: it is **published** (in the JWKS) as soon as it exists; it **signs** once it has
//! been published for the activation delay, by which time verifiers that refreshed their key set
//! have it; it stops signing when a newer key starts; and it is **retired** (gone from the JWKS
//! and the database) once every token it signed has expired. Which key signs is worked out from
//! the keys' creation times alone, so every replica picks the same one without coordinating.
//! identity rotates on its own when the newest key is older than the rotation period, and
//! `marquee keys rotate` adds one by hand.

use std::sync::{Arc, RwLock};

use anyhow::Context;
use aws_lc_rs::{
    rand::SystemRandom,
    signature::{Ed25519KeyPair, KeyPair},
};
use base64::{
    Engine,
    engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD},
};
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use platform::{
    auth::{AUDIENCE, Claims, ISSUER, Jwk, Jwks, Role},
    db::Db,
    time::now_ms,
};
use sqlx::Row;

/// Verifiers accept tokens up to this long after they expire (platform::auth's leeway, with room).
const EXPIRY_LEEWAY_MS: i64 = 60_000;

/// When keys sign, rotate and retire.
#[derive(Debug, Clone, Copy)]
pub struct KeyPolicy {
    /// A new key is published this long before it signs.
    pub activation_ms: i64,
    /// identity makes a new key when the newest is this old.
    pub rotate_after_ms: i64,
    /// The longest lifetime of a token identity signs: a key stays published this long (plus
    /// a leeway) after it stopped signing.
    pub longest_token_ms: i64,
}

impl KeyPolicy {
    pub fn from_settings(s: &platform::Settings, longest_token_secs: i64) -> anyhow::Result<Self> {
        Ok(Self {
            activation_ms: s.parse_or::<i64>("MARQUEE_KEY_ACTIVATION_SECONDS", 60)?.saturating_mul(1000),
            rotate_after_ms: s
                .parse_or::<i64>("MARQUEE_KEY_ROTATION_DAYS", 30)?
                .saturating_mul(24 * 3600 * 1000),
            longest_token_ms: longest_token_secs.saturating_mul(1000),
        })
    }
}

impl Default for KeyPolicy {
    fn default() -> Self {
        Self { activation_ms: 60_000, rotate_after_ms: 30 * 24 * 3600 * 1000, longest_token_ms: 900_000 }
    }
}

/// One stored key.
struct StoredKey {
    kid: String,
    private_key: String,
    public_key: String,
    created_at: i64,
    /// False for a key a restore brought in: published, never signing.
    signs: bool,
}

/// The keys as of one moment: which signs, and which are published.
struct KeySet {
    kid: String,
    key: EncodingKey,
    jwks: Jwks,
}

pub struct SigningKeys {
    db: Db,
    policy: KeyPolicy,
    current: RwLock<Arc<KeySet>>,
}

impl SigningKeys {
    /// Load the keys, making the first one when there is none. Two replicas starting on an empty
    /// database may both make one; both are published and the same one signs everywhere.
    pub async fn load_or_create(db: &Db, policy: KeyPolicy) -> anyhow::Result<Self> {
        Self::load_at(db, policy, now_ms()).await
    }

    /// The keys as they stand at `now` (epoch ms), making the first one when there is none.
    pub async fn load_at(db: &Db, policy: KeyPolicy, now: i64) -> anyhow::Result<Self> {
        if stored(db).await?.is_empty() {
            add_key(db, now).await?;
        }
        let set = key_set(&stored(db).await?, policy, now)?.context("no signing key")?;
        Ok(Self { db: db.clone(), policy, current: RwLock::new(Arc::new(set)) })
    }

    fn current(&self) -> Arc<KeySet> {
        self.current.read().unwrap_or_else(|p| p.into_inner()).clone()
    }

    /// The key id that signs now.
    pub fn signing_kid(&self) -> String {
        self.current().kid.clone()
    }

    pub fn jwks(&self) -> Jwks {
        self.current().jwks.clone()
    }

    /// Rotate when the newest key is due, retire keys whose tokens have all expired, and sign
    /// with whichever key should sign at `now`. Every replica runs it every minute. How many
    /// keys were made or retired.
    pub async fn maintain(&self, now: i64) -> anyhow::Result<usize> {
        let made = add_key_unless_newer_than(&self.db, now, now - self.policy.rotate_after_ms).await?;
        let keys = stored(&self.db).await?;
        let gone = retired(&keys, self.policy, now);
        let changes = usize::from(made.is_some()) + gone.len();
        for key in gone {
            sqlx::query("DELETE FROM signing_keys WHERE kid = $1")
                .bind(&key.kid)
                .execute(&self.db.pool)
                .await?;
            tracing::info!(kid = %key.kid, "retired a signing key: every token it signed has expired");
        }
        let Some(set) = key_set(&stored(&self.db).await?, self.policy, now)? else {
            return Ok(changes);
        };
        let mut current = self.current.write().unwrap_or_else(|p| p.into_inner());
        if current.kid != set.kid {
            tracing::info!(kid = %set.kid, "signing with a new key");
        }
        *current = Arc::new(set);
        Ok(changes)
    }

    /// The published keys at `now`: read each time, so a key another replica made since this
    /// one started is published here too.
    pub async fn published(&self, now: i64) -> anyhow::Result<Jwks> {
        Ok(key_set(&stored(&self.db).await?, self.policy, now)?.map(|set| set.jwks).unwrap_or_default())
    }

    /// Sign a token for `sub` valid for `ttl_secs`.
    pub fn sign(&self, sub: &str, role: Role, email: Option<&str>, ttl_secs: i64) -> anyhow::Result<String> {
        let now = now_ms() / 1000;
        let claims = Claims {
            sub: sub.to_owned(),
            role,
            email: email.map(str::to_owned),
            iss: ISSUER.into(),
            aud: AUDIENCE.into(),
            iat: now,
            exp: now + ttl_secs,
            jti: uuid::Uuid::new_v4().to_string(),
        };
        let current = self.current();
        let mut header = Header::new(Algorithm::EdDSA);
        header.kid = Some(current.kid.clone());
        jsonwebtoken::encode(&header, &claims, &current.key).context("signing a token")
    }
}

/// Make a new key at `now` (`marquee keys rotate`); it is published at once and signs after the
/// activation delay. Its key id.
pub async fn add_key(db: &Db, now: i64) -> anyhow::Result<String> {
    insert_key(db, now, None).await?.context("the key was not stored")
}

/// Make a new key unless one was made after `cutoff`: replicas rotating at the same moment
/// mostly make one key between them (and at worst two, both published).
async fn add_key_unless_newer_than(db: &Db, now: i64, cutoff: i64) -> anyhow::Result<Option<String>> {
    let kid = insert_key(db, now, Some(cutoff)).await?;
    if let Some(kid) = &kid {
        tracing::info!(%kid, "made a new signing key; it signs once published for the activation delay");
    }
    Ok(kid)
}

async fn insert_key(db: &Db, now: i64, unless_newer_than: Option<i64>) -> anyhow::Result<Option<String>> {
    let pkcs8 = Ed25519KeyPair::generate_pkcs8(&SystemRandom::new())
        .map_err(|_| anyhow::anyhow!("key generation"))?;
    let pair =
        Ed25519KeyPair::from_pkcs8(pkcs8.as_ref()).map_err(|_| anyhow::anyhow!("reading the new key"))?;
    let kid = uuid::Uuid::now_v7().to_string();
    let inserted = sqlx::query(
        "INSERT INTO signing_keys (kid, private_key, public_key, created_at) \
         SELECT $1, $2, $3, $4 WHERE NOT EXISTS (SELECT 1 FROM signing_keys WHERE signs = 1 AND created_at > $5)",
    )
    .bind(&kid)
    .bind(STANDARD.encode(pkcs8.as_ref()))
    .bind(URL_SAFE_NO_PAD.encode(pair.public_key().as_ref()))
    .bind(now)
    .bind(unless_newer_than.unwrap_or(i64::MAX))
    .execute(&db.pool)
    .await
    .context("storing the signing key")?
    .rows_affected();
    Ok((inserted == 1).then_some(kid))
}

/// Every stored key, oldest first.
async fn stored(db: &Db) -> anyhow::Result<Vec<StoredKey>> {
    let rows = sqlx::query(
        "SELECT kid, private_key, public_key, created_at, signs FROM signing_keys ORDER BY created_at, kid",
    )
    .fetch_all(&db.pool)
    .await
    .context("loading signing keys")?;
    rows.iter()
        .map(|row| {
            Ok(StoredKey {
                kid: row.try_get("kid")?,
                private_key: row.try_get("private_key")?,
                public_key: row.try_get("public_key")?,
                created_at: row.try_get("created_at")?,
                signs: row.try_get::<i64, _>("signs")? != 0,
            })
        })
        .collect()
}

/// The key that signs at `now`: the newest one published for the activation delay, or, when
/// none has been (a new deployment), the oldest.
fn signer(keys: &[StoredKey], policy: KeyPolicy, now: i64) -> Option<&StoredKey> {
    let mut signing = keys.iter().filter(|k| k.signs);
    keys.iter()
        .rev()
        .filter(|k| k.signs)
        .find(|k| k.created_at <= now - policy.activation_ms)
        .or_else(|| signing.next())
}

/// Keys every token of which has expired at `now`: each stopped signing when the next key
/// started, and its longest-lived token has run out since.
fn retired(keys: &[StoredKey], policy: KeyPolicy, now: i64) -> Vec<&StoredKey> {
    let signing = signer(keys, policy, now).map(|k| k.kid.as_str());
    keys.windows(2)
        .filter(|pair| {
            let stopped_signing = pair[1].created_at + policy.activation_ms;
            stopped_signing + policy.longest_token_ms + EXPIRY_LEEWAY_MS < now
        })
        .map(|pair| &pair[0])
        .filter(|k| Some(k.kid.as_str()) != signing)
        .collect()
}

fn key_set(keys: &[StoredKey], policy: KeyPolicy, now: i64) -> anyhow::Result<Option<KeySet>> {
    let Some(signing) = signer(keys, policy, now) else {
        return Ok(None);
    };
    let gone: Vec<&str> = retired(keys, policy, now).iter().map(|k| k.kid.as_str()).collect();
    let der = STANDARD.decode(&signing.private_key).context("stored key is not base64")?;
    let jwks = Jwks {
        keys: keys
            .iter()
            .rev()
            .filter(|k| !gone.contains(&k.kid.as_str()))
            .map(|k| Jwk {
                kty: "OKP".into(),
                crv: "Ed25519".into(),
                x: k.public_key.clone(),
                kid: k.kid.clone(),
                alg: "EdDSA".into(),
                use_: "sig".into(),
            })
            .collect(),
    };
    Ok(Some(KeySet { kid: signing.kid.clone(), key: EncodingKey::from_ed_der(&der), jwks }))
}

/// identity's own verifier goes back to the database for keys it has not seen.
pub struct StoredKeys(pub Arc<SigningKeys>);

#[async_trait::async_trait]
impl platform::auth::KeySource for StoredKeys {
    async fn fetch(&self) -> anyhow::Result<Jwks> {
        self.0.published(now_ms()).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(kid: &str, created_at: i64) -> StoredKey {
        StoredKey {
            kid: kid.into(),
            private_key: String::new(),
            public_key: String::new(),
            created_at,
            signs: true,
        }
    }

    const MIN: i64 = 60_000;

    fn policy() -> KeyPolicy {
        KeyPolicy { activation_ms: MIN, rotate_after_ms: 1000 * MIN, longest_token_ms: 15 * MIN }
    }

    #[test]
    fn a_new_key_signs_once_published_for_the_activation_delay() {
        let keys = [key("old", 0), key("new", 100 * MIN)];
        let at = |now| signer(&keys, policy(), now).map(|k| k.kid.as_str());
        assert_eq!(at(100 * MIN), Some("old"), "just made: published, not signing");
        assert_eq!(at(101 * MIN - 1), Some("old"));
        assert_eq!(at(101 * MIN), Some("new"));
        assert_eq!(
            signer(&keys[1..], policy(), 100 * MIN).map(|k| k.kid.as_str()),
            Some("new"),
            "the only key"
        );
    }

    #[test]
    fn an_old_key_is_retired_once_its_last_token_has_expired() {
        let keys = [key("old", 0), key("new", 100 * MIN)];
        // "old" signed until 101 min; its last token expires at 116 min, plus the leeway.
        let gone = |now| retired(&keys, policy(), now).iter().map(|k| k.kid.clone()).collect::<Vec<_>>();
        assert!(gone(116 * MIN).is_empty());
        assert!(gone(117 * MIN).is_empty(), "the leeway");
        assert_eq!(gone(117 * MIN + 1), ["old"]);
        assert!(retired(&keys[1..], policy(), 10_000 * MIN).is_empty(), "the signing key never retires");
    }

    /// Issue 15: a restore merged the backup's keys, older by their creation times than the new
    /// system's young key; the fallback for "none published long enough" picked the oldest, a
    /// key no verifier had seen, and tokens failed with "unknown signing key".
    #[test]
    fn a_restored_key_is_published_but_never_signs() {
        let restored = StoredKey { signs: false, ..key("restored", 0) };
        let keys = [restored, key("ours", 100 * MIN)];
        for now in [100 * MIN, 100 * MIN + 30_000, 200 * MIN] {
            assert_eq!(signer(&keys, policy(), now).map(|k| k.kid.as_str()), Some("ours"), "at {now}");
        }
        let set = key_set(&keys, policy(), 100 * MIN).expect("a step of the test").expect("a key set");
        assert_eq!(set.kid, "ours");
        let published: Vec<&str> = set.jwks.keys.iter().map(|k| k.kid.as_str()).collect();
        assert_eq!(published, ["ours", "restored"], "both published");
    }
}

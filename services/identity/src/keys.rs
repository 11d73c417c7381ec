//! The Ed25519 keys identity signs access tokens with. They live in identity's database so they
//! survive restarts and are shared by its replicas; the newest signs and all are published.

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

pub struct SigningKeys {
    kid: String,
    key: EncodingKey,
    jwks: Jwks,
}

impl SigningKeys {
    /// Load the keys, making the first one when there is none. Two replicas starting on an empty
    /// database may both make one; both end up published and the newest signs everywhere.
    pub async fn load_or_create(db: &Db) -> anyhow::Result<Self> {
        if let Some(keys) = Self::load(db).await? {
            return Ok(keys);
        }
        Self::rotate(db).await
    }

    /// Make a new key; it signs from the next start on (and at once in replicas that load it),
    /// while tokens signed with the older keys stay valid because those stay published.
    pub async fn rotate(db: &Db) -> anyhow::Result<Self> {
        let pkcs8 = Ed25519KeyPair::generate_pkcs8(&SystemRandom::new())
            .map_err(|_| anyhow::anyhow!("key generation"))?;
        let pair =
            Ed25519KeyPair::from_pkcs8(pkcs8.as_ref()).map_err(|_| anyhow::anyhow!("reading the new key"))?;
        sqlx::query(
            "INSERT INTO signing_keys (kid, private_key, public_key, created_at) VALUES ($1, $2, $3, $4)",
        )
        .bind(uuid::Uuid::now_v7().to_string())
        .bind(STANDARD.encode(pkcs8.as_ref()))
        .bind(URL_SAFE_NO_PAD.encode(pair.public_key().as_ref()))
        .bind(now_ms())
        .execute(&db.pool)
        .await
        .context("storing the signing key")?;
        Self::load(db).await?.context("the signing key vanished")
    }

    async fn load(db: &Db) -> anyhow::Result<Option<Self>> {
        let rows = sqlx::query(
            "SELECT kid, private_key, public_key FROM signing_keys ORDER BY created_at DESC, kid DESC",
        )
        .fetch_all(&db.pool)
        .await
        .context("loading signing keys")?;
        let mut jwks = Jwks::default();
        let mut active = None;
        for row in &rows {
            let kid: String = row.try_get("kid")?;
            let public: String = row.try_get("public_key")?;
            if active.is_none() {
                let private: String = row.try_get("private_key")?;
                let der = STANDARD.decode(private).context("stored key is not base64")?;
                active = Some((kid.clone(), EncodingKey::from_ed_der(&der)));
            }
            jwks.keys.push(Jwk {
                kty: "OKP".into(),
                crv: "Ed25519".into(),
                x: public,
                kid,
                alg: "EdDSA".into(),
                use_: "sig".into(),
            });
        }
        Ok(active.map(|(kid, key)| Self { kid, key, jwks }))
    }

    pub fn jwks(&self) -> &Jwks {
        &self.jwks
    }

    /// Every stored public key, as published: read each time, so a key another replica made
    /// since this one started is published here too.
    pub async fn published(db: &Db) -> anyhow::Result<Jwks> {
        Ok(Self::load(db).await?.map(|k| k.jwks).unwrap_or_default())
    }

    /// Sign an access token for `sub` valid for `ttl_secs`.
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
        let mut header = Header::new(Algorithm::EdDSA);
        header.kid = Some(self.kid.clone());
        jsonwebtoken::encode(&header, &claims, &self.key).context("signing a token")
    }
}

/// identity's own verifier goes back to the database for keys it has not seen.
pub struct StoredKeys(pub Db);

#[async_trait::async_trait]
impl platform::auth::KeySource for StoredKeys {
    async fn fetch(&self) -> anyhow::Result<Jwks> {
        SigningKeys::published(&self.0).await
    }
}

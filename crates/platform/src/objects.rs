//! The object store media and backups live in (`MARQUEE_OBJECT_STORE`): a directory (by default `objects/`
//! under the data dir) or S3 (`s3://bucket/prefix`, configured by the usual `AWS_*` variables;
//! `AWS_ENDPOINT_URL` or `MARQUEE_S3_ENDPOINT` points it at another S3 API such as MinIO or moto,
//! and `MARQUEE_S3_*` settings override the `AWS_*` ones, so marquee.toml can hold them too).

use std::{path::PathBuf, sync::Arc};

use anyhow::Context;
use object_store::{ObjectStore, aws::AmazonS3Builder, local::LocalFileSystem, prefix::PrefixStore};

/// The store and what to call it in logs.
#[derive(Clone)]
pub struct Objects {
    pub store: Arc<dyn ObjectStore>,
    pub describe: String,
}

impl Objects {
    pub fn from_settings(settings: &crate::Settings) -> anyhow::Result<Self> {
        Self::from_settings_or(settings, "MARQUEE_OBJECT_STORE")
    }

    /// The store `key` names (`MARQUEE_BACKUP_STORE`: backups elsewhere than media), else the
    /// object store.
    pub fn from_settings_or(settings: &crate::Settings, key: &str) -> anyhow::Result<Self> {
        let configured = [key, "MARQUEE_OBJECT_STORE"]
            .into_iter()
            .find_map(|k| settings.get(k).map(str::trim).filter(|s| !s.is_empty()));
        match configured {
            Some(url) if url.starts_with("s3://") => Self::s3(url, settings),
            Some(url) => Self::directory(PathBuf::from(url.strip_prefix("file://").unwrap_or(url))),
            None => {
                let data = settings.get("MARQUEE_DATA_DIR").unwrap_or("./data");
                Self::directory(PathBuf::from(data).join("objects"))
            }
        }
    }

    pub fn directory(dir: PathBuf) -> anyhow::Result<Self> {
        std::fs::create_dir_all(&dir)
            .with_context(|| format!("creating the object store {}", dir.display()))?;
        let dir = dir.canonicalize().with_context(|| format!("resolving {}", dir.display()))?;
        let store = LocalFileSystem::new_with_prefix(&dir)?;
        Ok(Self { store: Arc::new(store), describe: dir.display().to_string() })
    }

    /// `s3://bucket/prefix`. Credentials, region and endpoint come from the environment
    /// (`AWS_ACCESS_KEY_ID`, `AWS_SECRET_ACCESS_KEY`, `AWS_REGION`, `AWS_ENDPOINT_URL`) or from
    /// the `MARQUEE_S3_*` settings of the same names; plain HTTP is allowed only when the
    /// endpoint asks for it (a local S3 API in tests).
    pub fn s3(url: &str, settings: &crate::Settings) -> anyhow::Result<Self> {
        let rest = url.strip_prefix("s3://").unwrap_or(url);
        let (bucket, prefix) = rest.split_once('/').unwrap_or((rest, ""));
        anyhow::ensure!(!bucket.is_empty(), "MARQUEE_OBJECT_STORE {url:?} names no bucket");
        let setting =
            |key: &str| settings.get(key).map(str::trim).filter(|v| !v.is_empty()).map(str::to_owned);
        let mut builder = AmazonS3Builder::from_env().with_bucket_name(bucket);
        if let Some(v) = setting("MARQUEE_S3_ACCESS_KEY_ID") {
            builder = builder.with_access_key_id(v);
        }
        if let Some(v) = setting("MARQUEE_S3_SECRET_ACCESS_KEY") {
            builder = builder.with_secret_access_key(v);
        }
        if let Some(v) = setting("MARQUEE_S3_REGION") {
            builder = builder.with_region(v);
        }
        let endpoint = setting("MARQUEE_S3_ENDPOINT")
            .or_else(|| std::env::var("AWS_ENDPOINT_URL").ok())
            .or_else(|| std::env::var("AWS_ENDPOINT").ok())
            .filter(|e| !e.trim().is_empty());
        if let Some(endpoint) = endpoint {
            builder = builder.with_allow_http(endpoint.starts_with("http://")).with_endpoint(endpoint.trim());
        }
        let s3 = builder.build().with_context(|| format!("configuring S3 for {url}"))?;
        let prefix = prefix.trim_matches('/');
        let store: Arc<dyn ObjectStore> =
            if prefix.is_empty() { Arc::new(s3) } else { Arc::new(PrefixStore::new(s3, prefix)) };
        Ok(Self { store, describe: url.to_owned() })
    }
}

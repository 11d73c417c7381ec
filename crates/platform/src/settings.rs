//! Configuration as a map of `MARQUEE_*` names to values.
//!
//! Sources, strongest first: command-line flags (applied by the binary), `MARQUEE_*` environment
//! variables, then an optional `marquee.toml` (`MARQUEE_CONFIG` names another path), whose keys
//! are the variable names without `MARQUEE_`, lowercase, tables joining with `_`:
//! `[identity] database_url = "..."` is `MARQUEE_IDENTITY_DATABASE_URL`.
//!
//! A map rather than a struct per service because tests start many systems in one process, where
//! the process environment cannot differ between them; the binary fills it from the environment,
//! tests fill it by hand, and every service reads the same names either way.

use std::{collections::BTreeMap, path::Path, str::FromStr, time::Duration};

use anyhow::Context;

#[derive(Debug, Clone, Default)]
pub struct Settings(BTreeMap<String, String>);

impl Settings {
    /// Every `MARQUEE_*` variable of the process environment.
    pub fn from_env() -> Self {
        Self(std::env::vars().filter(|(k, _)| k.starts_with("MARQUEE_")).collect())
    }

    /// The environment over `marquee.toml` (or the file `MARQUEE_CONFIG` names; that one must
    /// exist). A missing default file is fine: the file is optional.
    pub fn load() -> anyhow::Result<Self> {
        let env = Self::from_env();
        let (path, required) = match env.get("MARQUEE_CONFIG") {
            Some(p) => (p.to_owned(), true),
            None => ("marquee.toml".to_owned(), false),
        };
        let path = Path::new(&path);
        if !path.exists() {
            anyhow::ensure!(!required, "MARQUEE_CONFIG names {}, which does not exist", path.display());
            return Ok(env);
        }
        let text = std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
        let mut settings = Self::from_toml(&text).with_context(|| format!("in {}", path.display()))?;
        settings.0.extend(env.0);
        Ok(settings)
    }

    /// Settings from TOML text (see the module docs for the naming).
    pub fn from_toml(text: &str) -> anyhow::Result<Self> {
        fn scalar(value: &toml::Value) -> anyhow::Result<String> {
            Ok(match value {
                toml::Value::String(s) => s.clone(),
                toml::Value::Integer(i) => i.to_string(),
                toml::Value::Float(f) => f.to_string(),
                toml::Value::Boolean(b) => b.to_string(),
                toml::Value::Datetime(d) => d.to_string(),
                // Several URLs of one service, for instance.
                toml::Value::Array(items) => {
                    items.iter().map(scalar).collect::<anyhow::Result<Vec<_>>>()?.join(",")
                }
                toml::Value::Table(_) => anyhow::bail!("a table where a value was expected"),
            })
        }
        fn flatten(
            prefix: &str,
            table: &toml::Table,
            out: &mut BTreeMap<String, String>,
        ) -> anyhow::Result<()> {
            for (key, value) in table {
                let name = format!("{prefix}_{}", key.to_ascii_uppercase().replace('-', "_"));
                match value {
                    toml::Value::Table(inner) => flatten(&name, inner, out)?,
                    other => {
                        out.insert(name.clone(), scalar(other).with_context(|| name)?);
                    }
                }
            }
            Ok(())
        }
        let table: toml::Table = toml::from_str(text)?;
        let mut out = BTreeMap::new();
        flatten("MARQUEE", &table, &mut out)?;
        Ok(Self(out))
    }

    pub fn set(&mut self, key: impl Into<String>, value: impl Into<String>) -> &mut Self {
        self.0.insert(key.into(), value.into());
        self
    }

    pub fn with(mut self, key: impl Into<String>, value: impl Into<String>) -> Self {
        self.set(key, value);
        self
    }

    /// The value, when set and not blank.
    pub fn get(&self, key: &str) -> Option<&str> {
        self.0.get(key).map(|v| v.trim()).filter(|v| !v.is_empty())
    }

    /// A parsed value; a value that does not parse is a start-up error naming the variable.
    pub fn parse<T: FromStr>(&self, key: &str) -> anyhow::Result<Option<T>>
    where
        T::Err: std::fmt::Display,
    {
        match self.get(key) {
            None => Ok(None),
            Some(raw) => {
                raw.parse().map(Some).map_err(|e| anyhow::anyhow!("{key}={raw:?} is not valid: {e}"))
            }
        }
    }

    pub fn parse_or<T: FromStr>(&self, key: &str, default: T) -> anyhow::Result<T>
    where
        T::Err: std::fmt::Display,
    {
        Ok(self.parse(key)?.unwrap_or(default))
    }

    pub fn seconds_or(&self, key: &str, default: u64) -> anyhow::Result<Duration> {
        Ok(Duration::from_secs(self.parse_or(key, default)?))
    }

    /// `MARQUEE_<SERVICE>_<SUFFIX>`, e.g. `service_key("identity", "URL")`.
    pub fn service_key(service: &str, suffix: &str) -> String {
        format!("MARQUEE_{}_{suffix}", service.to_ascii_uppercase())
    }

    /// Base URLs of another service: `MARQUEE_<SERVICE>_URL`, comma-separated for replicas.
    pub fn service_urls(&self, service: &str) -> Vec<String> {
        self.get(&Self::service_key(service, "URL"))
            .map(|v| {
                v.split(',')
                    .map(|u| u.trim().trim_end_matches('/').to_owned())
                    .filter(|u| !u.is_empty())
                    .collect()
            })
            .unwrap_or_default()
    }

    /// The first base URL of another service.
    pub fn service_url(&self, service: &str) -> Option<String> {
        self.service_urls(service).into_iter().next()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn blank_values_count_as_unset_and_bad_numbers_name_the_variable() {
        let s = Settings::default().with("MARQUEE_A", " ").with("MARQUEE_N", "x1");
        assert_eq!(s.get("MARQUEE_A"), None);
        let err = s.parse::<u32>("MARQUEE_N").expect_err("not a number");
        assert!(err.to_string().contains("MARQUEE_N"));
    }

    #[test]
    fn toml_keys_become_variable_names() {
        let s = Settings::from_toml(
            "port = 9000\ndata_dir = \"/srv/marquee\"\n[identity]\ndatabase_url = \"postgres://h/id\"\n\
             [catalog]\nurl = [\"http://a\", \"http://b\"]\n",
        )
        .expect("valid TOML");
        assert_eq!(s.get("MARQUEE_PORT"), Some("9000"));
        assert_eq!(s.get("MARQUEE_DATA_DIR"), Some("/srv/marquee"));
        assert_eq!(s.get("MARQUEE_IDENTITY_DATABASE_URL"), Some("postgres://h/id"));
        assert_eq!(s.service_urls("catalog"), vec!["http://a", "http://b"]);
        assert!(Settings::from_toml("port = ").is_err());
    }

    #[test]
    fn service_urls_are_split_and_trimmed() {
        let s = Settings::default().with("MARQUEE_CATALOG_URL", "http://a:1/, http://b:2");
        assert_eq!(s.service_urls("catalog"), vec!["http://a:1", "http://b:2"]);
        assert_eq!(s.service_url("identity"), None);
    }
}

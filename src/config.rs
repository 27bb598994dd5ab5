//! One typed configuration, read once from the environment at start. Every secret may
//! also come from `NAME_FILE`; setting both is a start-up error.

use std::net::IpAddr;
use std::path::PathBuf;
use std::time::Duration;

use anyhow::{bail, Context};
use secrecy::SecretString;

mod oidc;
pub use oidc::OidcConfig;

#[derive(Debug, Clone)]
pub struct Config {
    pub database_url: SecretString,
    /// `NATS_URL` as given: one URL or several, comma-separated (the nodes of a cluster).
    pub nats_url: String,
    pub nats_namespace: String,
    /// `num_replicas` of every stream the topology creates (`NATS_STREAM_REPLICAS`).
    pub nats_stream_replicas: usize,
    /// How long `EVENTS` keeps a message (`EVENTS_MAX_AGE_SECS`, default 30 days; 0 keeps
    /// every message). A projector behind by more re-feeds the gap from the log.
    pub events_max_age: Duration,
    /// NATS user of this process (`NATS_USER` + `NATS_PASSWORD`); unset = no auth.
    pub nats_user: Option<String>,
    pub nats_password: Option<SecretString>,
    pub jwt_secret: Option<SecretString>,
    pub internal_service_secret: Option<SecretString>,
    pub stream_signing_secret: Option<SecretString>,
    pub s3_endpoint: Option<String>,
    pub s3_bucket: String,
    pub s3_region: String,
    pub s3_access_key: Option<SecretString>,
    pub s3_secret_key: Option<SecretString>,
    pub object_store_dir: PathBuf,
    /// `IMPORT_ALLOW_PRIVATE_NETWORKS`: import from loopback/private addresses (tests).
    pub import_allow_private_networks: bool,
    pub import_max_duration: Duration,
    /// Largest download an import may fetch.
    pub import_max_bytes: u64,
    /// Largest file `POST /songs/upload` accepts.
    pub upload_max_bytes: u64,
    /// `SEARCH_PER_MINUTE`: searches one user may send to YouTube a minute.
    pub search_per_minute: u32,
    /// `SEARCH_CACHE_SECONDS`: how long a search's results are reused (0: not at all).
    pub search_cache_ttl: Duration,
    /// Imports one downloader runs at once (default: the CPU count).
    pub download_concurrency: usize,
    /// `IMPORT_COLLECTION_MAX_ENTRIES`: entries one playlist/channel import takes (1 to
    /// 5,000, default 2,000).
    pub import_collection_max_entries: usize,
    /// `IMPORT_MAX_JOBS_PER_USER`: unfinished import jobs one user may have (default 2,500).
    pub import_max_jobs_per_user: usize,
    /// `IMPORT_MAX_TRACKS_PER_USER`: tracks one user's library may hold, imports in
    /// progress counted (0 or unset: no limit; ADR 41).
    pub import_max_tracks_per_user: Option<u64>,
    /// `IMPORT_MAX_BYTES_PER_USER`: stored bytes of the tracks in one user's library (0 or
    /// unset: no limit; ADR 41).
    pub import_max_bytes_per_user: Option<u64>,
    /// `SUBSCRIPTION_CHECK_INTERVAL_SECS`: time between a subscription's checks, ± 10%
    /// (default 6 hours; ADR 40).
    pub subscription_check_interval: Duration,
    /// `SUBSCRIPTION_MAX_CONCURRENT_CHECKS`: checks one downloader runs at once (default 2).
    pub subscription_max_concurrent_checks: usize,
    /// `SUBSCRIPTION_BACKOFF_BASE_SECS` / `SUBSCRIPTION_BACKOFF_MAX_SECS`: the wait after a
    /// failed check, doubled for each failure in a row up to the max (15 min, 24 h).
    pub subscription_backoff_base: Duration,
    pub subscription_backoff_max: Duration,
    /// `SUBSCRIPTION_MAX_PER_USER`: subscriptions one user may have (default 100).
    pub subscription_max_per_user: usize,
    /// Deliveries of one import before a transient failure is final.
    pub import_max_attempts: i64,
    /// First retry delay of a transient import failure (doubled each time).
    pub import_retry_base: Duration,
    /// Parent of the downloader's job folders (the system temp folder when unset).
    pub import_work_dir: Option<PathBuf>,
    /// YouTube Data API v3 key; without one, search runs yt-dlp's `ytsearch`.
    pub youtube_api_key: Option<SecretString>,
    pub youtube_api_base_url: String,
    pub bind_address: IpAddr,
    pub api_port: u16,
    pub web_port: u16,
    pub stream_port: u16,
    /// `/healthz`, `/readyz` and `/metrics` of every role in the process (`HEALTH_PORT`);
    /// never published by the edge proxy. 0 (the default) picks a free port, so several
    /// processes on one machine do not collide; the image sets 9090.
    pub health_port: u16,
    pub public_stream_base_url: String,
    /// How long a signed stream URL stays valid (`STREAM_URL_TTL_S`, default 300).
    pub stream_url_ttl: std::time::Duration,
    pub admin_bootstrap_email: Option<String>,
    pub email_verify_required: bool,
    pub expose_verification_token: bool,
    pub app_domain: String,
    /// Where people reach the web app; links in mails start here.
    pub public_base_url: String,
    /// Origins allowed to call the cookie-authenticated endpoints (refresh, logout).
    pub allowed_origins: Vec<String>,
    /// `Secure` on the refresh cookie (and its `__Secure-` name); off only on plain-http dev.
    pub cookie_secure: bool,
    pub jwt_issuer: String,
    pub jwt_audience: String,
    pub access_token_ttl: Duration,
    /// Absolute lifetime of a session (refresh-token family).
    pub session_ttl: Duration,
    pub verification_token_ttl: Duration,
    /// How long a mailed password reset link works.
    pub password_reset_token_ttl: Duration,
    /// How long after a refresh the token it replaced still gets the same new one (two
    /// tabs refreshing at once; ADR 29). 0: every reuse revokes the session.
    pub refresh_grace: Duration,
    /// `smtp://user:pass@host:port`, `smtp://host:port?tls=required` or `smtps://...`.
    pub smtp_url: Option<SecretString>,
    pub mail_from: String,
    pub google_client_id: Option<String>,
    pub google_client_secret: Option<SecretString>,
    pub google_redirect_url: Option<String>,
    pub google_auth_url: String,
    pub google_token_url: String,
    pub google_jwks_url: String,
    pub google_issuer: String,
    /// Where the browser lands after a sign-in with Google or another OpenID Connect
    /// provider (`OIDC_SUCCESS_REDIRECT`, formerly `GOOGLE_SUCCESS_REDIRECT`).
    pub google_success_redirect: String,
    /// `OIDC_*`: OpenID Connect providers other than the Google preset (ADR 44).
    pub oidc_providers: Vec<OidcConfig>,
    pub rate_limit_window: Duration,
    pub rate_limit_per_account: u32,
    pub rate_limit_per_address: u32,
    /// How long a request waits for its command's outcome before answering 202.
    pub command_wait: Duration,
    /// How long a read that passes a position (`?after=`) waits for the read models to
    /// reach it before answering 503.
    pub read_wait: Duration,
    /// Where `jukebox dev` keeps a local Postgres and NATS it had to start.
    pub dev_data_dir: PathBuf,
    /// Fail points for fault tests (`name=N,...`); empty in production.
    pub failpoints: String,
    /// How long JetStream waits for an ack before redelivering (`ACK_WAIT_MS`, default
    /// 30 s; the fault suite shortens it so a killed role's messages come back quickly).
    pub ack_wait: Duration,
    /// Group-commit workers (`COMMIT_GROUP_WORKERS`, default 4; 0 commits every step alone).
    pub commit_group_workers: usize,
    /// Group-load workers (`LOAD_GROUP_WORKERS`, default 2; 0 loads every step alone).
    pub load_group_workers: usize,
    /// Connections of each process' shared pool to Postgres (`DATABASE_MAX_CONNECTIONS`,
    /// default 32); a process running the processor adds a third of it for the
    /// processor's own pool (ADR 48). Idle ones close after a minute.
    pub database_max_connections: u32,
}

impl Config {
    /// The object store: S3 when `S3_ENDPOINT` is set, else the folder `OBJECT_STORE_DIR`.
    pub fn store_config(&self) -> anyhow::Result<jukebox_handlers::storage::StoreConfig> {
        use jukebox_handlers::storage::{S3Config, StoreConfig};
        Ok(match &self.s3_endpoint {
            None => StoreConfig::Local {
                dir: self.object_store_dir.clone(),
            },
            Some(endpoint) => StoreConfig::S3(S3Config {
                endpoint: endpoint.clone(),
                bucket: self.s3_bucket.clone(),
                region: self.s3_region.clone(),
                access_key: self.s3_access_key.clone().context(
                    "S3_ENDPOINT is set: S3_ACCESS_KEY (or S3_ACCESS_KEY_FILE) is required",
                )?,
                secret_key: self.s3_secret_key.clone().context(
                    "S3_ENDPOINT is set: S3_SECRET_KEY (or S3_SECRET_KEY_FILE) is required",
                )?,
            }),
        })
    }

    pub fn from_env() -> anyhow::Result<Self> {
        Self::from_lookup(|name| std::env::var(name).ok())
    }

    /// Reads the configuration through `lookup` (the environment, or a map in tests).
    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> anyhow::Result<Self> {
        let env = Env { lookup: &lookup };
        let api_port = env.parse("API_PORT", 8000)?;
        let stream_port: u16 = env.parse("STREAM_PORT", 8005)?;
        let app_domain = env.string("APP_DOMAIN", "localhost");
        let web_port: u16 = env.parse("WEB_PORT", 3000)?;
        let public_base_url = env
            .string(
                "PUBLIC_BASE_URL",
                &format!("http://{app_domain}:{web_port}"),
            )
            .trim_end_matches('/')
            .to_owned();
        let oidc_providers = oidc::providers(&env, &public_base_url)?;
        let allowed_origins = match env.optional("ALLOWED_ORIGINS") {
            Some(list) => list
                .split(',')
                .map(|o| o.trim().trim_end_matches('/').to_owned())
                .filter(|o| !o.is_empty())
                .collect(),
            None => default_origins(&public_base_url, &app_domain, web_port, api_port),
        };
        let secs = |name: &str, default: u64| -> anyhow::Result<Duration> {
            Ok(Duration::from_secs(env.parse(name, default)?))
        };
        let nats_user = nats_user(&env)?;
        let nats_password = env.secret("NATS_PASSWORD")?;
        if nats_user.is_some() != nats_password.is_some() {
            bail!("set both NATS_USER and NATS_PASSWORD (or NATS_PASSWORD_FILE), or neither");
        }
        Ok(Self {
            database_url: database_url(&env)?,
            nats_url: nats_url(&env)?,
            nats_namespace: env.string("NATS_NAMESPACE", ""),
            nats_stream_replicas: match env.parse("NATS_STREAM_REPLICAS", 1usize)? {
                n @ 1..=5 => n,
                n => bail!("NATS_STREAM_REPLICAS={n}: JetStream allows 1 to 5 replicas"),
            },
            events_max_age: Duration::from_secs(env.parse(
                "EVENTS_MAX_AGE_SECS",
                jukebox_nats::DEFAULT_EVENTS_MAX_AGE.as_secs(),
            )?),
            nats_user,
            nats_password,
            jwt_secret: env.secret("JWT_SECRET")?,
            internal_service_secret: env.secret("INTERNAL_SERVICE_SECRET")?,
            stream_signing_secret: env.secret("STREAM_SIGNING_SECRET")?,
            s3_endpoint: env.optional("S3_ENDPOINT"),
            s3_bucket: env.string("S3_BUCKET", "jukebox"),
            s3_region: env.string("S3_REGION", "us-east-1"),
            s3_access_key: env.secret("S3_ACCESS_KEY")?,
            s3_secret_key: env.secret("S3_SECRET_KEY")?,
            object_store_dir: env.string("OBJECT_STORE_DIR", ".dev-data/objects").into(),
            import_allow_private_networks: env.flag("IMPORT_ALLOW_PRIVATE_NETWORKS")?,
            import_max_duration: secs("IMPORT_MAX_DURATION_S", 3600)?,
            import_max_bytes: env.parse("IMPORT_MAX_BYTES", 300 << 20)?,
            upload_max_bytes: env.parse("UPLOAD_MAX_BYTES", 200 << 20)?,
            search_per_minute: env.parse("SEARCH_PER_MINUTE", 20u32)?.max(1),
            search_cache_ttl: Duration::from_secs(env.parse("SEARCH_CACHE_SECONDS", 300)?),
            download_concurrency: match env.parse("DOWNLOAD_CONCURRENCY", 0usize)? {
                0 => std::thread::available_parallelism().map_or(2, |n| n.get()),
                n => n,
            },
            import_collection_max_entries: match env
                .parse("IMPORT_COLLECTION_MAX_ENTRIES", 2_000usize)?
            {
                n @ 1..=jukebox_domain::collection::MAX_ENTRIES => n,
                n => bail!("IMPORT_COLLECTION_MAX_ENTRIES={n}: use 1 to 5000"),
            },
            import_max_jobs_per_user: env.parse("IMPORT_MAX_JOBS_PER_USER", 2_500usize)?.max(1),
            import_max_tracks_per_user: Some(env.parse("IMPORT_MAX_TRACKS_PER_USER", 0u64)?)
                .filter(|n| *n > 0),
            import_max_bytes_per_user: Some(env.parse("IMPORT_MAX_BYTES_PER_USER", 0u64)?)
                .filter(|n| *n > 0),
            subscription_check_interval: secs("SUBSCRIPTION_CHECK_INTERVAL_SECS", 6 * 3600)?
                .max(Duration::from_secs(1)),
            subscription_max_concurrent_checks: env
                .parse("SUBSCRIPTION_MAX_CONCURRENT_CHECKS", 2usize)?
                .max(1),
            subscription_backoff_base: secs("SUBSCRIPTION_BACKOFF_BASE_SECS", 900)?
                .max(Duration::from_secs(1)),
            subscription_backoff_max: secs("SUBSCRIPTION_BACKOFF_MAX_SECS", 86_400)?
                .max(Duration::from_secs(1)),
            subscription_max_per_user: env.parse("SUBSCRIPTION_MAX_PER_USER", 100usize)?.max(1),
            import_max_attempts: env.parse("IMPORT_MAX_ATTEMPTS", 5i64)?.max(1),
            import_retry_base: Duration::from_millis(env.parse("IMPORT_RETRY_BASE_MS", 5_000)?),
            import_work_dir: env.optional("IMPORT_WORK_DIR").map(PathBuf::from),
            youtube_api_key: env.secret("YOUTUBE_API_KEY")?,
            youtube_api_base_url: env
                .string(
                    "YOUTUBE_API_BASE_URL",
                    "https://www.googleapis.com/youtube/v3",
                )
                .trim_end_matches('/')
                .to_owned(),
            bind_address: env.parse("BIND_ADDRESS", IpAddr::from([127, 0, 0, 1]))?,
            api_port,
            web_port,
            stream_port,
            health_port: env.parse("HEALTH_PORT", 0)?,
            public_stream_base_url: env
                .string(
                    "PUBLIC_STREAM_BASE_URL",
                    &format!("http://{app_domain}:{stream_port}"),
                )
                .trim_end_matches('/')
                .to_owned(),
            stream_url_ttl: std::time::Duration::from_secs(env.parse("STREAM_URL_TTL_S", 300)?),
            admin_bootstrap_email: env.optional("ADMIN_BOOTSTRAP_EMAIL"),
            email_verify_required: env.flag("EMAIL_VERIFY_REQUIRED")?,
            expose_verification_token: env.flag("EXPOSE_VERIFICATION_TOKEN")?,
            mail_from: env.string("MAIL_FROM", &format!("Jukebox <jukebox@{app_domain}>")),
            app_domain,
            public_base_url,
            allowed_origins,
            cookie_secure: env.optional("COOKIE_SECURE").is_none() || env.flag("COOKIE_SECURE")?,
            jwt_issuer: env.string("JWT_ISSUER", "jukebox"),
            jwt_audience: env.string("JWT_AUDIENCE", "jukebox-api"),
            access_token_ttl: secs("ACCESS_TOKEN_TTL_SECS", 900)?,
            session_ttl: secs("SESSION_TTL_SECS", 30 * 24 * 3600)?,
            verification_token_ttl: secs("VERIFICATION_TOKEN_TTL_SECS", 24 * 3600)?,
            password_reset_token_ttl: secs("PASSWORD_RESET_TOKEN_TTL_SECS", 3600)?,
            refresh_grace: Duration::from_millis(
                env.parse("REFRESH_GRACE_MS", 10_000u64)?.min(60_000),
            ),
            smtp_url: env.secret("SMTP_URL")?,
            google_client_id: env.optional("GOOGLE_CLIENT_ID"),
            google_client_secret: env.secret("GOOGLE_CLIENT_SECRET")?,
            google_redirect_url: env.optional("GOOGLE_REDIRECT_URL"),
            google_auth_url: env.string(
                "GOOGLE_AUTH_URL",
                "https://accounts.google.com/o/oauth2/v2/auth",
            ),
            google_token_url: env.string("GOOGLE_TOKEN_URL", "https://oauth2.googleapis.com/token"),
            google_jwks_url: env.string(
                "GOOGLE_JWKS_URL",
                "https://www.googleapis.com/oauth2/v3/certs",
            ),
            google_issuer: env.string("GOOGLE_ISSUER", "https://accounts.google.com"),
            google_success_redirect: env
                .optional("OIDC_SUCCESS_REDIRECT")
                .unwrap_or_else(|| env.string("GOOGLE_SUCCESS_REDIRECT", "/")),
            oidc_providers,
            rate_limit_window: secs("RATE_LIMIT_WINDOW_SECS", 300)?,
            rate_limit_per_account: env.parse("RATE_LIMIT_PER_ACCOUNT", 5)?,
            rate_limit_per_address: env.parse("RATE_LIMIT_PER_ADDRESS", 30)?,
            command_wait: Duration::from_millis(env.parse("COMMAND_WAIT_MS", 5_000)?),
            read_wait: Duration::from_millis(env.parse("READ_WAIT_MS", 5_000)?),
            dev_data_dir: env.string("DEV_DATA_DIR", ".dev-data").into(),
            failpoints: env.string("JUKEBOX_FAILPOINTS", ""),
            ack_wait: Duration::from_millis(env.parse("ACK_WAIT_MS", 30_000u64)?.max(100)),
            commit_group_workers: env.parse("COMMIT_GROUP_WORKERS", 4usize)?,
            load_group_workers: env.parse("LOAD_GROUP_WORKERS", 2usize)?,
            database_max_connections: env.parse("DATABASE_MAX_CONNECTIONS", 32u32)?.max(2),
        })
    }
}

impl Config {
    /// The NATS servers of `NATS_URL` (checked at load).
    pub fn nats_servers(&self) -> Vec<String> {
        split_list(&self.nats_url)
    }
}

fn split_list(list: &str) -> Vec<String> {
    list.split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(str::to_owned)
        .collect()
}

/// `NATS_URL`: one or more comma-separated server URLs, each checked here so that a typo
/// fails at start rather than on the first reconnect.
fn nats_url(env: &Env) -> anyhow::Result<String> {
    let raw = env.string("NATS_URL", "nats://127.0.0.1:4222");
    let servers = split_list(&raw);
    if servers.is_empty() {
        bail!("NATS_URL={raw:?} names no server");
    }
    for (n, server) in servers.iter().enumerate() {
        // The error does not quote the entry: a mistyped one may hold credentials.
        let addr = server
            .parse::<async_nats::ServerAddr>()
            .map_err(|e| anyhow::anyhow!("NATS_URL: server {} of the list: {e}", n + 1))?;
        if addr.has_user_pass() {
            bail!("NATS_URL must not carry credentials (they would be logged): use NATS_USER and NATS_PASSWORD or NATS_PASSWORD_FILE");
        }
    }
    Ok(servers.join(","))
}

/// `NATS_USER`; it also names this process' inbox prefix, so it must be one subject token.
fn nats_user(env: &Env) -> anyhow::Result<Option<String>> {
    let user = env.optional("NATS_USER");
    if let Some(user) = &user {
        if !user
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
        {
            bail!("NATS_USER={user:?} may only hold letters, digits, '_' and '-'");
        }
    }
    Ok(user)
}

/// `DATABASE_URL` (or `_FILE`), with the password from `DATABASE_PASSWORD` (or
/// `DATABASE_PASSWORD_FILE`, e.g. the Docker secret the postgres image reads too) put in.
fn database_url(env: &Env) -> anyhow::Result<SecretString> {
    use secrecy::ExposeSecret;
    let url = env.secret("DATABASE_URL")?.unwrap_or_else(|| {
        "postgres://postgres@127.0.0.1:5432/jukebox?sslmode=disable"
            .to_owned()
            .into()
    });
    let Some(password) = env.secret("DATABASE_PASSWORD")? else {
        return Ok(url);
    };
    // Errors must not quote the URL: it may carry a password.
    let mut parsed = url::Url::parse(url.expose_secret())
        .map_err(|e| anyhow::anyhow!("DATABASE_URL is not a URL: {e}"))?;
    if parsed.password().is_some() {
        bail!("DATABASE_URL already holds a password: drop it or DATABASE_PASSWORD");
    }
    parsed
        .set_password(Some(password.expose_secret()))
        .map_err(|()| anyhow::anyhow!("DATABASE_URL cannot hold a password (no host?)"))?;
    Ok(parsed.to_string().into())
}

/// The origins a browser shows when it is on the web app as this configuration serves
/// it: `PUBLIC_BASE_URL` and the API port, and, when that is a loopback address (a
/// development setup), every loopback name at the web and API ports too, since `jukebox
/// dev` prints `127.0.0.1` while the default base URL says `localhost`.
fn default_origins(
    public_base_url: &str,
    app_domain: &str,
    web_port: u16,
    api_port: u16,
) -> Vec<String> {
    let mut origins = vec![
        origin_of(public_base_url),
        format!("http://{app_domain}:{api_port}"),
    ];
    let loopback = url::Url::parse(public_base_url).is_ok_and(|u| match u.host() {
        Some(url::Host::Domain(d)) => d.eq_ignore_ascii_case("localhost"),
        Some(url::Host::Ipv4(ip)) => ip.is_loopback(),
        Some(url::Host::Ipv6(ip)) => ip.is_loopback(),
        None => false,
    });
    if loopback {
        for host in ["localhost", "127.0.0.1", "[::1]"] {
            for port in [web_port, api_port] {
                origins.push(format!("http://{host}:{port}"));
            }
        }
    }
    let mut seen = std::collections::HashSet::new();
    origins.retain(|o| seen.insert(o.clone()));
    origins
}

/// `scheme://host[:port]` of a URL (the browser's `Origin` for pages under it).
fn origin_of(url: &str) -> String {
    match url::Url::parse(url) {
        Ok(parsed) => parsed.origin().ascii_serialization(),
        Err(_) => url.to_owned(),
    }
}

struct Env<'a> {
    lookup: &'a dyn Fn(&str) -> Option<String>,
}

impl Env<'_> {
    fn optional(&self, name: &str) -> Option<String> {
        (self.lookup)(name).filter(|v| !v.trim().is_empty())
    }

    fn string(&self, name: &str, default: &str) -> String {
        self.optional(name).unwrap_or_else(|| default.to_owned())
    }

    fn parse<T: std::str::FromStr>(&self, name: &str, default: T) -> anyhow::Result<T>
    where
        T::Err: std::fmt::Display,
    {
        match self.optional(name) {
            None => Ok(default),
            Some(raw) => raw
                .trim()
                .parse()
                .map_err(|e| anyhow::anyhow!("{name}={raw:?} is not valid: {e}")),
        }
    }

    fn flag(&self, name: &str) -> anyhow::Result<bool> {
        match self.optional(name).as_deref().map(str::trim) {
            None | Some("0" | "false" | "no" | "off") => Ok(false),
            Some("1" | "true" | "yes" | "on") => Ok(true),
            Some(other) => bail!("{name}={other:?}: use 1 or 0"),
        }
    }

    /// `NAME` or the contents of the file named by `NAME_FILE`, never both.
    fn secret(&self, name: &str) -> anyhow::Result<Option<SecretString>> {
        let file_var = format!("{name}_FILE");
        match (self.optional(name), self.optional(&file_var)) {
            (Some(_), Some(_)) => bail!("set {name} or {file_var}, not both"),
            (Some(value), None) => Ok(Some(value.into())),
            (None, Some(path)) => {
                let value = std::fs::read_to_string(&path)
                    .with_context(|| format!("reading {file_var}={path}"))?;
                Ok(Some(value.trim_end_matches(['\n', '\r']).to_owned().into()))
            }
            (None, None) => Ok(None),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use secrecy::ExposeSecret;
    use std::collections::HashMap;

    fn config(vars: &[(&str, &str)]) -> anyhow::Result<Config> {
        let map: HashMap<String, String> = vars
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        Config::from_lookup(|name| map.get(name).cloned())
    }

    #[test]
    fn defaults_need_nothing() {
        let config = config(&[]).unwrap();
        assert_eq!(config.api_port, 8000);
        assert_eq!(config.web_port, 3000);
        assert_eq!(config.stream_port, 8005);
        assert_eq!(config.nats_namespace, "");
    }

    #[test]
    fn secrets_come_from_files_but_not_twice() {
        let dir = std::env::temp_dir().join(format!("jukebox-config-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("jwt");
        std::fs::write(&path, "from-file\n").unwrap();
        let path = path.to_str().unwrap();
        let loaded = config(&[("JWT_SECRET_FILE", path)]).unwrap();
        assert_eq!(loaded.jwt_secret.unwrap().expose_secret(), "from-file");
        let both = config(&[("JWT_SECRET_FILE", path), ("JWT_SECRET", "x")]);
        assert!(both.unwrap_err().to_string().contains("not both"));
    }

    #[test]
    fn secrets_are_redacted_in_debug() {
        let loaded = config(&[("JWT_SECRET", "hunter2hunter2")]).unwrap();
        assert!(!format!("{loaded:?}").contains("hunter2"));
    }

    #[test]
    fn origins_default_to_the_public_url_and_the_api() {
        let loaded = config(&[("PUBLIC_BASE_URL", "https://music.example.org/")]).unwrap();
        assert_eq!(loaded.public_base_url, "https://music.example.org");
        assert_eq!(
            loaded.allowed_origins,
            ["https://music.example.org", "http://localhost:8000"]
        );
        assert!(loaded.cookie_secure);
        let dev = config(&[
            ("COOKIE_SECURE", "0"),
            ("ALLOWED_ORIGINS", "http://a.test, http://b.test/"),
        ])
        .unwrap();
        assert!(!dev.cookie_secure);
        assert_eq!(dev.allowed_origins, ["http://a.test", "http://b.test"]);
    }

    #[test]
    fn development_origins_include_every_loopback_name_at_the_web_port() {
        // `jukebox dev` prints http://127.0.0.1:3000; the base URL says localhost.
        let loaded = config(&[]).unwrap();
        for origin in [
            "http://localhost:3000",
            "http://127.0.0.1:3000",
            "http://[::1]:3000",
            "http://localhost:8000",
        ] {
            assert!(
                loaded.allowed_origins.iter().any(|o| o == origin),
                "{origin} not in {:?}",
                loaded.allowed_origins
            );
        }
        let moved = config(&[("WEB_PORT", "4000")]).unwrap();
        assert!(moved
            .allowed_origins
            .iter()
            .any(|o| o == "http://127.0.0.1:4000"));
        assert!(!moved.allowed_origins.iter().any(|o| o.ends_with(":3000")));
    }

    #[test]
    fn imports_default_and_the_store_follows_s3_endpoint() {
        let loaded = config(&[]).unwrap();
        assert!(loaded.download_concurrency >= 1);
        assert!(!loaded.import_allow_private_networks);
        assert!(matches!(
            loaded.store_config().unwrap(),
            jukebox_handlers::storage::StoreConfig::Local { .. }
        ));
        let s3 = config(&[("S3_ENDPOINT", "http://127.0.0.1:9000")]).unwrap();
        assert!(s3.store_config().is_err(), "keys are required");
        let s3 = config(&[
            ("S3_ENDPOINT", "http://127.0.0.1:9000"),
            ("S3_ACCESS_KEY", "a"),
            ("S3_SECRET_KEY", "b"),
            ("DOWNLOAD_CONCURRENCY", "3"),
            ("YOUTUBE_API_BASE_URL", "http://127.0.0.1:1/v3/"),
        ])
        .unwrap();
        assert!(matches!(
            s3.store_config().unwrap(),
            jukebox_handlers::storage::StoreConfig::S3(_)
        ));
        assert_eq!(s3.download_concurrency, 3);
        assert_eq!(s3.youtube_api_base_url, "http://127.0.0.1:1/v3");
    }

    fn secret_file(name: &str, contents: &str) -> String {
        let dir = std::env::temp_dir().join(format!("jukebox-config-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join(name);
        std::fs::write(&path, contents).unwrap();
        path.to_str().unwrap().to_owned()
    }

    #[test]
    fn every_secret_reads_its_file_once_and_trims_one_line_end() {
        for name in [
            "DATABASE_URL",
            "DATABASE_PASSWORD",
            "JWT_SECRET",
            "INTERNAL_SERVICE_SECRET",
            "STREAM_SIGNING_SECRET",
            "S3_ACCESS_KEY",
            "S3_SECRET_KEY",
            "YOUTUBE_API_KEY",
            "SMTP_URL",
            "GOOGLE_CLIENT_SECRET",
            "NATS_PASSWORD",
        ] {
            let file_var = format!("{name}_FILE");
            let value = if name == "DATABASE_URL" {
                "postgres://jukebox@db:5432/jukebox"
            } else {
                "s3cret value"
            };
            let path = secret_file(&name.to_lowercase(), &format!("{value}\r\n"));
            let mut vars = vec![(file_var.as_str(), path.as_str())];
            if name == "NATS_PASSWORD" {
                vars.push(("NATS_USER", "edge"));
            }
            let loaded = config(&vars).unwrap_or_else(|e| panic!("{file_var}: {e:#}"));
            let read = match name {
                "DATABASE_URL" => loaded.database_url,
                "DATABASE_PASSWORD" => {
                    let url = url::Url::parse(loaded.database_url.expose_secret()).unwrap();
                    assert_eq!(url.password(), Some("s3cret%20value"));
                    continue;
                }
                "JWT_SECRET" => loaded.jwt_secret.unwrap(),
                "INTERNAL_SERVICE_SECRET" => loaded.internal_service_secret.unwrap(),
                "STREAM_SIGNING_SECRET" => loaded.stream_signing_secret.unwrap(),
                "S3_ACCESS_KEY" => loaded.s3_access_key.unwrap(),
                "S3_SECRET_KEY" => loaded.s3_secret_key.unwrap(),
                "YOUTUBE_API_KEY" => loaded.youtube_api_key.unwrap(),
                "SMTP_URL" => loaded.smtp_url.unwrap(),
                "GOOGLE_CLIENT_SECRET" => loaded.google_client_secret.unwrap(),
                _ => loaded.nats_password.unwrap(),
            };
            assert_eq!(read.expose_secret(), value, "{file_var}");

            vars.push((name, "inline"));
            let both = config(&vars).unwrap_err().to_string();
            assert!(both.contains(name) && both.contains("not both"), "{both}");
        }
    }

    #[test]
    fn an_unreadable_secret_file_names_its_variable() {
        let error =
            config(&[("STREAM_SIGNING_SECRET_FILE", "/nonexistent/jukebox/secret")]).unwrap_err();
        let error = format!("{error:#}");
        assert!(error.contains("STREAM_SIGNING_SECRET_FILE"), "{error}");
        assert!(error.contains("No such file"), "{error}");
    }

    #[test]
    fn the_database_password_goes_into_the_url_once() {
        let loaded = config(&[
            (
                "DATABASE_URL",
                "postgres://jukebox@db:5432/jukebox?sslmode=disable",
            ),
            ("DATABASE_PASSWORD", "p@ss/word"),
        ])
        .unwrap();
        let url = url::Url::parse(loaded.database_url.expose_secret()).unwrap();
        assert_eq!((url.username(), url.host_str()), ("jukebox", Some("db")));
        assert_eq!(
            percent_decode(url.password().unwrap()),
            "p@ss/word",
            "escaped in the URL"
        );
        let twice = config(&[
            ("DATABASE_URL", "postgres://jukebox:inline@db/jukebox"),
            ("DATABASE_PASSWORD", "other"),
        ])
        .unwrap_err()
        .to_string();
        assert!(twice.contains("already holds a password"), "{twice}");
        assert!(!twice.contains("inline"), "no secret in the error: {twice}");
    }

    fn percent_decode(s: &str) -> String {
        url::form_urlencoded::parse(format!("x={s}").as_bytes())
            .next()
            .unwrap()
            .1
            .into_owned()
    }

    #[test]
    fn nats_takes_a_server_list_replicas_and_a_user() {
        let loaded = config(&[]).unwrap();
        assert_eq!(loaded.nats_servers(), ["nats://127.0.0.1:4222"]);
        assert_eq!(loaded.nats_stream_replicas, 1);
        assert!(loaded.nats_user.is_none());

        let cluster = config(&[
            ("NATS_URL", "nats://n1:4222, nats://n2:4222 ,n3:4222,"),
            ("NATS_STREAM_REPLICAS", "3"),
            ("NATS_USER", "processor"),
            ("NATS_PASSWORD", "pw"),
        ])
        .unwrap();
        assert_eq!(
            cluster.nats_servers(),
            ["nats://n1:4222", "nats://n2:4222", "n3:4222"]
        );
        assert_eq!(cluster.nats_stream_replicas, 3);
        assert_eq!(cluster.nats_user.as_deref(), Some("processor"));

        for (vars, expected) in [
            (vec![("NATS_STREAM_REPLICAS", "0")], "NATS_STREAM_REPLICAS"),
            (vec![("NATS_STREAM_REPLICAS", "7")], "1 to 5"),
            (vec![("NATS_URL", "nats://a:4222,http://b")], "server 2"),
            (vec![("NATS_URL", " , ")], "names no server"),
            (vec![("NATS_URL", "nats://u:hunter2@a:4222")], "NATS_USER"),
            (vec![("NATS_USER", "edge")], "NATS_PASSWORD"),
            (vec![("NATS_PASSWORD", "pw")], "NATS_USER"),
            (
                vec![("NATS_USER", "a.b"), ("NATS_PASSWORD", "pw")],
                "NATS_USER",
            ),
        ] {
            let error = format!("{:#}", config(&vars).unwrap_err());
            assert!(error.contains(expected), "{vars:?}: {error}");
            assert!(!error.contains("hunter2"), "{error}");
        }
    }

    #[test]
    fn bad_values_name_the_variable() {
        let error = config(&[("API_PORT", "eighty")]).unwrap_err().to_string();
        assert!(error.contains("API_PORT"), "{error}");
        assert!(config(&[("EMAIL_VERIFY_REQUIRED", "maybe")]).is_err());
    }
}

//! State shared by every handler.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use jukebox_nats::CommandBus;
use sqlx::PgPool;
use uuid::Uuid;

use crate::metrics::Metrics;
use crate::rate_limit::RateLimiter;
use crate::settings::AuthSettings;

/// A cheap handle: axum clones the state for every extractor of every request, and
/// cloning the fields themselves (two NATS clients among them) showed in the profile of
/// `GET /library`.
#[derive(Clone)]
pub struct AppState(Arc<Shared>);

impl AppState {
    pub fn new(shared: Shared) -> Self {
        Self(Arc::new(shared))
    }

    /// The same state with the API mounted at `mount` (the web app's `/api`).
    pub fn mounted_at(&self, mount: &'static str) -> Self {
        Self::new(Shared {
            mount,
            ..(*self.0).clone()
        })
    }
}

impl std::ops::Deref for AppState {
    type Target = Shared;

    fn deref(&self) -> &Shared {
        &self.0
    }
}

/// What every handler reads through `AppState`.
#[derive(Clone)]
pub struct Shared {
    pub pool: PgPool,
    /// Claim ids as keyed hashes (ADR 43): which user holds an identity.
    pub claim_ids: jukebox_nats::claim_ids::ClaimIds,
    pub nats: async_nats::Client,
    pub bus: CommandBus,
    /// How long a request waits for its command's outcome before answering 202.
    pub command_wait: Duration,
    /// Waits for the read models to reach a position (`crate::fresh`).
    pub freshness: jukebox_projections::Freshness,
    pub auth: Arc<AuthSettings>,
    pub limiter: Arc<RateLimiter>,
    pub metrics: Arc<Metrics>,
    /// Search, import and upload (`None` where a deployment runs no imports: 503).
    pub imports: Option<Arc<crate::ports::ImportSettings>>,
    /// Issues signed stream URLs (`None` without `STREAM_SIGNING_SECRET`: 503).
    pub stream: Option<crate::stream::StreamIssuer>,
    /// The object store, where the Subsonic API reads audio and covers (`None` where a
    /// role runs without one: those methods answer an error).
    pub store: Option<Arc<dyn jukebox_storage::ObjectStore>>,
    /// Where the API is mounted ("" on :8000, "/api" in the web app): cookie paths use it.
    pub mount: &'static str,
    /// When this edge last recorded each app credential's use, and for which client
    /// (`rest::auth`: at most one write a minute per credential).
    pub credential_uses: CredentialUses,
}

/// Credential id → (when its use was last recorded, the client then).
pub type CredentialUses = Arc<Mutex<HashMap<Uuid, (Instant, String)>>>;

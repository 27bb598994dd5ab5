//! Connects to the outside world once and runs any set of roles in one process.

use std::collections::BTreeSet;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use jukebox_handlers::{Downloader, MailReactor, Processor, Relay};
use jukebox_nats::{CommandBus, Namespace, Topology};
use jukebox_projections::ProjectionRunner;
use secrecy::ExposeSecret;
use sqlx::PgPool;
use tokio::net::TcpListener;
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;
use tracing::{error, info};

use crate::config::Config;
use crate::settings::stream_signer;
pub use crate::settings::RoleOptions;

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, clap::ValueEnum)]
pub enum Role {
    Api,
    Web,
    Stream,
    Processor,
    Relay,
    Projector,
    Downloader,
    /// Side effects of events: the mail reactor.
    Reactor,
    /// Every role in one process.
    All,
}

impl Role {
    pub fn expand(roles: &[Role]) -> BTreeSet<Role> {
        if roles.contains(&Role::All) {
            [
                Role::Api,
                Role::Web,
                Role::Stream,
                Role::Processor,
                Role::Relay,
                Role::Projector,
                Role::Downloader,
                Role::Reactor,
            ]
            .into()
        } else {
            roles.iter().copied().collect()
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Role::Api => "api",
            Role::Web => "web",
            Role::Stream => "stream",
            Role::Processor => "processor",
            Role::Relay => "relay",
            Role::Projector => "projector",
            Role::Downloader => "downloader",
            Role::Reactor => "reactor",
            Role::All => "all",
        }
    }
}

/// Connections every role shares.
#[derive(Clone)]
pub struct Services {
    pub pool: PgPool,
    pub nats: async_nats::Client,
    pub topology: Topology,
}

impl Services {
    /// Connects to Postgres and NATS and makes sure the streams exist.
    pub async fn connect(config: &Config) -> anyhow::Result<Self> {
        let pool = crate::pools::pool_options(config.database_max_connections)
            .connect(config.database_url.expose_secret())
            .await
            .context("connecting to Postgres (DATABASE_URL)")?;
        let nats = connect_nats(config).await?;
        let namespace = Namespace::new(&config.nats_namespace).map_err(anyhow::Error::msg)?;
        let topology = Topology {
            replicas: config.nats_stream_replicas,
            events_max_age: config.events_max_age,
            ..Topology::new(namespace)
        };
        topology
            .ensure_streams(&async_nats::jetstream::new(nats.clone()))
            .await
            .context(
                "setting up the JetStream streams (a NATS user without stream rights needs \
                 them made first by `jukebox migrate` with the admin user)",
            )?;
        Ok(Self {
            pool,
            nats,
            topology,
        })
    }
}

/// Connects to the servers of `NATS_URL` as `NATS_USER`. A lost server is survived: the
/// client reconnects without limit (to any node of the list or that the cluster
/// announced) while requests fail after a bounded time, so callers answer 503.
pub async fn connect_nats(config: &Config) -> anyhow::Result<async_nats::Client> {
    let mut options = async_nats::ConnectOptions::new()
        .name("jukebox")
        .connection_timeout(Duration::from_secs(3))
        .max_reconnects(None)
        .request_timeout(Some(Duration::from_secs(5)))
        // A dead peer behind a silent network is noticed within ~30 s, not minutes.
        .ping_interval(Duration::from_secs(10))
        .event_callback(|event| async move {
            match event {
                async_nats::Event::Connected => info!("NATS connected"),
                async_nats::Event::Disconnected => tracing::warn!("NATS disconnected"),
                // Permission violations arrive here, not at the call that caused them.
                async_nats::Event::ServerError(e) => error!(error = %e, "NATS server error"),
                other => tracing::warn!(event = %other, "NATS"),
            }
        });
    if let (Some(user), Some(password)) = (&config.nats_user, &config.nats_password) {
        options = options
            .user_and_password(user.clone(), password.expose_secret().to_owned())
            // Replies to this process (PubAcks, pulled messages, API answers) arrive on
            // its own prefix, which no other role's user may subscribe to.
            .custom_inbox_prefix(format!("_INBOX_{user}"));
    }
    let servers = config.nats_servers();
    options
        .connect(servers.as_slice())
        .await
        .with_context(|| format!("connecting to NATS at {}", servers.join(", ")))
}

/// Roles running in this process.
pub struct Running {
    pub api_addr: Option<SocketAddr>,
    pub web_addr: Option<SocketAddr>,
    pub stream_addr: Option<SocketAddr>,
    /// The health port (every process has one).
    pub health_addr: SocketAddr,
    pub shutdown: CancellationToken,
    tasks: JoinSet<(&'static str, anyhow::Result<()>)>,
}

impl Running {
    /// Waits until a role ends (or shutdown is asked), then stops the rest. Returns the
    /// first role's error, if any.
    pub async fn wait(mut self) -> anyhow::Result<()> {
        let mut first_error = None;
        while let Some(joined) = self.tasks.join_next().await {
            let (role, result) = joined.unwrap_or(("task", Err(anyhow::anyhow!("role panicked"))));
            if let Err(error) = result {
                error!(
                    role,
                    error = format!("{error:#}"),
                    "role stopped with an error"
                );
                first_error.get_or_insert(error.context(format!("role {role}")));
            } else {
                info!(role, "role stopped");
            }
            self.shutdown.cancel();
        }
        first_error.map_or(Ok(()), Err)
    }

    /// Asks every role to stop and waits for them.
    pub async fn stop(self) -> anyhow::Result<()> {
        self.shutdown.cancel();
        self.wait().await
    }
}

/// Starts the chosen roles. HTTP listeners are bound before this returns.
pub async fn start(services: &Services, options: RoleOptions) -> anyhow::Result<Running> {
    let shutdown = CancellationToken::new();
    let mut tasks = JoinSet::new();
    let roles = &options.roles;
    let Services {
        pool,
        nats,
        topology,
    } = services.clone();

    // The object store, for uploads (api, web), tracks (downloader) and an erased user's
    // uploads (reactor).
    let store = if roles.contains(&Role::Api)
        || roles.contains(&Role::Web)
        || roles.contains(&Role::Stream)
        || roles.contains(&Role::Downloader)
        || roles.contains(&Role::Reactor)
    {
        let store_config = options.config.store_config()?;
        Some(
            jukebox_handlers::storage::open(&store_config)
                .await
                .context("opening the object store")?,
        )
    } else {
        None
    };
    // One registry per process: every role's metrics, served on the health port.
    let mut registry = prometheus_client::registry::Registry::default();
    let edge_metrics = Arc::new(jukebox_edge::metrics::Metrics::default());
    edge_metrics.register(&mut registry);
    let redeliveries = jukebox_nats::Redeliveries::default();
    redeliveries.register(&mut registry);
    let tracked = |router, role| jukebox_edge::metrics::track(router, edge_metrics.clone(), role);

    let mut api_addr = None;
    let mut web_addr = None;
    let mut stream_addr = None;
    if roles.contains(&Role::Api) || roles.contains(&Role::Web) {
        let auth = options
            .auth
            .clone()
            .context("the api and web roles need account settings")?;
        // The dummy hash of timing-safe sign-in, computed before the first request.
        tokio::task::spawn_blocking(jukebox_edge::password::warm_up).await?;
        let state = jukebox_edge::AppState::new(jukebox_edge::state::Shared {
            pool: pool.clone(),
            claim_ids: jukebox_nats::claim_ids::ClaimIds::new(pool.clone()),
            nats: nats.clone(),
            bus: CommandBus::start(nats.clone(), topology.namespace.clone()).await?,
            command_wait: options.command_wait,
            freshness: jukebox_projections::Freshness::start(
                pool.clone(),
                options.read_wait,
                shutdown.child_token(),
            ),
            limiter: Arc::new(jukebox_edge::rate_limit::RateLimiter::new(auth.limits)),
            auth,
            metrics: edge_metrics.clone(),
            stream: stream_signer(&options.config).map(|signer| {
                jukebox_edge::stream::StreamIssuer {
                    signer,
                    public_base_url: options.config.public_stream_base_url.clone(),
                }
            }),
            imports: match &store {
                Some(store) => match crate::imports::import_settings(
                    &options.config,
                    store.clone(),
                    nats.clone(),
                    &topology.namespace,
                )
                .await
                {
                    Ok(settings) => Some(Arc::new(settings)),
                    Err(error) => {
                        tracing::warn!(
                            error = format!("{error:#}"),
                            "search and import are unavailable (503)"
                        );
                        None
                    }
                },
                None => None,
            },
            store: store.clone(),
            mount: "",
            credential_uses: Default::default(),
        });
        if roles.contains(&Role::Api) {
            let (addr, task) = http(
                "api",
                options.api,
                tracked(jukebox_edge::api::router(state.clone()), "api"),
                &shutdown,
            )
            .await?;
            api_addr = Some(addr);
            tasks.spawn(task);
        }
        if roles.contains(&Role::Web) {
            let (addr, task) = http(
                "web",
                options.web,
                tracked(jukebox_edge::web::router(state), "web"),
                &shutdown,
            )
            .await?;
            web_addr = Some(addr);
            tasks.spawn(task);
        }
    }
    if roles.contains(&Role::Stream) {
        let router = match stream_signer(&options.config) {
            Some(signer) => jukebox_edge::stream::router(jukebox_edge::stream::StreamState {
                pool: pool.clone(),
                store: store.clone().expect("opened for the stream role"),
                signer,
                metrics: edge_metrics.clone(),
            }),
            None => {
                tracing::warn!("STREAM_SIGNING_SECRET is not set: the stream role serves nothing");
                axum::Router::new()
            }
        }
        .route("/healthz", axum::routing::get(|| async { "ok" }));
        let router = tracked(router, "stream");
        let (addr, task) = http("stream", options.stream, router, &shutdown).await?;
        stream_addr = Some(addr);
        tasks.spawn(task);
    }
    // The processor wakes a relay of the same process in memory (handlers/src/wake.rs).
    let relay_waker = jukebox_handlers::RelayWaker::default();
    if roles.contains(&Role::Processor) {
        let processor_pool = crate::pools::processor_pool(&options.config)?;
        let mut processor = Processor::new(processor_pool, nats.clone(), topology.clone());
        processor.waker = relay_waker.clone();
        processor.fail_points = options.fail_points.clone();
        processor.ack_wait = options.ack_wait;
        processor.commit_group_workers = options.config.commit_group_workers;
        processor.load_group_workers = options.config.load_group_workers;
        processor.redeliveries = redeliveries.clone();
        processor.metrics.register(&mut registry);
        let stop = shutdown.clone();
        tasks.spawn(async move { ("processor", processor.run(stop).await) });
    }
    if roles.contains(&Role::Relay) {
        let mut relay = Relay::new(pool.clone(), nats.clone(), topology.clone());
        relay.fail_points = options.fail_points.clone();
        relay.waker = relay_waker.clone();
        let stop = shutdown.clone();
        tasks.spawn(async move { ("relay", relay.run(stop).await) });
    }
    if roles.contains(&Role::Projector) {
        let mut runner = ProjectionRunner::new(pool.clone(), nats.clone(), topology.clone());
        runner.fail_points = options.fail_points.clone();
        runner.ack_wait = options.ack_wait;
        runner.redeliveries = redeliveries.clone();
        let stop = shutdown.clone();
        tasks.spawn(async move {
            let all = runner.run_group(jukebox_projections::every_model(), stop);
            ("projector", all.await)
        });
    }
    if roles.contains(&Role::Downloader) {
        let config = &options.config;
        let pipeline =
            jukebox_handlers::media::Pipeline::new(crate::imports::pipeline_config(config)?);
        let store = store.clone().expect("opened for the downloader");
        // The subscription scheduler lists through the same tools and egress (ADR 40).
        let scheduler = crate::subscriptions::Scheduler {
            pool: pool.clone(),
            bus: CommandBus::start(nats.clone(), topology.namespace.clone()).await?,
            freshness: jukebox_projections::Freshness::start(
                pool.clone(),
                options.read_wait,
                shutdown.child_token(),
            ),
            lister: Arc::new(crate::imports::YtDlpLister {
                pipeline: pipeline.clone(),
            }),
            settings: crate::subscriptions::ScheduleSettings::from_config(
                config,
                options.command_wait,
            ),
            holder: uuid::Uuid::new_v4().to_string(),
        };
        let stop = shutdown.clone();
        tasks.spawn(async move { ("subscriptions", scheduler.run(stop).await) });
        let mut downloader = Downloader::new(
            pool.clone(),
            nats.clone(),
            topology.clone(),
            pipeline,
            store,
        );
        downloader.slots = config.download_concurrency;
        downloader.max_deliver = config.import_max_attempts;
        downloader.retry_base = config.import_retry_base;
        downloader.ack_wait = options.ack_wait;
        downloader.command_wait = options.command_wait;
        downloader.fail_points = options.fail_points.clone();
        downloader.redeliveries = redeliveries.clone();
        downloader.metrics.register(&mut registry);
        let stop = shutdown.clone();
        tasks.spawn(async move { ("downloader", downloader.run(stop).await) });
    }
    if roles.contains(&Role::Reactor) {
        let (mailer, settings) = options
            .mailer
            .clone()
            .zip(options.mail.clone())
            .context("the reactor role needs its mailer and settings")?;
        let mut reactor = MailReactor::new(
            pool.clone(),
            nats.clone(),
            topology.clone(),
            mailer,
            settings,
        );
        reactor.store = store.clone();
        reactor.ack_wait = options.ack_wait;
        reactor.command_wait = options.command_wait;
        reactor.fail_points = options.fail_points.clone();
        reactor.redeliveries = redeliveries.clone();
        reactor.metrics.register(&mut registry);
        let stop = shutdown.clone();
        tasks.spawn(async move { ("reactor", reactor.run(stop).await) });
    }
    let gauges = jukebox_edge::health::ScrapeGauges::new(
        roles.contains(&Role::Projector),
        roles.contains(&Role::Relay),
    );
    gauges.register(&mut registry);
    let health = jukebox_edge::health::router(jukebox_edge::health::HealthState {
        pool,
        nats,
        store,
        roles: roles.iter().map(|role| role.name()).collect(),
        registry: Arc::new(registry),
        gauges,
    });
    let (health_addr, task) = http("health", options.health, health, &shutdown).await?;
    tasks.spawn(task);
    Ok(Running {
        api_addr,
        web_addr,
        stream_addr,
        health_addr,
        shutdown,
        tasks,
    })
}

type RoleTask =
    std::pin::Pin<Box<dyn std::future::Future<Output = (&'static str, anyhow::Result<()>)> + Send>>;

async fn http(
    role: &'static str,
    addr: SocketAddr,
    router: axum::Router,
    shutdown: &CancellationToken,
) -> anyhow::Result<(SocketAddr, RoleTask)> {
    let listener = TcpListener::bind(addr)
        .await
        .with_context(|| format!("{role}: binding {addr}"))?;
    let local = listener.local_addr()?;
    info!(role, address = %local, "listening");
    let stop = shutdown.clone();
    let task = Box::pin(async move {
        let result = jukebox_edge::serve(listener, router, async move { stop.cancelled().await })
            .await
            .with_context(|| format!("{role} server"));
        (role, result)
    });
    Ok((local, task))
}

//! One Jukebox deployment for a fault run: each role is its own OS process of the real
//! binary (`jukebox serve <role>`), against the run's own NATS and Postgres, a local
//! folder object store and loopback media. Roles can be killed (SIGKILL to the role's
//! process group, so its ffmpeg and yt-dlp die with it), armed with a fail point, and
//! restarted. Dropping the system stops everything and, during a panic, prints the end of
//! every log so a CI failure can be read.

use std::collections::BTreeMap;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use jukebox_test_support::{MediaServer, Tone};
use sqlx::postgres::PgPoolOptions;
use sqlx::PgPool;

use crate::infra::{append_log, free_port, signal, tail, NatsNode, Postgres};

pub const JWT_SECRET: &str = "fault-suite-secret-fault-suite-secret-0123";
pub const PASSWORD: &str = "correct horse battery";

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum RoleName {
    Api,
    Stream,
    Processor,
    Relay,
    Projector,
    Downloader,
}

impl RoleName {
    pub const ALL: [RoleName; 6] = [
        RoleName::Api,
        RoleName::Stream,
        RoleName::Processor,
        RoleName::Relay,
        RoleName::Projector,
        RoleName::Downloader,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            RoleName::Api => "api",
            RoleName::Stream => "stream",
            RoleName::Processor => "processor",
            RoleName::Relay => "relay",
            RoleName::Projector => "projector",
            RoleName::Downloader => "downloader",
        }
    }
}

struct RoleProcess {
    child: Child,
}

impl RoleProcess {
    /// SIGKILL to the whole group: the role and any tool it runs die at once.
    fn kill(mut self) {
        signal(-(self.child.id() as i64), "KILL");
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

pub struct System {
    pub dir: tempfile::TempDir,
    pub nats: Vec<NatsNode>,
    pub postgres: Postgres,
    env: BTreeMap<String, String>,
    roles: BTreeMap<RoleName, RoleProcess>,
    pub api_port: u16,
    pub stream_port: u16,
    pub media: MediaServer,
    pub objects: PathBuf,
    pub http: reqwest::Client,
    pool: Option<PgPool>,
    /// This run's copy of the binary: every start and restart runs the same build, even
    /// if a parallel cargo build replaces target/debug/jukebox meanwhile.
    bin: PathBuf,
}

impl System {
    /// Starts the servers (one NATS node, or a three-node cluster with R3 streams),
    /// migrates, and starts every role.
    pub async fn start(cluster: bool) -> System {
        let dir = tempfile::Builder::new()
            .prefix("jukebox-faults-")
            .tempdir()
            .expect("a temp folder");
        let root = dir.path().to_path_buf();
        for sub in ["logs", "objects", "work", "media"] {
            std::fs::create_dir_all(root.join(sub)).unwrap();
        }
        let nats = if cluster {
            let cluster_ports = [free_port(), free_port(), free_port()];
            (0..3)
                .map(|i| {
                    let peers = cluster_ports
                        .iter()
                        .enumerate()
                        .filter(|(j, _)| *j != i)
                        .map(|(_, p)| *p)
                        .collect();
                    NatsNode::new(
                        &root,
                        &format!("nats-{}", i + 1),
                        Some((cluster_ports[i], peers)),
                    )
                })
                .collect::<Vec<_>>()
        } else {
            vec![NatsNode::new(&root, "nats-1", None)]
        };
        let bin = root.join("jukebox");
        std::fs::hard_link(env!("CARGO_BIN_EXE_jukebox"), &bin)
            .or_else(|_| std::fs::copy(env!("CARGO_BIN_EXE_jukebox"), &bin).map(|_| ()))
            .expect("a copy of the jukebox binary");
        let mut postgres = Postgres::init(&root);
        let media = MediaServer::start(&root.join("media")).await;
        let mut system = System {
            api_port: free_port(),
            stream_port: free_port(),
            objects: root.join("objects"),
            env: BTreeMap::new(),
            roles: BTreeMap::new(),
            http: reqwest::Client::builder()
                .timeout(Duration::from_secs(20))
                .build()
                .unwrap(),
            pool: None,
            bin,
            media,
            nats,
            postgres: {
                postgres.start();
                postgres
            },
            dir,
        };
        for node in &mut system.nats {
            node.start();
        }
        let nats_url = system
            .nats
            .iter()
            .map(NatsNode::url)
            .collect::<Vec<_>>()
            .join(",");
        let env = [
            ("DATABASE_URL", system.postgres.url("jukebox")),
            ("NATS_URL", nats_url),
            (
                "NATS_STREAM_REPLICAS",
                if cluster { "3" } else { "1" }.to_owned(),
            ),
            ("JWT_SECRET", JWT_SECRET.to_owned()),
            ("STREAM_SIGNING_SECRET", format!("{JWT_SECRET}-stream")),
            ("API_PORT", system.api_port.to_string()),
            ("STREAM_PORT", system.stream_port.to_string()),
            (
                "PUBLIC_STREAM_BASE_URL",
                format!("http://127.0.0.1:{}", system.stream_port),
            ),
            ("OBJECT_STORE_DIR", system.objects.display().to_string()),
            ("IMPORT_WORK_DIR", root.join("work").display().to_string()),
            ("IMPORT_ALLOW_PRIVATE_NETWORKS", "1".into()),
            ("DOWNLOAD_CONCURRENCY", "2".into()),
            ("IMPORT_RETRY_BASE_MS", "500".into()),
            ("IMPORT_MAX_ATTEMPTS", "8".into()),
            ("COOKIE_SECURE", "0".into()),
            ("RATE_LIMIT_PER_ACCOUNT", "100000".into()),
            ("RATE_LIMIT_PER_ADDRESS", "100000".into()),
            ("COMMAND_WAIT_MS", "5000".into()),
            // A killed role's messages come back after this (30 s in production).
            ("ACK_WAIT_MS", "3000".into()),
            ("RUST_LOG", "info,sqlx=warn".into()),
            // Errors in the logs without a page of backtrace each.
            ("RUST_BACKTRACE", "0".into()),
            ("RUST_LIB_BACKTRACE", "0".into()),
        ];
        system.env = env.into_iter().map(|(k, v)| (k.to_owned(), v)).collect();
        system.wait_jetstream(Duration::from_secs(60)).await;
        system.jukebox(&["migrate"], Duration::from_secs(60));
        for role in RoleName::ALL {
            system.start_role(role, None);
        }
        system.wait_api_up(Duration::from_secs(60)).await;
        system
    }

    /// Makes a tone in the media folder (served on loopback) and returns its URL.
    pub fn tone(&self, name: &str, seconds: u32) -> String {
        let tone = Tone {
            seconds,
            title: name,
            artist: "The Fault Tones",
            cover: false,
        };
        self.media.tone(name, &tone)
    }

    pub fn root(&self) -> &Path {
        self.dir.path()
    }

    pub fn api(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{path}", self.api_port)
    }

    pub fn log_path(&self, role: RoleName) -> PathBuf {
        self.root()
            .join("logs")
            .join(format!("{}.log", role.as_str()))
    }

    /// Runs a jukebox subcommand to completion (bounded) and returns its stdout.
    pub fn jukebox(&self, args: &[&str], within: Duration) -> String {
        let log = self.root().join("logs/cli.log");
        let mut child = Command::new(&self.bin)
            .args(args)
            .envs(&self.env)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(append_log(&log))
            .spawn()
            .expect("running jukebox");
        let deadline = Instant::now() + within;
        loop {
            if let Ok(Some(_)) = child.try_wait() {
                break;
            }
            if Instant::now() > deadline {
                let _ = child.kill();
                panic!("jukebox {args:?} did not finish within {within:?}");
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let output = child.wait_with_output().unwrap();
        assert!(
            output.status.success(),
            "jukebox {args:?} failed; end of its log:\n{}",
            tail(&log, 30)
        );
        String::from_utf8_lossy(&output.stdout).into_owned()
    }

    /// Starts a role as its own process (its own process group), optionally armed with
    /// `JUKEBOX_FAILPOINTS`.
    pub fn start_role(&mut self, role: RoleName, fail_points: Option<&str>) {
        let log = self.log_path(role);
        {
            use std::io::Write;
            let mut file = append_log(&log);
            let _ = writeln!(
                file,
                "===== fault suite: starting {} (fail points: {}) =====",
                role.as_str(),
                fail_points.unwrap_or("none")
            );
        }
        // No core files from an aborting fail point.
        let mut cmd = Command::new("sh");
        cmd.args(["-c", "ulimit -c 0; exec \"$0\" serve \"$1\""])
            .arg(&self.bin)
            .arg(role.as_str())
            .envs(&self.env)
            .env("JUKEBOX_FAILPOINTS", fail_points.unwrap_or(""))
            .stdin(Stdio::null())
            .stdout(append_log(&log))
            .stderr(append_log(&log))
            .process_group(0);
        let child = cmd.spawn().expect("starting a role");
        self.roles.insert(role, RoleProcess { child });
    }

    pub fn kill_role(&mut self, role: RoleName) {
        if let Some(process) = self.roles.remove(&role) {
            process.kill();
        }
    }

    /// `Some(exit status)` once the role's process has ended.
    pub fn role_exit(&mut self, role: RoleName) -> Option<String> {
        let process = self.roles.get_mut(&role)?;
        match process.child.try_wait() {
            Ok(Some(status)) => Some(status.to_string()),
            _ => None,
        }
    }

    /// Roles whose process ended on its own (none should, outside a fail point).
    pub fn dead_roles(&mut self) -> Vec<(RoleName, String)> {
        let roles: Vec<RoleName> = self.roles.keys().copied().collect();
        roles
            .into_iter()
            .filter_map(|r| self.role_exit(r).map(|s| (r, s)))
            .collect()
    }

    /// Waits (bounded) until an armed role has died at its fail point.
    pub async fn wait_role_death(&mut self, role: RoleName, within: Duration) -> String {
        let deadline = Instant::now() + within;
        loop {
            if let Some(status) = self.role_exit(role) {
                self.roles.remove(&role);
                return status;
            }
            assert!(
                Instant::now() < deadline,
                "{} did not reach its fail point within {within:?}",
                role.as_str()
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    pub async fn wait_api_up(&self, within: Duration) {
        let deadline = Instant::now() + within;
        while Instant::now() < deadline {
            if let Ok(r) = self.http.get(self.api("/healthz")).send().await {
                if r.status().is_success() {
                    return;
                }
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        panic!("the api role does not answer /healthz within {within:?}");
    }

    /// Waits until JetStream answers (a cluster first elects its meta leader).
    pub async fn wait_jetstream(&self, within: Duration) {
        let js = async_nats::jetstream::new(self.nats_client().await);
        let deadline = Instant::now() + within;
        loop {
            match js.query_account().await {
                Ok(_) => return,
                Err(error) => assert!(
                    Instant::now() < deadline,
                    "JetStream does not answer within {within:?}: {error}"
                ),
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }

    /// A pool on the run's Postgres for the checks (connected on first use).
    pub async fn pool(&mut self) -> PgPool {
        if self.pool.is_none() {
            self.pool = Some(
                PgPoolOptions::new()
                    .max_connections(4)
                    .acquire_timeout(Duration::from_secs(10))
                    .connect(&self.postgres.url("jukebox"))
                    .await
                    .expect("connecting to the run's Postgres"),
            );
        }
        self.pool.clone().unwrap()
    }

    /// A NATS client on the run's server(s), for reading the streams.
    pub async fn nats_client(&self) -> async_nats::Client {
        let urls: Vec<async_nats::ServerAddr> =
            self.nats.iter().map(|n| n.url().parse().unwrap()).collect();
        async_nats::ConnectOptions::new()
            .connection_timeout(Duration::from_secs(5))
            .connect(urls)
            .await
            .expect("connecting to the run's NATS")
    }

    fn print_logs(&self) {
        let mut logs: Vec<PathBuf> = RoleName::ALL.iter().map(|r| self.log_path(*r)).collect();
        logs.push(self.root().join("logs/cli.log"));
        logs.push(self.postgres.log.clone());
        logs.extend(self.nats.iter().map(|n| n.log.clone()));
        for log in logs {
            eprintln!("----- end of {} -----\n{}", log.display(), tail(&log, 60));
        }
    }
}

impl Drop for System {
    fn drop(&mut self) {
        if std::thread::panicking() {
            self.print_logs();
        }
        // JUKEBOX_FAULTS_KEEP=1 keeps a failed run's folder, =always every run's.
        let keep = match std::env::var("JUKEBOX_FAULTS_KEEP").as_deref() {
            Ok("always") => true,
            Ok(_) => std::thread::panicking(),
            Err(_) => false,
        };
        let roles: Vec<RoleName> = self.roles.keys().copied().collect();
        for role in roles {
            self.kill_role(role);
        }
        // The servers stop with their own drops; the temp folder too, unless kept.
        if keep {
            eprintln!(
                "JUKEBOX_FAULTS_KEEP: the run's folder stays at {}",
                self.root().display()
            );
            self.dir.disable_cleanup(true);
        }
    }
}

//! Local Postgres and NATS for `jukebox dev` on machines that have none running.
//!
//! Whatever already answers at the configured URLs is used as it is. Otherwise a private
//! server is started as a child process with its data and log under the dev data folder,
//! and stopped again when [`DevInfra`] is dropped.

use anyhow::{bail, Context, Result};
use std::fmt;
use std::fs::File;
use std::os::unix::fs::MetadataExt;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

const NATS_DEFAULT_PORT: u16 = 4222;
const POSTGRES_DEFAULT_PORT: u16 = 5432;
const START_TIMEOUT: Duration = Duration::from_secs(30);
const STOP_TIMEOUT: Duration = Duration::from_secs(10);
const LOG_TAIL_LINES: usize = 20;

/// The NATS and Postgres servers that `jukebox dev` uses; stops the ones it started when dropped.
pub struct DevInfra {
    services: Vec<Service>,
}

struct Service {
    name: &'static str,
    endpoint: Endpoint,
    /// `None` when an existing server answered.
    started: Option<Started>,
}

/// A server process this process started. Dropping it stops it.
struct Started {
    child: Child,
    /// How `summary` describes it.
    description: String,
    log: PathBuf,
    /// Postgres takes SIGTERM as "wait until every client has left"; SIGINT is its fast shutdown.
    stop_signal: &'static str,
    signalled: bool,
}

impl DevInfra {
    /// For each of NATS and Postgres: use the server that answers at the URL's host and
    /// port, or start a private one with its data under `data_dir`, and wait until it answers.
    pub async fn ensure(database_url: &str, nats_url: &str, data_dir: &Path) -> Result<DevInfra> {
        // Errors must not quote the database URL: it may carry a password.
        let postgres =
            endpoint(database_url, POSTGRES_DEFAULT_PORT).context("reading the database URL")?;
        let nats =
            nats_endpoint(nats_url).with_context(|| format!("reading the NATS URL {nats_url}"))?;
        std::fs::create_dir_all(data_dir)
            .with_context(|| format!("creating {}", data_dir.display()))?;
        // Absolute, because the servers get the paths and Postgres runs with another working folder.
        let data_dir = data_dir
            .canonicalize()
            .with_context(|| format!("resolving {}", data_dir.display()))?;

        // Pushed one by one so that a failure to start the second stops the first (Drop).
        let mut infra = DevInfra {
            services: Vec::new(),
        };
        let started = if is_up(&nats).await {
            None
        } else {
            Some(start_nats(&nats, &data_dir).await?)
        };
        infra.services.push(Service {
            name: "nats",
            endpoint: nats,
            started,
        });
        let started = if is_up(&postgres).await {
            None
        } else {
            Some(start_postgres(&postgres, &data_dir).await?)
        };
        infra.services.push(Service {
            name: "postgres",
            endpoint: postgres,
            started,
        });
        Ok(infra)
    }

    /// One line per server, e.g. "nats: using existing server at 127.0.0.1:4222".
    pub fn summary(&self) -> Vec<String> {
        self.services
            .iter()
            .map(|s| match &s.started {
                None => format!("{}: using existing server at {}", s.name, s.endpoint),
                Some(started) => format!(
                    "{}: started {} at {} (log: {})",
                    s.name,
                    started.description,
                    s.endpoint,
                    started.log.display()
                ),
            })
            .collect()
    }
}

impl Drop for DevInfra {
    fn drop(&mut self) {
        // Signal every server first so that they shut down side by side; dropping each
        // `Started` afterwards waits for it.
        for started in self.services.iter_mut().filter_map(|s| s.started.as_mut()) {
            started.signal();
        }
    }
}

impl Started {
    fn signal(&mut self) {
        if self.signalled || matches!(self.child.try_wait(), Ok(Some(_))) {
            return;
        }
        self.signalled = true;
        // std's Child::kill is SIGKILL, which would cost Postgres a crash recovery; `kill`
        // sends the graceful signal without unsafe code. Holding the unreaped child keeps
        // its pid from being reused meanwhile.
        let _ = Command::new("kill")
            .args(["-s", self.stop_signal, &self.child.id().to_string()])
            .status();
    }
}

impl Drop for Started {
    fn drop(&mut self) {
        self.signal();
        // Blocking, but this runs once at shutdown (or on a failed start).
        let deadline = Instant::now() + STOP_TIMEOUT;
        while Instant::now() < deadline {
            match self.child.try_wait() {
                Ok(None) => std::thread::sleep(Duration::from_millis(100)),
                _ => return,
            }
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A TCP host and port taken from a server URL.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Endpoint {
    host: String,
    port: u16,
}

impl fmt::Display for Endpoint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.host.contains(':') {
            write!(f, "[{}]:{}", self.host, self.port)
        } else {
            write!(f, "{}:{}", self.host, self.port)
        }
    }
}

fn endpoint(url: &str, default_port: u16) -> Result<Endpoint> {
    let parsed = url::Url::parse(url).context("not a valid URL")?;
    let host = match parsed.host() {
        Some(url::Host::Domain(name)) if !name.is_empty() => name.to_string(),
        Some(url::Host::Ipv4(ip)) => ip.to_string(),
        Some(url::Host::Ipv6(ip)) => ip.to_string(),
        _ => bail!("the URL names no TCP host (Unix sockets are not supported here)"),
    };
    Ok(Endpoint {
        host,
        port: parsed.port().unwrap_or(default_port),
    })
}

/// NATS clients also accept a comma-separated list and a bare `host:port`; the first
/// server of the list is the one to check or start.
fn nats_endpoint(url: &str) -> Result<Endpoint> {
    let first = url.split(',').next().unwrap_or_default().trim();
    if first.contains("://") {
        endpoint(first, NATS_DEFAULT_PORT)
    } else {
        endpoint(&format!("nats://{first}"), NATS_DEFAULT_PORT)
    }
}

async fn is_up(at: &Endpoint) -> bool {
    let connect = tokio::net::TcpStream::connect((at.host.as_str(), at.port));
    matches!(
        tokio::time::timeout(Duration::from_secs(1), connect).await,
        Ok(Ok(_))
    )
}

async fn start_nats(at: &Endpoint, data_dir: &Path) -> Result<Started> {
    let bin = nats_server_bin().with_context(|| {
        format!(
            "nothing answers at {at} and nats-server is not installed: run scripts/install-deps.sh"
        )
    })?;
    let store = data_dir.join("nats");
    let log = data_dir.join("nats.log");
    let mut cmd = Command::new(&bin);
    cmd.args(["-js", "-a", &at.host, "-p", &at.port.to_string(), "-sd"])
        .arg(&store);
    let description = format!(
        "{} -js with its store in {}",
        bin.display(),
        store.display()
    );
    let mut started = spawn(cmd, &log, "TERM", description)?;
    wait_ready(&mut started, at, None).await?;
    Ok(started)
}

async fn start_postgres(at: &Endpoint, data_dir: &Path) -> Result<Started> {
    let bin = postgres_bin_dir().with_context(|| {
        format!("nothing answers at {at} and the PostgreSQL server is not installed: run scripts/install-deps.sh")
    })?;
    let cluster = data_dir.join("postgres");
    let log = data_dir.join("postgres.log");
    std::fs::create_dir_all(&cluster).with_context(|| format!("creating {}", cluster.display()))?;

    // Postgres refuses to run as root; as root, run it as the `postgres` system user, who must own the cluster.
    let as_root = std::fs::metadata("/proc/self")
        .context("reading /proc/self")?
        .uid()
        == 0;
    if as_root {
        let chown = tokio::process::Command::new("chown")
            .arg("postgres:postgres")
            .arg(&cluster)
            .status();
        if !chown.await.context("running chown")?.success() {
            bail!(
                "could not give {} to the postgres system user (does it exist?)",
                cluster.display()
            );
        }
        let mut check = pg_command(Path::new("test"), as_root, &cluster);
        check.arg("-w").arg(&cluster).stderr(Stdio::null());
        if !tokio::process::Command::from(check)
            .status()
            .await
            .context("running setpriv")?
            .success()
        {
            bail!(
                "the postgres system user cannot write {} (is it missing, or is a parent folder private, \
                 such as /root?): choose a data folder it can reach",
                cluster.display()
            );
        }
    }

    if !cluster.join("PG_VERSION").exists() {
        // UTF8 with the C locale: the same collation everywhere, whatever the machine's LANG.
        let mut initdb = pg_command(&bin.join("initdb"), as_root, &cluster);
        initdb
            .arg("-D")
            .arg(&cluster)
            .args([
                "-U",
                "postgres",
                "--auth=trust",
                "--encoding=UTF8",
                "--locale=C",
            ])
            .stdin(Stdio::null())
            .stdout(log_file(&log)?)
            .stderr(log_file(&log)?);
        let status = tokio::process::Command::from(initdb)
            .status()
            .await
            .context("running initdb")?;
        if !status.success() {
            bail!(
                "initdb failed ({status}); end of {}:\n{}",
                log.display(),
                tail(&log)
            );
        }
    }

    // The socket goes into the cluster folder, which the server's user can write, rather than
    // the built-in /var/run/postgresql, which may be missing or a system server's. Socket
    // paths are limited to 107 bytes: past that, TCP only.
    let socket = format!("{}/.s.PGSQL.{}", cluster.display(), at.port);
    let socket_dir = if socket.len() < 100 {
        cluster.clone()
    } else {
        PathBuf::new()
    };
    let mut cmd = pg_command(&bin.join("postgres"), as_root, &cluster);
    cmd.arg("-D")
        .arg(&cluster)
        .args([
            "-p",
            &at.port.to_string(),
            "-c",
            &format!("listen_addresses={}", at.host),
            "-k",
        ])
        .arg(&socket_dir);
    let description = format!("private cluster {}", cluster.display());
    let mut started = spawn(cmd, &log, "INT", description)?;
    // Postgres listens before it accepts connections (recovery): pg_isready tells when it does.
    wait_ready(&mut started, at, Some(&bin.join("pg_isready"))).await?;
    Ok(started)
}

/// `program` run as the `postgres` system user when we are root (setpriv execs it, so the
/// pid we signal is the server's own), else as it is; from a folder that user can read.
fn pg_command(program: &Path, as_root: bool, cwd: &Path) -> Command {
    let mut cmd = if as_root {
        let mut cmd = Command::new("setpriv");
        cmd.args([
            "--reuid=postgres",
            "--regid=postgres",
            "--init-groups",
            "--",
        ])
        .arg(program);
        cmd
    } else {
        Command::new(program)
    };
    cmd.current_dir(cwd);
    cmd
}

fn spawn(
    mut cmd: Command,
    log: &Path,
    stop_signal: &'static str,
    description: String,
) -> Result<Started> {
    cmd.stdin(Stdio::null())
        .stdout(log_file(log)?)
        .stderr(log_file(log)?)
        // Its own process group: Ctrl-C in the terminal reaches jukebox alone, which then
        // shuts down before stopping the servers it still uses.
        .process_group(0);
    let child = cmd
        .spawn()
        .with_context(|| format!("starting {description}"))?;
    Ok(Started {
        child,
        description,
        log: log.to_path_buf(),
        stop_signal,
        signalled: false,
    })
}

/// Waits until the server answers on TCP (and, given pg_isready, accepts connections).
async fn wait_ready(started: &mut Started, at: &Endpoint, pg_isready: Option<&Path>) -> Result<()> {
    let deadline = Instant::now() + START_TIMEOUT;
    loop {
        if let Some(status) = started
            .child
            .try_wait()
            .context("checking a started server")?
        {
            bail!(
                "{} exited ({status}) before answering at {at}; end of {}:\n{}",
                started.description,
                started.log.display(),
                tail(&started.log)
            );
        }
        if is_up(at).await && accepts_connections(pg_isready, at).await {
            return Ok(());
        }
        if Instant::now() > deadline {
            bail!(
                "{} does not answer at {at} after {} s; end of {}:\n{}",
                started.description,
                START_TIMEOUT.as_secs(),
                started.log.display(),
                tail(&started.log)
            );
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

async fn accepts_connections(pg_isready: Option<&Path>, at: &Endpoint) -> bool {
    let Some(pg_isready) = pg_isready.filter(|p| p.is_file()) else {
        return true;
    };
    let status = tokio::process::Command::new(pg_isready)
        .args([
            "-q",
            "-t",
            "1",
            "-U",
            "postgres",
            "-h",
            &at.host,
            "-p",
            &at.port.to_string(),
        ])
        .status()
        .await;
    matches!(status, Ok(s) if s.success())
}

/// Appends, so that earlier runs stay readable above the current one.
fn log_file(path: &Path) -> Result<File> {
    File::options()
        .create(true)
        .append(true)
        .open(path)
        .with_context(|| format!("opening {}", path.display()))
}

fn tail(log: &Path) -> String {
    let text = std::fs::read(log)
        .map(|b| String::from_utf8_lossy(&b).into_owned())
        .unwrap_or_default();
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(LOG_TAIL_LINES)..].join("\n")
}

fn find_on_path(name: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|dir| dir.join(name))
        .find(|p| p.is_file())
}

/// The tools folder of scripts/install-deps.sh comes first: it holds a current nats-server,
/// where Debian's (often first on PATH) is 2.9.
pub fn nats_server_bin() -> Option<PathBuf> {
    let tools = std::env::var_os("JUKEBOX_TOOLS_DIR")
        .map(PathBuf::from)
        .or_else(|| {
            std::env::var_os("HOME").map(|home| Path::new(&home).join(".local/share/jukebox/tools"))
        });
    tools
        .map(|dir| dir.join("bin/nats-server"))
        .filter(|p| p.is_file())
        .or_else(|| find_on_path("nats-server"))
        .or_else(|| Some(PathBuf::from("/usr/sbin/nats-server")).filter(|p| p.is_file()))
}

/// The folder holding initdb and postgres: that of an initdb on PATH (following symlinks,
/// so that both come from one version), else the highest /usr/lib/postgresql/*/bin.
fn postgres_bin_dir() -> Option<PathBuf> {
    let complete = |dir: &Path| dir.join("initdb").is_file() && dir.join("postgres").is_file();
    let on_path = find_on_path("initdb")
        .and_then(|p| p.canonicalize().ok())
        .and_then(|p| Some(p.parent()?.to_path_buf()));
    if let Some(dir) = on_path.filter(|d| complete(d)) {
        return Some(dir);
    }
    let mut versions: Vec<(Vec<u32>, PathBuf)> = std::fs::read_dir("/usr/lib/postgresql")
        .ok()?
        .filter_map(|entry| {
            let entry = entry.ok()?;
            let version = entry
                .file_name()
                .to_str()?
                .split('.')
                .map(|n| n.parse().ok())
                .collect::<Option<Vec<u32>>>()?;
            Some((version, entry.path().join("bin")))
        })
        .filter(|(_, dir)| complete(dir))
        .collect();
    versions.sort();
    versions.pop().map(|(_, dir)| dir)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ep(host: &str, port: u16) -> Endpoint {
        Endpoint {
            host: host.into(),
            port,
        }
    }

    #[test]
    fn database_urls() {
        assert_eq!(
            endpoint("postgres://postgres@127.0.0.1:5433/jukebox", 5432).unwrap(),
            ep("127.0.0.1", 5433)
        );
        assert_eq!(
            endpoint("postgresql://u:p%40ss@db.local/x?sslmode=disable", 5432).unwrap(),
            ep("db.local", 5432)
        );
        assert_eq!(
            endpoint("postgres://[::1]:6000/x", 5432).unwrap(),
            ep("::1", 6000)
        );
        assert_eq!(
            endpoint("postgres://localhost/x", 5432).unwrap(),
            ep("localhost", 5432)
        );
        assert!(endpoint("postgres:///x?host=/var/run/postgresql", 5432).is_err());
        assert!(endpoint("not a url", 5432).is_err());
    }

    #[test]
    fn nats_urls() {
        assert_eq!(
            nats_endpoint("nats://127.0.0.1:4222").unwrap(),
            ep("127.0.0.1", 4222)
        );
        assert_eq!(
            nats_endpoint("nats://localhost").unwrap(),
            ep("localhost", 4222)
        );
        assert_eq!(
            nats_endpoint("127.0.0.1:14222").unwrap(),
            ep("127.0.0.1", 14222)
        );
        assert_eq!(
            nats_endpoint("nats://user:pw@10.0.0.1:5000, nats://10.0.0.2").unwrap(),
            ep("10.0.0.1", 5000)
        );
        assert_eq!(nats_endpoint("tls://[::1]").unwrap(), ep("::1", 4222));
    }

    #[test]
    fn endpoints_display_as_socket_addresses() {
        assert_eq!(ep("127.0.0.1", 4222).to_string(), "127.0.0.1:4222");
        assert_eq!(ep("::1", 5432).to_string(), "[::1]:5432");
    }

    fn free_port() -> u16 {
        std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port()
    }

    /// Run with `cargo test -p jukebox --lib dev_infra -- --ignored`: needs nats-server and
    /// the PostgreSQL server binaries (scripts/install-deps.sh).
    #[tokio::test]
    #[ignore = "starts real nats-server and postgres processes"]
    async fn starts_reuses_and_stops_private_servers() {
        let dir = std::env::temp_dir().join(format!("jukebox-dev-infra-{}", std::process::id()));
        let (pg, nats) = (ep("127.0.0.1", free_port()), ep("127.0.0.1", free_port()));
        let database_url = format!("postgres://postgres@{pg}/postgres");
        let nats_url = format!("nats://{nats}");

        let infra = DevInfra::ensure(&database_url, &nats_url, &dir)
            .await
            .unwrap();
        let summary = infra.summary().join("\n");
        assert!(
            summary.contains("nats: started")
                && summary.contains("postgres: started private cluster"),
            "{summary}"
        );
        assert!(is_up(&pg).await && is_up(&nats).await);

        let again = DevInfra::ensure(&database_url, &nats_url, &dir)
            .await
            .unwrap();
        assert!(
            again
                .summary()
                .iter()
                .all(|line| line.contains("using existing server")),
            "{:?}",
            again.summary()
        );
        drop(again);
        assert!(
            is_up(&pg).await && is_up(&nats).await,
            "dropping a user of existing servers stops nothing"
        );

        drop(infra);
        assert!(!is_up(&pg).await && !is_up(&nats).await);

        // A second start finds the cluster made by the first and skips initdb.
        let infra = DevInfra::ensure(&database_url, &nats_url, &dir)
            .await
            .unwrap();
        assert!(is_up(&pg).await && is_up(&nats).await);
        drop(infra);
        std::fs::remove_dir_all(&dir).unwrap();
    }
}

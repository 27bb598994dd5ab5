//! The servers one fault run owns: its own nats-server (or three, clustered) and its own
//! PostgreSQL cluster, on free loopback ports with their data in the run's temp folder,
//! so the suite can stop and restart them without touching the shared ones. Every child
//! is stopped on drop, also when a test panics.

use std::fs::File;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub use jukebox_test_support::{free_port, tool};

pub fn append_log(path: &Path) -> File {
    File::options()
        .create(true)
        .append(true)
        .open(path)
        .unwrap_or_else(|e| panic!("opening {}: {e}", path.display()))
}

/// Sends `signal` to a process (or, with a negative id, a process group).
pub fn signal(pid: i64, signal: &str) {
    let _ = Command::new("kill")
        .args(["-s", signal, "--", &pid.to_string()])
        .stderr(Stdio::null())
        .status();
}

pub fn wait_tcp(port: u16, within: Duration) -> bool {
    let deadline = Instant::now() + within;
    while Instant::now() < deadline {
        if std::net::TcpStream::connect_timeout(
            &([127, 0, 0, 1], port).into(),
            Duration::from_millis(300),
        )
        .is_ok()
        {
            return true;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    false
}

/// The last lines of a log, for failure messages.
pub fn tail(path: &Path, lines: usize) -> String {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let all: Vec<&str> = text.lines().collect();
    all[all.len().saturating_sub(lines)..].join("\n")
}

/// One nats-server with JetStream on file storage; a member of a cluster when `routes`
/// are given. Restarts keep its port and store.
pub struct NatsNode {
    pub name: String,
    pub port: u16,
    cluster: Option<(u16, Vec<u16>)>,
    store: PathBuf,
    pub log: PathBuf,
    child: Option<Child>,
}

impl NatsNode {
    pub fn new(dir: &Path, name: &str, cluster: Option<(u16, Vec<u16>)>) -> Self {
        let node = Self {
            name: name.to_owned(),
            port: free_port(),
            cluster,
            store: dir.join(format!("{name}-store")),
            log: dir.join(format!("{name}.log")),
            child: None,
        };
        std::fs::create_dir_all(&node.store).unwrap();
        node
    }

    pub fn url(&self) -> String {
        format!("nats://127.0.0.1:{}", self.port)
    }

    pub fn start(&mut self) {
        let mut cmd = Command::new(tool("nats-server"));
        cmd.args(["-js", "-a", "127.0.0.1", "-p", &self.port.to_string()])
            .args(["-n", &self.name, "-sd"])
            .arg(&self.store);
        if let Some((port, peers)) = &self.cluster {
            let routes: Vec<String> = peers
                .iter()
                .map(|p| format!("nats://127.0.0.1:{p}"))
                .collect();
            cmd.args(["--cluster_name", "jukebox-faults"])
                .args(["--cluster", &format!("nats://127.0.0.1:{port}")])
                .args(["--routes", &routes.join(",")]);
        }
        let child = cmd
            .stdin(Stdio::null())
            .stdout(append_log(&self.log))
            .stderr(append_log(&self.log))
            .spawn()
            .expect("starting nats-server");
        self.child = Some(child);
        assert!(
            wait_tcp(self.port, Duration::from_secs(20)),
            "nats-server {} does not answer; end of its log:\n{}",
            self.name,
            tail(&self.log, 30)
        );
    }

    /// Graceful stop (SIGTERM), as an operator's restart or an upgrade would do.
    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            signal(child.id() as i64, "TERM");
            let deadline = Instant::now() + Duration::from_secs(15);
            while Instant::now() < deadline {
                if let Ok(Some(_)) = child.try_wait() {
                    return;
                }
                std::thread::sleep(Duration::from_millis(50));
            }
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

impl Drop for NatsNode {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// A private PostgreSQL cluster (initdb into the run's folder), run by `pg_ctl`; as root
/// it runs as the `postgres` system user, since postgres refuses root.
pub struct Postgres {
    pub port: u16,
    data: PathBuf,
    pub log: PathBuf,
    as_root: bool,
    running: bool,
}

impl Postgres {
    pub fn init(dir: &Path) -> Self {
        let data = dir.join("pgdata");
        let log = dir.join("postgres.log");
        let as_root = Command::new("id")
            .arg("-u")
            .output()
            .map(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
            .unwrap_or(false);
        std::fs::create_dir_all(&data).unwrap();
        if as_root {
            // The postgres user must reach and own its folders (tempdirs are 0700).
            run(Command::new("chmod").arg("755").arg(dir));
            run(Command::new("chown").arg("postgres:postgres").arg(&data));
            std::fs::File::create(&log).unwrap();
            run(Command::new("chown").arg("postgres:postgres").arg(&log));
        }
        let pg = Self {
            port: free_port(),
            data,
            log,
            as_root,
            running: false,
        };
        let mut initdb = pg.command("initdb");
        initdb.arg("-D").arg(&pg.data).args([
            "-U",
            "postgres",
            "--auth=trust",
            "--encoding=UTF8",
            "--locale=C",
            "--no-sync",
        ]);
        run(initdb.stdout(Stdio::null()));
        pg
    }

    fn command(&self, program: &str) -> Command {
        let bin = tool(program);
        let mut cmd = if self.as_root {
            let mut cmd = Command::new("runuser");
            cmd.args(["-u", "postgres", "--"]).arg(bin);
            cmd
        } else {
            Command::new(bin)
        };
        cmd.current_dir(self.data.parent().unwrap());
        cmd
    }

    pub fn url(&self, database: &str) -> String {
        format!(
            "postgres://postgres@127.0.0.1:{}/{database}?sslmode=disable",
            self.port
        )
    }

    pub fn start(&mut self) {
        // fsync off: the suite kills processes, not the machine, so written pages survive
        // in the page cache; synchronous_commit stays on (a commit is in the WAL file).
        let options = format!(
            "-p {} -k {} -c listen_addresses=127.0.0.1 -c max_connections=400 \
             -c fsync=off -c full_page_writes=off",
            self.port,
            self.data.display()
        );
        let mut start = self.command("pg_ctl");
        start
            .arg("-D")
            .arg(&self.data)
            .arg("-l")
            .arg(&self.log)
            .args(["-o", &options, "-w", "-t", "60", "start"]);
        let status = start
            .stdout(Stdio::null())
            .status()
            .expect("running pg_ctl");
        assert!(
            status.success(),
            "postgres does not start; end of its log:\n{}",
            tail(&self.log, 30)
        );
        self.running = true;
    }

    /// `immediate`: like a crash (recovery on the next start); `fast`: a clean stop.
    pub fn stop(&mut self, mode: &str) {
        let mut stop = self.command("pg_ctl");
        stop.arg("-D")
            .arg(&self.data)
            .args(["-m", mode, "-w", "-t", "30", "stop"]);
        let _ = stop.stdout(Stdio::null()).stderr(Stdio::null()).status();
        self.running = false;
    }
}

impl Drop for Postgres {
    fn drop(&mut self) {
        if self.running {
            self.stop("immediate");
        }
    }
}

fn run(cmd: &mut Command) {
    let output = cmd.output().unwrap_or_else(|e| panic!("{cmd:?}: {e}"));
    assert!(
        output.status.success(),
        "{cmd:?} failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
}

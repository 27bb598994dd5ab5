//! A real S3-compatible server (s3s-fs) on a free loopback port.

use std::net::{SocketAddr, TcpStream};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use jukebox_handlers::storage::S3Config;

use crate::{free_port, tool};

/// An s3s-fs server on loopback with its own data folder and keys, stopped on drop.
pub struct S3sFs {
    child: Child,
    pub endpoint: String,
    pub access_key: String,
    pub secret_key: String,
    /// s3s-fs keeps its buckets here; removed on drop.
    _root: tempfile::TempDir,
}

impl S3sFs {
    pub fn start() -> Self {
        let bin = tool("s3s-fs");
        let root = tempfile::tempdir().expect("a temp folder");
        let access_key = format!("test-{}", uuid::Uuid::new_v4().simple());
        let secret_key = uuid::Uuid::new_v4().simple().to_string();
        // The port is free when picked; if another process takes it first, s3s-fs exits
        // and we try another.
        for _ in 0..5 {
            let port = free_port();
            let mut child = Command::new(&bin)
                .args(["--host", "127.0.0.1", "--port", &port.to_string()])
                .args(["--access-key", &access_key, "--secret-key", &secret_key])
                .arg(root.path())
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .unwrap_or_else(|e| panic!("starting {}: {e}", bin.display()));
            let addr = SocketAddr::from(([127, 0, 0, 1], port));
            let deadline = Instant::now() + Duration::from_secs(10);
            while Instant::now() < deadline {
                if let Ok(Some(_)) = child.try_wait() {
                    break;
                }
                if TcpStream::connect_timeout(&addr, Duration::from_millis(200)).is_ok() {
                    return Self {
                        child,
                        endpoint: format!("http://{addr}"),
                        access_key,
                        secret_key,
                        _root: root,
                    };
                }
                std::thread::sleep(Duration::from_millis(20));
            }
            let _ = child.kill();
            let _ = child.wait();
        }
        panic!("s3s-fs ({}) did not start listening", bin.display());
    }

    /// The folder s3s-fs keeps its buckets in: `<bucket>/<object key>` for each object.
    pub fn root(&self) -> &std::path::Path {
        self._root.path()
    }

    /// How `S3Store` reaches this server's `bucket`.
    pub fn store_config(&self, bucket: &str) -> S3Config {
        S3Config {
            endpoint: self.endpoint.clone(),
            bucket: bucket.into(),
            region: "us-east-1".into(),
            access_key: self.access_key.clone().into(),
            secret_key: self.secret_key.clone().into(),
        }
    }

    /// The settings that point a `jukebox` process at this server's `bucket`.
    pub fn env(&self, bucket: &str) -> Vec<(&'static str, String)> {
        vec![
            ("S3_ENDPOINT", self.endpoint.clone()),
            ("S3_ACCESS_KEY", self.access_key.clone()),
            ("S3_SECRET_KEY", self.secret_key.clone()),
            ("S3_BUCKET", bucket.into()),
        ]
    }
}

impl Drop for S3sFs {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

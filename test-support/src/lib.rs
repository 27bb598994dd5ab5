//! What the test binaries and benchmarks share, so none of them copies it: free loopback
//! ports, the tools they run, real servers on loopback (s3s-fs, a media server), test
//! tones, and with the `app` feature a whole app per test (`spawn_app`), the import
//! helpers, a loopback OpenID Connect provider and the wait for projections; with `bench`, the benchmark server.
//!
//! A dev-dependency only: nothing here is compiled into the `jukebox` binary.

pub mod media;
pub mod s3;
pub mod smtp;

#[cfg(feature = "app")]
mod app;
#[cfg(feature = "app")]
pub mod imports;
#[cfg(feature = "app")]
pub mod oidc;
#[cfg(feature = "app")]
pub use app::*;

#[cfg(feature = "bench")]
pub mod bench;

use std::future::Future;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

pub use media::{MediaServer, Tone};
pub use s3::S3sFs;

/// A loopback port nothing listens on right now, for a private server a test starts, and
/// one this process has not handed out before: a port picked for a server that has not
/// started yet is still free, and the kernel may give it to the next `bind(0)` (the fault
/// suite once gave a NATS node's port to the api role too, which then could not bind).
pub fn free_port() -> u16 {
    static HANDED_OUT: std::sync::Mutex<std::collections::BTreeSet<u16>> =
        std::sync::Mutex::new(std::collections::BTreeSet::new());
    let mut handed_out = HANDED_OUT
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    loop {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|listener| listener.local_addr())
            .expect("a free loopback port")
            .port();
        if handed_out.insert(port) {
            return port;
        }
    }
}

/// `127.0.0.1:<free_port()>`.
pub fn free_addr() -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], free_port()))
}

/// A tool the tests need, from `$JUKEBOX_TOOLS_DIR/bin`, PATH or (for the PostgreSQL
/// server tools Debian keeps off PATH) `/usr/lib/postgresql/<version>/bin`. A missing tool
/// fails the test (CI runs scripts/install-deps.sh first), it never skips it.
pub fn tool(name: &str) -> PathBuf {
    jukebox_handlers::media::find_tool(name)
        .or_else(|| postgres_tool(name))
        .unwrap_or_else(|| {
            panic!(
                "{name} is not installed: it was looked for in $JUKEBOX_TOOLS_DIR/bin \
                 (default ~/.local/share/jukebox/tools/bin), on PATH and under \
                 /usr/lib/postgresql. Run scripts/install-deps.sh."
            )
        })
}

/// The newest `/usr/lib/postgresql/<version>/bin/<name>`.
fn postgres_tool(name: &str) -> Option<PathBuf> {
    let mut dirs: Vec<PathBuf> = std::fs::read_dir("/usr/lib/postgresql")
        .ok()?
        .filter_map(|e| e.ok().map(|e| e.path().join("bin")))
        .collect();
    dirs.sort_by_key(|d| {
        d.parent()
            .and_then(|v| v.file_name())
            .and_then(|v| v.to_str())
            .and_then(|v| v.parse::<u32>().ok())
            .unwrap_or(0)
    });
    dirs.into_iter()
        .rev()
        .map(|d| d.join(name))
        .find(|p| p.is_file())
}

/// Polls `check` until it holds, for up to 30 s.
pub async fn eventually<F, Fut>(what: &str, mut check: F)
where
    F: FnMut() -> Fut,
    Fut: Future<Output = bool>,
{
    for _ in 0..300 {
        if check().await {
            return;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("timed out waiting for: {what}");
}

#[cfg(test)]
mod tests {
    #[test]
    fn a_port_is_handed_out_once() {
        let mut ports: Vec<u16> = (0..2_000).map(|_| super::free_port()).collect();
        ports.sort_unstable();
        ports.dedup();
        assert_eq!(ports.len(), 2_000);
    }
}

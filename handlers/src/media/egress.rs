//! The media tools' egress proxy (issue 20, ADR 38): every connection yt-dlp makes, and
//! ffmpeg when yt-dlp hands it a stream, goes through this loopback HTTP proxy
//! (`--proxy`), which resolves the host itself, checks every address against the policy
//! and connects to the address it checked. So a redirect, a playlist entry, an HLS
//! segment or a thumbnail that points at a private, loopback or link-local address fails,
//! and so does a name that resolves to a public address for the first check and to a
//! private one later (DNS rebinding): the tool never resolves or connects on its own.
//!
//! Every failure (a refused address, a closed port, a timeout, an unknown name) gets the
//! same answer, `502 Source Unreachable`, so a job's error cannot tell an open port from a
//! closed one. The real reason goes to the log for operators.
//!
//! The proxy listens on loopback only and wants a per-process random credential, so other
//! local processes cannot use it as an open proxy.

use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use base64::Engine;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

use super::source::forbidden_kind;

/// The reason phrase of every refusal; `ytdlp::classify_error` recognises it.
pub const UNREACHABLE: &str = "Source Unreachable";
const MAX_HEAD: usize = 16 * 1024;
const LOOKUP_TIMEOUT: Duration = Duration::from_secs(10);
const CONNECT_TIMEOUT: Duration = Duration::from_secs(15);
const USER: &str = "jukebox";

/// Which addresses the media tools may connect to.
#[derive(Clone)]
pub struct EgressPolicy(Arc<dyn Fn(IpAddr) -> bool + Send + Sync>);

impl EgressPolicy {
    /// Public addresses only ([`forbidden_kind`] is `None`), or any address when
    /// `IMPORT_ALLOW_PRIVATE_NETWORKS` is set (tests, home networks).
    pub fn from_config(allow_private_networks: bool) -> Self {
        if allow_private_networks {
            Self(Arc::new(|_| true))
        } else {
            Self(Arc::new(|addr| forbidden_kind(addr).is_none()))
        }
    }

    /// An explicit rule (tests: one loopback address stands for the public internet).
    pub fn only(allowed: impl Fn(IpAddr) -> bool + Send + Sync + 'static) -> Self {
        Self(Arc::new(allowed))
    }

    fn allows(&self, addr: IpAddr) -> bool {
        (self.0)(addr)
    }
}

impl std::fmt::Debug for EgressPolicy {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("EgressPolicy")
    }
}

/// Connections the proxy made and refused, for tests and metrics.
#[derive(Debug, Default)]
pub struct EgressCounts {
    pub connected: AtomicU64,
    pub refused: AtomicU64,
}

/// A running proxy; it stops when the last clone is dropped.
#[derive(Clone, Debug)]
pub struct EgressProxy {
    inner: Arc<Running>,
}

#[derive(Debug)]
struct Running {
    url: String,
    counts: Arc<EgressCounts>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for Running {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl EgressProxy {
    /// Binds a loopback port and serves on the current Tokio runtime.
    pub fn start(policy: EgressPolicy) -> std::io::Result<Self> {
        let listener = std::net::TcpListener::bind("127.0.0.1:0")?;
        listener.set_nonblocking(true)?;
        let addr = listener.local_addr()?;
        let listener = TcpListener::from_std(listener)?;
        let secret = hex::encode(rand::random::<[u8; 16]>());
        let expected = format!(
            "Basic {}",
            base64::engine::general_purpose::STANDARD.encode(format!("{USER}:{secret}"))
        );
        let counts = Arc::new(EgressCounts::default());
        let shared = Arc::new(Shared {
            policy,
            expected,
            counts: counts.clone(),
        });
        let task = tokio::spawn(accept_loop(listener, shared));
        Ok(Self {
            inner: Arc::new(Running {
                url: format!("http://{USER}:{secret}@{addr}"),
                counts,
                task,
            }),
        })
    }

    /// The proxy URL with its credential, for yt-dlp's `--proxy`.
    pub fn url(&self) -> &str {
        &self.inner.url
    }

    pub fn counts(&self) -> &EgressCounts {
        &self.inner.counts
    }
}

struct Shared {
    policy: EgressPolicy,
    expected: String,
    counts: Arc<EgressCounts>,
}

async fn accept_loop(listener: TcpListener, shared: Arc<Shared>) {
    loop {
        match listener.accept().await {
            Ok((client, _)) => {
                let shared = shared.clone();
                tokio::spawn(async move {
                    if let Err(error) = serve(client, &shared).await {
                        tracing::debug!(%error, "egress proxy connection ended");
                    }
                });
            }
            Err(error) => {
                tracing::warn!(%error, "egress proxy accept failed");
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
    }
}

/// A request's head as the client sent it.
struct Head {
    method: String,
    target: String,
    version: String,
    headers: Vec<(String, String)>,
}

/// One client connection: one request (CONNECT or an absolute-form HTTP request), then
/// bytes both ways between the client and the one address that was checked.
async fn serve(mut client: TcpStream, shared: &Shared) -> std::io::Result<()> {
    let (head, rest) = match read_head(&mut client).await? {
        Some(read) => read,
        None => return answer(&mut client, "400 Bad Request", "").await,
    };
    let authorized = head.headers.iter().any(|(name, value)| {
        name.eq_ignore_ascii_case("proxy-authorization") && *value == shared.expected
    });
    if !authorized {
        return answer(
            &mut client,
            "407 Proxy Authentication Required",
            "Proxy-Authenticate: Basic realm=\"jukebox\"\r\n",
        )
        .await;
    }
    let connect = head.method.eq_ignore_ascii_case("CONNECT");
    let Some((host, port, path)) = destination(&head, connect) else {
        return answer(&mut client, "400 Bad Request", "").await;
    };
    let mut upstream = match open(&host, port, &shared.policy).await {
        Ok(upstream) => {
            shared.counts.connected.fetch_add(1, Ordering::Relaxed);
            upstream
        }
        Err(reason) => {
            shared.counts.refused.fetch_add(1, Ordering::Relaxed);
            tracing::info!(%host, port, %reason, "egress refused");
            return answer(&mut client, &format!("502 {UNREACHABLE}"), "").await;
        }
    };
    if connect {
        client
            .write_all(b"HTTP/1.1 200 Connection established\r\n\r\n")
            .await?;
    } else {
        upstream
            .write_all(origin_head(&head, &path).as_bytes())
            .await?;
    }
    upstream.write_all(&rest).await?;
    tokio::io::copy_bidirectional(&mut client, &mut upstream).await?;
    Ok(())
}

/// Host, port and (for plain HTTP) the origin-form path of the request's target.
fn destination(head: &Head, connect: bool) -> Option<(String, u16, String)> {
    if connect {
        let url = url::Url::parse(&format!("http://{}", head.target)).ok()?;
        let host = url.host_str()?.to_owned();
        return Some((host, url.port()?, String::new()));
    }
    let url = url::Url::parse(&head.target).ok()?;
    if url.scheme() != "http" || !url.username().is_empty() || url.password().is_some() {
        return None;
    }
    let mut path = url.path().to_owned();
    if let Some(query) = url.query() {
        path.push('?');
        path.push_str(query);
    }
    Some((
        url.host_str()?.to_owned(),
        url.port_or_known_default()?,
        path,
    ))
}

/// Resolves `host` and connects to one of its addresses, if every address it has is
/// allowed (a name with one private address among public ones is refused whole, as the
/// first check does).
async fn open(host: &str, port: u16, policy: &EgressPolicy) -> Result<TcpStream, String> {
    let bare = host.trim_start_matches('[').trim_end_matches(']');
    let addrs: Vec<SocketAddr> = match bare.parse::<IpAddr>() {
        Ok(ip) => vec![SocketAddr::new(ip, port)],
        Err(_) => tokio::time::timeout(LOOKUP_TIMEOUT, tokio::net::lookup_host((bare, port)))
            .await
            .map_err(|_| "lookup timed out".to_owned())?
            .map_err(|e| format!("lookup failed: {e}"))?
            .collect(),
    };
    if addrs.is_empty() {
        return Err("no address".into());
    }
    if let Some(refused) = addrs.iter().find(|addr| !policy.allows(addr.ip())) {
        return Err(format!("{} is not allowed", refused.ip()));
    }
    let mut last = String::from("no address answered");
    for addr in addrs {
        match tokio::time::timeout(CONNECT_TIMEOUT, TcpStream::connect(addr)).await {
            Ok(Ok(stream)) => return Ok(stream),
            Ok(Err(e)) => last = format!("{addr}: {e}"),
            Err(_) => last = format!("{addr}: connect timed out"),
        }
    }
    Err(last)
}

/// The request head for the origin server: origin-form target, no proxy headers, and one
/// request per connection (so a second request on the client's connection cannot reach
/// another host through this one).
fn origin_head(head: &Head, path: &str) -> String {
    let mut out = format!("{} {} {}\r\n", head.method, path, head.version);
    for (name, value) in &head.headers {
        let hop = [
            "proxy-authorization",
            "proxy-connection",
            "connection",
            "keep-alive",
        ]
        .iter()
        .any(|h| name.eq_ignore_ascii_case(h));
        if !hop {
            out.push_str(&format!("{name}: {value}\r\n"));
        }
    }
    out.push_str("Connection: close\r\n\r\n");
    out
}

/// Reads up to the end of the request head; returns it parsed and the bytes after it.
/// `None` when the head is malformed, too long or cut short.
async fn read_head(client: &mut TcpStream) -> std::io::Result<Option<(Head, Vec<u8>)>> {
    let mut buf = Vec::with_capacity(1024);
    let end = loop {
        if let Some(at) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            break at;
        }
        if buf.len() > MAX_HEAD {
            return Ok(None);
        }
        let mut chunk = [0u8; 4096];
        let read = tokio::time::timeout(LOOKUP_TIMEOUT, client.read(&mut chunk))
            .await
            .map_err(|_| std::io::Error::from(std::io::ErrorKind::TimedOut))??;
        if read == 0 {
            return Ok(None);
        }
        buf.extend_from_slice(&chunk[..read]);
    };
    let rest = buf[end + 4..].to_vec();
    let Ok(text) = std::str::from_utf8(&buf[..end]) else {
        return Ok(None);
    };
    let mut lines = text.split("\r\n");
    let mut first = lines.next().unwrap_or("").split(' ');
    let (Some(method), Some(target), Some(version), None) =
        (first.next(), first.next(), first.next(), first.next())
    else {
        return Ok(None);
    };
    let mut headers = Vec::new();
    for line in lines {
        let Some((name, value)) = line.split_once(':') else {
            return Ok(None);
        };
        headers.push((name.trim().to_owned(), value.trim().to_owned()));
    }
    let head = Head {
        method: method.to_owned(),
        target: target.to_owned(),
        version: version.to_owned(),
        headers,
    };
    Ok(Some((head, rest)))
}

async fn answer(client: &mut TcpStream, status: &str, extra: &str) -> std::io::Result<()> {
    let response =
        format!("HTTP/1.1 {status}\r\n{extra}Content-Length: 0\r\nConnection: close\r\n\r\n");
    client.write_all(response.as_bytes()).await?;
    client.shutdown().await
}

#[cfg(test)]
mod tests {
    use super::*;

    fn head(method: &str, target: &str) -> Head {
        Head {
            method: method.into(),
            target: target.into(),
            version: "HTTP/1.1".into(),
            headers: vec![
                ("Host".into(), "example.org".into()),
                ("Proxy-Authorization".into(), "Basic x".into()),
                ("Proxy-Connection".into(), "keep-alive".into()),
            ],
        }
    }

    #[test]
    fn targets_name_one_host_and_port() {
        assert_eq!(
            destination(&head("CONNECT", "example.org:443"), true),
            Some(("example.org".into(), 443, String::new()))
        );
        assert_eq!(
            destination(&head("GET", "http://example.org/a/b?c=d"), false),
            Some(("example.org".into(), 80, "/a/b?c=d".into()))
        );
        assert_eq!(
            destination(&head("GET", "http://[::1]:8080/"), false),
            Some(("[::1]".into(), 8080, "/".into()))
        );
        // Only plain HTTP is forwarded (HTTPS goes through CONNECT), without credentials.
        assert_eq!(destination(&head("GET", "ftp://example.org/"), false), None);
        assert_eq!(
            destination(&head("GET", "http://u:p@example.org/"), false),
            None
        );
        assert_eq!(destination(&head("GET", "/relative"), false), None);
        assert_eq!(destination(&head("CONNECT", "example.org"), true), None);
    }

    #[test]
    fn the_origin_sees_no_proxy_headers_and_one_request() {
        let out = origin_head(&head("GET", "http://example.org/a"), "/a");
        assert_eq!(
            out,
            "GET /a HTTP/1.1\r\nHost: example.org\r\nConnection: close\r\n\r\n"
        );
    }

    #[tokio::test]
    async fn refused_addresses_are_never_connected() {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let public_only = EgressPolicy::from_config(false);
        for host in [
            "127.0.0.1",
            "localhost",
            "169.254.169.254",
            "[::1]",
            "10.1.2.3",
        ] {
            assert!(open(host, port, &public_only).await.is_err(), "{host}");
        }
        assert!(open("127.0.0.1", port, &EgressPolicy::from_config(true))
            .await
            .is_ok());
    }
}

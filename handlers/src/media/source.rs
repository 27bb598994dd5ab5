//! Is this URL safe to hand to yt-dlp? (SECURITY.md item 16)
//!
//! Only `http` and `https`, no credentials in the URL, and (unless private networks are
//! allowed, as in tests and on a home network) every address the host resolves to must be
//! a public one: no loopback, private, link-local, CGNAT, unique-local, multicast,
//! unspecified or reserved address, including IPv4 addresses wrapped in IPv6 forms.
//!
//! This check runs before yt-dlp starts. It cannot see redirects or addresses resolved
//! later (DNS rebinding): the egress proxy ([`super::egress`], ADR 38) checks those.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use url::{Host, Url};

use super::MediaError;

const DNS_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(10);

/// A URL that passed [`check_source_url`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SourceUrl(Url);

impl SourceUrl {
    pub fn as_str(&self) -> &str {
        self.0.as_str()
    }

    pub fn url(&self) -> &Url {
        &self.0
    }
}

impl std::fmt::Display for SourceUrl {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.0.as_str())
    }
}

/// Parses and checks an import URL; with `allow_private_networks` the address check is
/// skipped (the scheme and credential checks are not).
pub async fn check_source_url(
    input: &str,
    allow_private_networks: bool,
) -> Result<SourceUrl, MediaError> {
    let url = parse_source_url(input)?;
    if allow_private_networks {
        return Ok(SourceUrl(url));
    }
    let host = url.host().expect("parse_source_url requires a host");
    let port = url.port_or_known_default().unwrap_or(80);
    let addrs: Vec<IpAddr> = match host {
        Host::Ipv4(ip) => vec![IpAddr::V4(ip)],
        Host::Ipv6(ip) => vec![IpAddr::V6(ip)],
        Host::Domain(name) => {
            let lookup = tokio::time::timeout(DNS_TIMEOUT, tokio::net::lookup_host((name, port)));
            match lookup.await {
                Ok(Ok(addrs)) => addrs.map(|addr| addr.ip()).collect(),
                Ok(Err(e)) => {
                    return Err(MediaError::Network {
                        reason: format!("could not look up the host {name}: {e}"),
                    })
                }
                Err(_) => {
                    return Err(MediaError::Timeout {
                        stage: "host lookup",
                        after: DNS_TIMEOUT,
                    })
                }
            }
        }
    };
    if addrs.is_empty() {
        return Err(MediaError::Network {
            reason: format!("the host {host} has no address"),
        });
    }
    for addr in addrs {
        if let Some(kind) = forbidden_kind(addr) {
            return Err(MediaError::PrivateAddress {
                host: host.to_string(),
                addr,
                kind,
            });
        }
    }
    Ok(SourceUrl(url))
}

/// The checks that need no network: syntax, scheme, host, credentials.
pub fn parse_source_url(input: &str) -> Result<Url, MediaError> {
    let unsupported = |reason: String| MediaError::UnsupportedUrl { reason };
    let input = input.trim();
    if input.len() > 4096 {
        return Err(unsupported(
            "the link is longer than 4096 characters".into(),
        ));
    }
    let url = Url::parse(input).map_err(|e| unsupported(format!("this is not a link ({e})")))?;
    match url.scheme() {
        "http" | "https" => {}
        other => {
            return Err(unsupported(format!(
                "only http and https links can be imported, not {other}:"
            )))
        }
    }
    if url.host().is_none() {
        return Err(unsupported("the link has no host".into()));
    }
    if !url.username().is_empty() || url.password().is_some() {
        return Err(unsupported(
            "links with a user name or password in them are not supported".into(),
        ));
    }
    Ok(url)
}

/// Why `addr` may not be fetched, or `None` for a public address.
pub fn forbidden_kind(addr: IpAddr) -> Option<&'static str> {
    match addr {
        IpAddr::V4(v4) => forbidden_v4(v4),
        IpAddr::V6(v6) => forbidden_v6(v6),
    }
}

fn forbidden_v4(ip: Ipv4Addr) -> Option<&'static str> {
    let [a, b, c, _] = ip.octets();
    Some(match (a, b, c) {
        (0, _, _) => "an unspecified (0.0.0.0/8) address",
        (127, _, _) => "a loopback address",
        (10, _, _) => "a private network address",
        (172, 16..=31, _) => "a private network address",
        (192, 168, _) => "a private network address",
        (169, 254, _) => "a link-local address",
        (100, 64..=127, _) => "a carrier-grade NAT (100.64.0.0/10) address",
        (192, 0, 0) => "a reserved (IETF protocol) address",
        (192, 0, 2) | (198, 51, 100) | (203, 0, 113) => "a documentation address",
        (198, 18..=19, _) => "a benchmarking address",
        (224..=239, _, _) => "a multicast address",
        (240..=255, _, _) => "a reserved (240.0.0.0/4 or broadcast) address",
        _ => return None,
    })
}

fn forbidden_v6(ip: Ipv6Addr) -> Option<&'static str> {
    let seg = ip.segments();
    if ip.is_unspecified() {
        return Some("an unspecified (::) address");
    }
    if ip.is_loopback() {
        return Some("a loopback address");
    }
    // IPv4 inside IPv6: mapped ::ffff:a.b.c.d, compatible ::a.b.c.d, NAT64 64:ff9b::/96,
    // 6to4 2002:AABB:CCDD::/48. Judge the IPv4 address they lead to.
    if let Some(v4) = ip.to_ipv4_mapped() {
        return forbidden_v4(v4);
    }
    if seg[..6] == [0, 0, 0, 0, 0, 0] {
        return forbidden_v4(Ipv4Addr::from(
            (u32::from(seg[6]) << 16) | u32::from(seg[7]),
        ));
    }
    if seg[..6] == [0x64, 0xff9b, 0, 0, 0, 0] {
        return forbidden_v4(Ipv4Addr::from(
            (u32::from(seg[6]) << 16) | u32::from(seg[7]),
        ));
    }
    if seg[0] == 0x2002 {
        return forbidden_v4(Ipv4Addr::from(
            (u32::from(seg[1]) << 16) | u32::from(seg[2]),
        ));
    }
    Some(match seg[0] {
        s if s & 0xfe00 == 0xfc00 => "a unique local (fc00::/7) address",
        s if s & 0xffc0 == 0xfe80 => "a link-local address",
        s if s & 0xffc0 == 0xfec0 => "a site-local address",
        s if s & 0xff00 == 0xff00 => "a multicast address",
        0x2001 if seg[1] == 0x0db8 => "a documentation address",
        0x0100 if seg[1..4] == [0, 0, 0] => "a discard-only (100::/64) address",
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn kind(s: &str) -> Option<&'static str> {
        forbidden_kind(s.parse().unwrap())
    }

    #[test]
    fn public_addresses_pass() {
        for ip in [
            "8.8.8.8",
            "1.1.1.1",
            "142.250.74.14",
            "172.32.0.1",
            "100.128.0.1",
            "2606:4700:4700::1111",
            "2a00:1450:4001:82b::200e",
            "::ffff:8.8.8.8",
            "64:ff9b::808:808",
        ] {
            assert_eq!(kind(ip), None, "{ip}");
        }
    }

    #[test]
    fn private_and_special_addresses_are_refused() {
        for (ip, expected) in [
            ("127.0.0.1", "loopback"),
            ("127.255.0.9", "loopback"),
            ("10.1.2.3", "private"),
            ("172.16.0.1", "private"),
            ("172.31.255.255", "private"),
            ("192.168.1.1", "private"),
            ("169.254.169.254", "link-local"),
            ("100.64.0.1", "carrier-grade NAT"),
            ("0.0.0.0", "unspecified"),
            ("224.0.0.1", "multicast"),
            ("255.255.255.255", "reserved"),
            ("::", "unspecified"),
            ("::1", "loopback"),
            ("fc00::1", "unique local"),
            ("fd12:3456::1", "unique local"),
            ("fe80::1", "link-local"),
            ("ff02::1", "multicast"),
            ("::ffff:127.0.0.1", "loopback"),
            ("::ffff:10.0.0.1", "private"),
            ("::ffff:169.254.169.254", "link-local"),
            ("::127.0.0.1", "loopback"),
            ("64:ff9b::a00:1", "private"),
            ("2002:c0a8:0101::1", "private"),
        ] {
            let got = kind(ip).unwrap_or_else(|| panic!("{ip} was allowed"));
            assert!(got.contains(expected), "{ip}: {got}");
        }
    }

    #[test]
    fn only_plain_http_links_parse() {
        for (input, expected) in [
            ("file:///etc/passwd", "not file:"),
            ("ftp://example.com/a.mp3", "not ftp:"),
            ("javascript:alert(1)", "not javascript:"),
            ("data:audio/mp3;base64,AAAA", "not data:"),
            ("not a url", "not a link"),
            ("https://user:pw@example.com/a.mp3", "user name or password"),
        ] {
            match parse_source_url(input) {
                Err(e @ MediaError::UnsupportedUrl { .. }) => {
                    assert!(e.is_permanent());
                    assert!(e.to_string().contains(expected), "{input}: {e}")
                }
                other => panic!("{input}: {other:?}"),
            }
        }
        assert!(parse_source_url(" https://www.youtube.com/watch?v=dQw4w9WgXcQ ").is_ok());
    }

    #[tokio::test]
    async fn literal_private_hosts_are_refused_without_a_lookup_and_allowed_when_asked() {
        for url in [
            "http://127.0.0.1:8080/a.mp3",
            "http://[::1]/a.mp3",
            "http://169.254.169.254/latest/meta-data/",
            "http://[::ffff:a00:1]/",
            // The url crate normalizes these spellings to 127.0.0.1 and 10.0.0.1.
            "http://2130706433/",
            "http://0x0a.0.0.1/",
        ] {
            let err = check_source_url(url, false).await.unwrap_err();
            assert!(
                matches!(err, MediaError::PrivateAddress { .. }) && err.is_permanent(),
                "{url}: {err:?}"
            );
            assert!(check_source_url(url, true).await.is_ok(), "{url}");
        }
    }
}

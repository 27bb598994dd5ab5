//! Property tests (issue 9) for the import URL check (SSRF, SECURITY.md 16): private,
//! loopback, link-local, multicast and reserved addresses are refused however they are
//! spelled (IPv4 inside IPv6, decimal, octal and hex IPv4 forms, userinfo and fragment
//! tricks), and public addresses pass. The ranges below are written out again from the
//! RFCs, independently of `source.rs`, so the two are checked against each other.
//! 256 cases per property; `JUKEBOX_LONG=1` runs 20,000 (docs/reliability.md).

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use jukebox_handlers::media::source::{check_source_url, forbidden_kind};
use jukebox_handlers::media::MediaError;
use proptest::prelude::*;

fn config() -> ProptestConfig {
    let long = std::env::var("JUKEBOX_LONG").is_ok_and(|v| v == "1");
    ProptestConfig {
        cases: if long { 20_000 } else { 256 },
        ..ProptestConfig::default()
    }
}

/// IPv4 ranges no import may reach (RFC 6890 and friends), as (network, prefix length).
const FORBIDDEN_V4: &[(u32, u32)] = &[
    (0x0000_0000, 8),  // 0.0.0.0/8 "this network"
    (0x0a00_0000, 8),  // 10/8 private
    (0x6440_0000, 10), // 100.64/10 carrier-grade NAT
    (0x7f00_0000, 8),  // 127/8 loopback
    (0xa9fe_0000, 16), // 169.254/16 link-local (cloud metadata)
    (0xac10_0000, 12), // 172.16/12 private
    (0xc000_0000, 24), // 192.0.0/24 IETF protocol assignments
    (0xc000_0200, 24), // 192.0.2/24 documentation
    (0xc0a8_0000, 16), // 192.168/16 private
    (0xc612_0000, 15), // 198.18/15 benchmarking
    (0xc633_6400, 24), // 198.51.100/24 documentation
    (0xcb00_7100, 24), // 203.0.113/24 documentation
    (0xe000_0000, 4),  // 224/4 multicast
    (0xf000_0000, 4),  // 240/4 reserved, and the broadcast address
];

fn in_v4(ip: u32, (net, len): (u32, u32)) -> bool {
    (ip ^ net) >> (32 - len) == 0
}

fn v4_forbidden(ip: Ipv4Addr) -> bool {
    FORBIDDEN_V4
        .iter()
        .any(|&range| in_v4(u32::from(ip), range))
}

/// IPv6: the ranges refused outright, as (network, prefix length).
const FORBIDDEN_V6: &[(u128, u32)] = &[
    (0xfc00 << 112, 7),      // unique local
    (0xfe80 << 112, 10),     // link-local
    (0xfec0 << 112, 10),     // site-local (deprecated)
    (0xff00 << 112, 8),      // multicast
    (0x2001_0db8 << 96, 32), // documentation
    (0x0100 << 112, 64),     // discard-only
];

/// The IPv4 address an IPv6 one carries, where it carries one: mapped, compatible, NAT64,
/// 6to4. Those are judged by it.
fn embedded_v4(ip: u128) -> Option<Ipv4Addr> {
    let low = ip as u32;
    if ip >> 32 == 0xffff || ip >> 32 == 0 || ip >> 32 == 0x0064_ff9b_0000_0000_0000_0000 {
        return Some(Ipv4Addr::from(low));
    }
    (ip >> 112 == 0x2002).then(|| Ipv4Addr::from((ip >> 80) as u32))
}

fn v6_forbidden(ip: Ipv6Addr) -> bool {
    let bits = u128::from(ip);
    if bits <= 1 {
        return true; // :: and ::1
    }
    if let Some(v4) = embedded_v4(bits) {
        return v4_forbidden(v4);
    }
    FORBIDDEN_V6
        .iter()
        .any(|&(net, len)| (bits ^ net) >> (128 - len) == 0)
}

/// Addresses spread over the whole space and packed into each forbidden range.
fn v4() -> impl Strategy<Value = Ipv4Addr> {
    let inside = (prop::sample::select(FORBIDDEN_V4), any::<u32>())
        .prop_map(|((net, len), noise)| net | (noise >> len));
    prop_oneof![any::<u32>(), inside].prop_map(Ipv4Addr::from)
}

fn v6() -> impl Strategy<Value = Ipv6Addr> {
    let inside = (prop::sample::select(FORBIDDEN_V6), any::<u128>())
        .prop_map(|((net, len), noise)| net | (noise >> len));
    let global = any::<u128>().prop_map(|n| (0x2 << 124) | (n >> 4)); // 2000::/4
    let wrapped = (v4(), 0..4u8).prop_map(|(v4, how)| {
        let v4 = u128::from(u32::from(v4));
        match how {
            0 => 0xffff << 32 | v4,
            1 => v4,
            2 => (0x0064_ff9b << 96) | v4,
            _ => (0x2002 << 112) | (v4 << 80),
        }
    });
    prop_oneof![any::<u128>(), inside, global, wrapped].prop_map(Ipv6Addr::from)
}

/// The spellings of an IPv4 host that URL parsers (WHATWG) read as that address.
fn spellings(ip: Ipv4Addr) -> Vec<String> {
    let n = u32::from(ip);
    let [a, b, c, d] = ip.octets();
    vec![
        ip.to_string(),
        n.to_string(),
        format!("0x{n:x}"),
        format!("0{n:o}"),
        format!("0x{a:x}.0x{b:x}.0x{c:x}.0x{d:x}"),
        format!("0{a:o}.0{b:o}.0{c:o}.0{d:o}"),
        format!("{a}.{}", n & 0x00ff_ffff),
        format!("{a}.{b}.{}", n & 0xffff),
        format!("{ip}."),
        format!("[::ffff:{ip}]"),
        format!("[::ffff:{:x}:{:x}]", n >> 16, n & 0xffff),
    ]
}

fn check(url: &str) -> Result<(), MediaError> {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
        .block_on(check_source_url(url, false))
        .map(|_| ())
}

proptest! {
    #![proptest_config(config())]

    #[test]
    fn ipv4_addresses_are_refused_exactly_when_special(ip in v4()) {
        prop_assert_eq!(forbidden_kind(IpAddr::V4(ip)).is_some(), v4_forbidden(ip), "{}", ip);
    }

    #[test]
    fn ipv6_addresses_are_refused_exactly_when_special(ip in v6()) {
        prop_assert_eq!(forbidden_kind(IpAddr::V6(ip)).is_some(), v6_forbidden(ip), "{}", ip);
    }

    #[test]
    fn every_spelling_of_an_address_gets_the_same_answer(ip in v4(), path in "[a-z0-9/]{0,12}") {
        for host in spellings(ip) {
            let url = format!("http://{host}/{path}");
            match check(&url) {
                Ok(()) => prop_assert!(!v4_forbidden(ip), "{} was allowed", url),
                Err(MediaError::PrivateAddress { .. }) => prop_assert!(v4_forbidden(ip), "{} was refused", url),
                Err(other) => prop_assert!(false, "{}: {:?}", url, other),
            }
        }
    }

    #[test]
    fn userinfo_and_fragment_tricks_never_reach_a_private_address(
        private in v4().prop_filter("a private address", |ip| v4_forbidden(*ip)),
        public in v4().prop_filter("a public address", |ip| !v4_forbidden(*ip)),
        user in "[a-zA-Z0-9._~-]{1,16}(:[a-zA-Z0-9._~-]{0,16})?",
    ) {
        for url in [
            format!("http://{user}@{public}/"),
            format!("https://{public}@{private}/"),
            format!("http://{public}:80@{private}/a.mp3"),
            format!("http://{private}#@{public}/"),
            format!("http://{private}?@{public}/"),
            format!("http://{private}\\@{public}/"),
            format!("http://{private}%2F@{public}/"),
            format!("http://{user}@{private}/"),
        ] {
            prop_assert!(check(&url).is_err(), "{} was allowed", url);
        }
    }

    #[test]
    fn only_http_and_https_are_fetched(scheme in "[a-z][a-z0-9+.-]{0,8}", host in v4()) {
        prop_assume!(scheme != "http" && scheme != "https");
        let url = format!("{scheme}://{host}/a.mp3");
        prop_assert!(matches!(check(&url), Err(MediaError::UnsupportedUrl { .. })), "{}", url);
    }
}

//! Property tests (issue 9) for what parses or checks input an attacker controls: the
//! HTTP Range parser, signed stream URLs and access tokens. Each property runs 256 cases
//! by default; `JUKEBOX_LONG=1` runs 20,000 (docs/reliability.md).

use std::time::Duration;

use jsonwebtoken::{Algorithm, EncodingKey, Header};
use jukebox_edge::stream::{
    parse_range, Capability, Denied, RangeDecision, StreamSigner, MAX_RANGES,
};
use jukebox_edge::tokens::JwtKeys;
use proptest::prelude::*;
use serde_json::json;
use uuid::Uuid;

fn config() -> ProptestConfig {
    let long = std::env::var("JUKEBOX_LONG").is_ok_and(|v| v == "1");
    ProptestConfig {
        cases: if long { 20_000 } else { 256 },
        ..ProptestConfig::default()
    }
}

/// Sizes from empty to far past any real file, weighted towards small ones.
fn size() -> impl Strategy<Value = u64> {
    prop_oneof![0..16u64, 0..100_000u64, any::<u64>()]
}

/// Range headers that look like the grammar, and many that almost do.
fn range_header() -> impl Strategy<Value = String> {
    let number = prop_oneof![
        Just(String::new()),
        (0..2_000u64).prop_map(|n| n.to_string()),
        any::<u64>().prop_map(|n| n.to_string()),
        "[0-9]{19,25}",
        "[ +x0-9-]{1,4}",
    ];
    let spec = (number.clone(), "[-]|[ ]?-[ ]?|--|", number)
        .prop_map(|(a, dash, b)| format!("{a}{dash}{b}"));
    (
        prop_oneof![Just("bytes="), Just("bytes ="), Just("BYTES="), Just("")],
        prop::collection::vec(spec, 0..12),
        prop_oneof![Just(","), Just(", "), Just(";")],
    )
        .prop_map(|(unit, specs, sep)| format!("{unit}{}", specs.join(sep)))
}

proptest! {
    #![proptest_config(config())]

    #[test]
    fn the_range_parser_never_panics_and_stays_inside_the_file(
        header in prop_oneof![
            range_header().prop_map(String::into_bytes),
            prop::collection::vec(any::<u8>(), 0..64),
        ],
        size in size(),
    ) {
        if let RangeDecision::Partial(first, last) = parse_range(&header, size) {
            prop_assert!(first <= last && last < size, "{first}-{last} of {size}");
        }
    }

    #[test]
    fn a_valid_range_round_trips(size in 1..u64::MAX, a in any::<u64>(), b in any::<u64>()) {
        let first = a % size;
        let last = first + b % (size - first);
        let header = format!("bytes={first}-{last}");
        prop_assert_eq!(parse_range(header.as_bytes(), size), RangeDecision::Partial(first, last));
        // Past the end is cut to the end; from `first` on is the rest of the file.
        let past = format!("bytes={first}-{}", last.saturating_add(size));
        prop_assert_eq!(parse_range(past.as_bytes(), size), RangeDecision::Partial(first, size - 1));
        let open = format!("bytes={first}-");
        prop_assert_eq!(parse_range(open.as_bytes(), size), RangeDecision::Partial(first, size - 1));
    }

    #[test]
    fn a_suffix_range_is_the_last_bytes(size in size(), suffix in any::<u64>()) {
        let expected = if suffix == 0 || size == 0 {
            RangeDecision::Unsatisfiable
        } else {
            RangeDecision::Partial(size - suffix.min(size), size - 1)
        };
        prop_assert_eq!(parse_range(format!("bytes=-{suffix}").as_bytes(), size), expected);
    }

    #[test]
    fn a_range_starting_past_the_end_is_unsatisfiable(size in size(), past in any::<u64>()) {
        let first = size.saturating_add(past % 1000);
        prop_assume!(first >= size);
        prop_assert_eq!(
            parse_range(format!("bytes={first}-").as_bytes(), size),
            RangeDecision::Unsatisfiable
        );
    }

    #[test]
    fn too_many_ranges_are_refused_and_several_ignored(size in 1..100_000u64, count in 2..40usize) {
        let header = format!("bytes={}", vec!["0-0"; count].join(","));
        let expected = if count > MAX_RANGES { RangeDecision::Unsatisfiable } else { RangeDecision::Full };
        prop_assert_eq!(parse_range(header.as_bytes(), size), expected);
    }
}

fn signer() -> StreamSigner {
    StreamSigner::new(
        b"stream key, used for nothing else",
        Duration::from_secs(300),
    )
}

/// A different character in the same position (any printable ASCII or a multi-byte one).
fn replace_char(text: &str, index: usize, with: char) -> Option<String> {
    let chars: Vec<char> = text.chars().collect();
    let at = index % chars.len().max(1);
    (chars.get(at) != Some(&with)).then(|| {
        let mut changed = chars;
        if changed.is_empty() {
            changed.push(with);
        } else {
            changed[at] = with;
        }
        changed.into_iter().collect()
    })
}

fn other_char() -> impl Strategy<Value = char> {
    prop_oneof![8 => proptest::char::range(' ', '~'), 1 => any::<char>()]
}

proptest! {
    #![proptest_config(config())]

    #[test]
    fn a_signed_url_verifies_until_it_expires(
        song in "\\PC{1,80}",
        user in any::<u128>(),
        expires in any::<i64>(),
        now in any::<i64>(),
    ) {
        let (signer, user) = (signer(), Uuid::from_u128(user));
        let signature = signer.sign(&song, user, expires);
        let expected = if expires > now { Ok(()) } else { Err(Denied::Expired) };
        prop_assert_eq!(signer.verify(&song, user, expires, &signature, now), expected);
        // A stream signature never opens the cover, nor the reverse.
        prop_assert_eq!(
            signer.verify_for(Capability::Cover, &song, user, expires, &signature, i64::MIN),
            Err(Denied::BadSignature)
        );
    }

    #[test]
    fn any_single_change_breaks_the_signature(
        song in "[ -~]{1,60}",
        user in any::<u128>(),
        expires in 1..i64::MAX,
        index in any::<usize>(),
        with in other_char(),
        bit in 0..128u32,
        delta in prop_oneof![Just(1i64), Just(-1), any::<i64>()],
    ) {
        let (signer, user) = (signer(), Uuid::from_u128(user));
        let signature = signer.sign(&song, user, expires);
        let bad = Err(Denied::BadSignature);
        if let Some(other_song) = replace_char(&song, index, with) {
            prop_assert_eq!(signer.verify(&other_song, user, expires, &signature, 0), bad);
        }
        let other_user = Uuid::from_u128(user.as_u128() ^ (1u128 << bit));
        prop_assert_eq!(signer.verify(&song, other_user, expires, &signature, 0), bad);
        let other_expiry = expires.wrapping_add(delta);
        if other_expiry != expires {
            prop_assert_eq!(signer.verify(&song, user, other_expiry, &signature, i64::MIN), bad);
        }
        if let Some(other_signature) = replace_char(&signature, index, with) {
            prop_assert_eq!(signer.verify(&song, user, expires, &other_signature, 0), bad);
        }
        let cut = index % signature.len();
        prop_assert_eq!(signer.verify(&song, user, expires, &signature[..cut], 0), bad);
        prop_assert_eq!(signer.verify(&song, user, expires, &format!("{signature}{with}"), 0), bad);
        let other_key = StreamSigner::new(b"another key", Duration::from_secs(300));
        prop_assert_eq!(other_key.verify(&song, user, expires, &signature, 0), bad);
    }
}

const ISSUER: &str = "jukebox";
const AUDIENCE: &str = "jukebox-api";
const SECRET: &[u8] = b"0123456789abcdef0123456789abcdef";

fn keys() -> JwtKeys {
    JwtKeys::new(SECRET, ISSUER, AUDIENCE)
}

fn now() -> i64 {
    time::OffsetDateTime::now_utc().unix_timestamp()
}

/// A token with these claims, HS256 with `secret`.
fn token(secret: &[u8], claims: &serde_json::Value) -> String {
    jsonwebtoken::encode(
        &Header::new(Algorithm::HS256),
        claims,
        &EncodingKey::from_secret(secret),
    )
    .unwrap()
}

fn good_claims() -> serde_json::Value {
    let now = now();
    json!({
        "sub": Uuid::now_v7(), "sid": Uuid::new_v4(), "iss": ISSUER, "aud": AUDIENCE,
        "exp": now + 600, "nbf": now - 1, "iat": now - 1, "typ": "access",
    })
}

proptest! {
    #![proptest_config(config())]

    #[test]
    fn arbitrary_text_never_verifies(
        text in prop_oneof![
            "\\PC{0,300}",
            "[A-Za-z0-9_-]{0,80}\\.[A-Za-z0-9_-]{0,200}\\.[A-Za-z0-9_-]{0,80}",
            "eyJ[A-Za-z0-9_-]{10,60}\\.eyJ[A-Za-z0-9_=+/-]{10,200}\\.[A-Za-z0-9_.-]{0,80}",
        ],
    ) {
        prop_assert!(keys().verify(&text).is_err());
    }

    #[test]
    fn any_single_change_to_a_token_is_refused(index in any::<usize>(), with in other_char()) {
        let token = token(SECRET, &good_claims());
        prop_assert!(keys().verify(&token).is_ok());
        if let Some(changed) = replace_char(&token, index, with) {
            prop_assert!(keys().verify(&changed).is_err(), "{changed}");
        }
    }

    #[test]
    fn a_token_with_any_wrong_claim_is_refused(
        claim in prop::sample::select(vec!["iss", "aud", "typ", "sub", "sid", "exp", "nbf"]),
        value in prop_oneof![
            "[ -~]{0,20}".prop_map(serde_json::Value::from),
            any::<i64>().prop_map(serde_json::Value::from),
            Just(serde_json::Value::Null),
        ],
        drop in any::<bool>(),
        late in 6..100_000i64,
    ) {
        let mut claims = good_claims();
        let right = claims[claim].clone();
        // A wrong value (never the right one), or the claim left out.
        if drop {
            claims.as_object_mut().unwrap().remove(claim);
        } else {
            claims[claim] = match claim {
                // Numbers of the right type but out of range: expired, or not yet valid
                // (past the 5 s leeway).
                "exp" if value.is_i64() => json!(now() - late),
                "nbf" if value.is_i64() => json!(now() + late),
                _ => value,
            };
            prop_assume!(claims[claim] != right);
        }
        prop_assert!(keys().verify(&token(SECRET, &claims)).is_err(), "{claims}");
    }

    #[test]
    fn a_token_signed_with_another_key_is_refused(key in prop::collection::vec(any::<u8>(), 1..64)) {
        prop_assume!(key != SECRET);
        prop_assert!(keys().verify(&token(&key, &good_claims())).is_err());
    }
}

#[test]
fn unsigned_and_other_algorithm_tokens_are_refused() {
    use base64::engine::general_purpose::URL_SAFE_NO_PAD;
    use base64::Engine;
    let payload = URL_SAFE_NO_PAD.encode(good_claims().to_string());
    for header in [
        json!({"alg": "none", "typ": "JWT"}),
        json!({"alg": "HS512", "typ": "JWT"}),
        json!({"alg": "RS256", "typ": "JWT"}),
    ] {
        let head = URL_SAFE_NO_PAD.encode(header.to_string());
        for signature in ["", "AAAA"] {
            let forged = format!("{head}.{payload}.{signature}");
            assert!(keys().verify(&forged).is_err(), "{header}");
        }
    }
    let hs512 = jsonwebtoken::encode(
        &Header::new(Algorithm::HS512),
        &good_claims(),
        &EncodingKey::from_secret(SECRET),
    )
    .unwrap();
    assert!(keys().verify(&hs512).is_err());
}

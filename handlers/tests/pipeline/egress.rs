//! The egress proxy with real yt-dlp (ADR 38). 127.0.0.2 stands for the public internet:
//! the proxy's policy allows it and nothing else, so a redirect to 127.0.0.1 (a live
//! server), to 169.254.169.254 or to `localhost` must fail, and fail with the very
//! message a closed port gets.

use std::net::{IpAddr, Ipv4Addr};

use axum::extract::Query;
use axum::response::Redirect;
use jukebox_handlers::media::{
    EgressPolicy, EgressProxy, MediaError, Pipeline, PipelineConfig, Tools,
};
use jukebox_test_support::media::{make_tone, MediaServer, Tone};

const PUBLIC: Ipv4Addr = Ipv4Addr::new(127, 0, 0, 2);

const TONE: Tone<'static> = Tone {
    seconds: 3,
    title: "Through The Proxy",
    artist: "The Test Tones",
    cover: false,
};

/// A "public" server on 127.0.0.2: `/tone.mp3`, and `/go?to=<url>` redirecting anywhere.
async fn public_server(media: &std::path::Path) -> (String, tokio::task::JoinHandle<()>) {
    #[derive(serde::Deserialize)]
    struct To {
        to: String,
    }
    let tone = std::fs::read(media.join("tone.mp3")).unwrap();
    let app = axum::Router::new()
        .route(
            "/tone.mp3",
            axum::routing::get(move || {
                let tone = tone.clone();
                async move { ([("content-type", "audio/mpeg")], tone) }
            }),
        )
        .route(
            "/go",
            axum::routing::get(|Query(to): Query<To>| async move { Redirect::temporary(&to.to) }),
        );
    let listener = tokio::net::TcpListener::bind((PUBLIC, 0)).await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let task = tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    (base, task)
}

fn unreachable_reason<T>(result: Result<T, MediaError>) -> String {
    match result {
        Err(error @ MediaError::Network { .. }) => error.to_string(),
        Err(other) => panic!("expected the source to be unreachable, got {other:?}"),
        Ok(_) => panic!("expected the source to be unreachable, but it was fetched"),
    }
}

#[tokio::test]
async fn redirects_to_private_addresses_fail_like_a_closed_port() {
    let media = tempfile::tempdir().unwrap();
    let work = tempfile::tempdir().unwrap();
    make_tone(&media.path().join("tone.mp3"), &TONE);
    let (public, _server) = public_server(media.path()).await;
    // A live server on 127.0.0.1 that must never be reached.
    let private = MediaServer::start(media.path()).await;
    let egress = EgressProxy::start(EgressPolicy::only(|ip| ip == IpAddr::V4(PUBLIC))).unwrap();
    let mut config = PipelineConfig::new(Tools::discover().unwrap_or_else(|e| panic!("{e}")));
    // The first-hop check passes 127.0.0.2; the proxy decides every connection.
    config.allow_private_networks = true;
    config.work_dir = Some(work.path().to_owned());
    config.limits.egress = Some(egress.clone());
    let pipeline = Pipeline::new(config);

    // Through the proxy, a public source imports.
    let mut ignore = |_| {};
    let track = pipeline
        .import_url(&format!("{public}/tone.mp3"), &mut ignore)
        .await
        .expect("a public source imports through the proxy");
    assert_eq!(track.metadata.title, "Through The Proxy");
    drop(track);
    let connected = egress
        .counts()
        .connected
        .load(std::sync::atomic::Ordering::Relaxed);
    assert!(
        connected >= 2,
        "resolve and download went through the proxy: {connected}"
    );

    // A port on the public address that nothing listens on.
    let closed = {
        let socket = std::net::TcpListener::bind((PUBLIC, 0)).unwrap();
        socket.local_addr().unwrap().port()
    };
    let closed_port = unreachable_reason(
        pipeline
            .resolve(&format!("http://{PUBLIC}:{closed}/tone.mp3"))
            .await,
    );
    assert_eq!(
        closed_port,
        "network problem while fetching the source: the source could not be reached"
    );

    let live_private = private.url("tone.mp3");
    let port = live_private
        .rsplit(':')
        .next()
        .unwrap()
        .split('/')
        .next()
        .unwrap()
        .to_owned();
    for target in [
        live_private.clone(),
        format!("http://localhost:{port}/media/tone.mp3"),
        "http://169.254.169.254/latest/meta-data/".to_owned(),
        format!("http://[::1]:{port}/media/tone.mp3"),
    ] {
        let url = format!("{public}/go?to={}", urlencode(&target));
        let reason = unreachable_reason(pipeline.resolve(&url).await);
        assert_eq!(reason, closed_port, "redirect to {target}");
    }
    assert!(
        private.requests("tone.mp3").is_empty(),
        "the private server was reached"
    );
    let refused = egress
        .counts()
        .refused
        .load(std::sync::atomic::Ordering::Relaxed);
    assert!(refused >= 5, "every refusal was the proxy's: {refused}");
}

fn urlencode(s: &str) -> String {
    url::form_urlencoded::byte_serialize(s.as_bytes()).collect()
}

#[tokio::test]
async fn the_proxy_serves_only_its_own_credential() {
    let egress = EgressProxy::start(EgressPolicy::from_config(true)).unwrap();
    let (base, _server) = {
        let media = tempfile::tempdir().unwrap();
        make_tone(&media.path().join("tone.mp3"), &TONE);
        public_server(media.path()).await
    };
    let url = url::Url::parse(egress.url()).unwrap();
    let without = reqwest::Client::builder()
        .proxy(
            reqwest::Proxy::http(format!(
                "http://{}",
                url.host_str().unwrap().to_owned() + ":" + &url.port().unwrap().to_string()
            ))
            .unwrap(),
        )
        .build()
        .unwrap();
    let answer = without
        .get(format!("{base}/tone.mp3"))
        .send()
        .await
        .unwrap();
    assert_eq!(answer.status(), 407);
    let with = reqwest::Client::builder()
        .proxy(reqwest::Proxy::http(egress.url()).unwrap())
        .build()
        .unwrap();
    let answer = with.get(format!("{base}/tone.mp3")).send().await.unwrap();
    assert_eq!(answer.status(), 200);
    assert_eq!(answer.headers()["content-type"], "audio/mpeg");
}

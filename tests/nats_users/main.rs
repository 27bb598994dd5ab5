//! The production NATS configuration (infra/nats): a real `nats-server` runs it on loopback,
//! the roles run against it each as its own user, and every role user is shown refused
//! outside its subjects.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use async_nats::jetstream;
use futures::StreamExt;
use jukebox::app::{self, Role, RoleOptions, Running, Services};
use jukebox::Config;
use reqwest::StatusCode;
use tokio::sync::mpsc;

use jukebox_test_support::{admin_database_url, eventually, free_port, spawn_app_with};

const ROLE_USERS: [&str; 7] = [
    "edge",
    "processor",
    "relay",
    "projector",
    "downloader",
    "reactor",
    "stream",
];

/// `nats-server -c infra/nats/nats.conf` on free loopback ports with a temp store.
struct PrivateNats {
    child: Child,
    port: u16,
    log: PathBuf,
    _dir: tempfile::TempDir,
}

impl PrivateNats {
    fn start() -> Self {
        let bin = jukebox::dev_infra::nats_server_bin()
            .expect("nats-server is installed (scripts/install-deps.sh)");
        let dir = tempfile::tempdir().unwrap();
        let log = dir.path().join("nats.log");
        let (port, monitor) = (free_port(), free_port());
        let config = Path::new(env!("CARGO_MANIFEST_DIR")).join("infra/nats/nats.conf");
        let mut command = Command::new(bin);
        command
            .arg("-c")
            .arg(&config)
            .args(["-a", "127.0.0.1", "-p", &port.to_string()])
            .args(["-m", &monitor.to_string(), "-sd"])
            .arg(dir.path().join("store"))
            .arg("-l")
            .arg(&log)
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        for user in ["admin"].iter().chain(&ROLE_USERS) {
            command.env(
                format!("NATS_{}_PASSWORD", user.to_uppercase()),
                password(user),
            );
        }
        let mut child = command.spawn().expect("nats-server starts");
        for _ in 0..100 {
            if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
                return Self {
                    child,
                    port,
                    log,
                    _dir: dir,
                };
            }
            if let Ok(Some(status)) = child.try_wait() {
                panic!(
                    "nats-server -c {} exited ({status}): {}",
                    config.display(),
                    std::fs::read_to_string(&log).unwrap_or_default()
                );
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        panic!("nats-server did not listen on {port}");
    }

    fn url(&self) -> String {
        format!("nats://127.0.0.1:{}", self.port)
    }

    /// Lines of the server log that report a refused publish or subscription.
    fn violations(&self) -> Vec<String> {
        std::fs::read_to_string(&self.log)
            .unwrap_or_default()
            .lines()
            .filter(|line| line.contains("Violation"))
            .map(str::to_owned)
            .collect()
    }
}

impl Drop for PrivateNats {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Publishes `payload` to `subject` until `subscription` receives it (5 s at most).
/// async-nats' flush only writes the socket: the server may take the publisher's message
/// before the subscriber's SUB on its other connection (clean-clone CI runs did), so one
/// publish can miss an allowed subscription. A refused one never arrives, however often.
async fn delivered(
    publisher: &async_nats::Client,
    subject: &'static str,
    payload: &'static str,
    subscription: &mut async_nats::Subscriber,
) -> Option<async_nats::Message> {
    for _ in 0..25 {
        publisher.publish(subject, payload.into()).await.unwrap();
        publisher.flush().await.unwrap();
        if let Ok(message) =
            tokio::time::timeout(Duration::from_millis(200), subscription.next()).await
        {
            return message;
        }
    }
    None
}

fn password(user: &str) -> String {
    format!("{user}-test-password-{}", std::process::id())
}

/// A client as `user`, like the app's (`_INBOX_<user>` inboxes), that reports the
/// server's errors (permission violations) on the returned channel.
async fn connect_as(
    nats: &PrivateNats,
    user: &str,
) -> (async_nats::Client, mpsc::UnboundedReceiver<String>) {
    let (tx, rx) = mpsc::unbounded_channel();
    let client = async_nats::ConnectOptions::with_user_and_password(user.into(), password(user))
        .custom_inbox_prefix(format!("_INBOX_{user}"))
        .event_callback(move |event| {
            let tx = tx.clone();
            async move {
                if let async_nats::Event::ServerError(error) = event {
                    let _ = tx.send(error.to_string());
                }
            }
        })
        .connect(nats.url())
        .await
        .unwrap_or_else(|e| panic!("{user} connects: {e}"));
    (client, rx)
}

/// Runs `roles` in their own process-like set, connected to NATS as `user`.
async fn start_as(base: &Config, user: &str, roles: &[Role]) -> Running {
    let mut config = base.clone();
    config.nats_user = Some(user.into());
    config.nats_password = Some(password(user).into());
    let services = Services::connect(&config)
        .await
        .unwrap_or_else(|e| panic!("{user} connects: {e:#}"));
    let mut options = RoleOptions::from_config(&config, roles).unwrap();
    let any = "127.0.0.1:0".parse().unwrap();
    (options.api, options.web, options.stream) = (any, any, any);
    options.ack_wait = Duration::from_secs(2);
    app::start(&services, options)
        .await
        .unwrap_or_else(|e| panic!("{user} starts {roles:?}: {e:#}"))
}

#[tokio::test]
async fn roles_with_their_own_users_carry_a_sign_up_to_the_read_models() {
    let nats = PrivateNats::start();
    // A node that is down comes first in the list: the client moves on to the next.
    let servers = format!("nats://127.0.0.1:{},{}", free_port(), nats.url());
    // `jukebox migrate`'s part: the admin user creates the streams (empty namespace, as
    // in production, on this private server).
    let app = spawn_app_with(
        &[],
        &[
            ("NATS_URL", servers),
            ("NATS_NAMESPACE", String::new()),
            ("NATS_USER", "admin".into()),
            ("NATS_PASSWORD", password("admin")),
            (
                "STREAM_SIGNING_SECRET",
                "stream-secret-stream-secret-0123".into(),
            ),
            // The import below points at a closed loopback port: fail it at once.
            ("IMPORT_ALLOW_PRIVATE_NETWORKS", "1".into()),
            ("IMPORT_MAX_ATTEMPTS", "1".into()),
        ],
    )
    .await;
    assert_eq!(app.services.topology.namespace.prefix(), "");

    let mut running = Vec::new();
    for (user, roles) in [
        ("processor", &[Role::Processor][..]),
        ("relay", &[Role::Relay]),
        ("projector", &[Role::Projector]),
        ("downloader", &[Role::Downloader]),
        ("reactor", &[Role::Reactor]),
        ("stream", &[Role::Stream]),
        ("edge", &[Role::Api, Role::Web]),
    ] {
        running.push(start_as(&app.config, user, roles).await);
    }
    let api = running.last().unwrap().api_addr.unwrap();

    let response = app
        .http
        .post(format!("http://{api}/auth/signup"))
        .json(&serde_json::json!({ "email": "perm@example.com", "password": "correct horse battery" }))
        .send()
        .await
        .unwrap();
    // 201, not 202: the processor's answer came back to the edge.
    assert_eq!(response.status(), StatusCode::CREATED);
    // The projector's path: it has applied the sign-up at the answer's position.
    app.applied(
        &app.position_of(&response),
        &[jukebox_projections::ReadModel::of::<
            jukebox_projections::AdminUsers,
        >()],
    )
    .await;
    let projected: i64 =
        sqlx::query_scalar("SELECT count(*) FROM admin_users WHERE email = 'perm@example.com'")
            .fetch_one(app.pool())
            .await
            .unwrap();
    assert_eq!(projected, 1);
    // The reactor's path: it pulls UserSignedUp, sends IssueVerification and waits for
    // its answer (the mail goes to the log: no SMTP_URL here). Its command answers no
    // request of the test, so there is no position: wait for the event.
    eventually("the reactor issues the verification token", || async {
        sqlx::query_scalar::<_, i64>(
            "SELECT count(*) FROM events WHERE event_type = 'VerificationIssued'",
        )
        .fetch_one(app.pool())
        .await
        .unwrap()
            == 1
    })
    .await;

    // The downloader's path: it pulls ImportRequested, sends its own commands (stage,
    // failure) and waits for their answers; the import fails for want of a server.
    let http = &app.http;
    let signed_in: serde_json::Value = http
        .post(format!("http://{api}/auth/signin"))
        .json(&serde_json::json!({ "email": "perm@example.com", "password": "correct horse battery" }))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let token = signed_in["access_token"].as_str().expect("signed in");
    let url = format!("http://127.0.0.1:{}/song.mp3", free_port());
    let response = http
        .post(format!("http://{api}/songs/import"))
        .bearer_auth(token)
        .json(&serde_json::json!({ "url": url }))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::ACCEPTED);
    let job: serde_json::Value = response.json().await.unwrap();
    let job_url = format!("http://{api}/jobs/{}", job["job_id"].as_str().unwrap());
    // The downloader's outcome is asynchronous and has no position the test was given.
    eventually("the downloader fails the import", || async {
        let job: serde_json::Value = http
            .get(&job_url)
            .bearer_auth(token)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        job["status"] == "failed"
    })
    .await;
    let stored: Vec<String> = sqlx::query_scalar(
        "SELECT event_type FROM events WHERE aggregate_type = 'import' ORDER BY sequence",
    )
    .fetch_all(app.pool())
    .await
    .unwrap();
    assert_eq!(
        stored.last().map(String::as_str),
        Some("ImportFailed"),
        "{stored:?}"
    );
    // The edge's app credential commands (issue 18) are within its subjects.
    let response = http
        .post(format!("http://{api}/me/app-credentials"))
        .bearer_auth(token)
        .json(&serde_json::json!({ "name": "Phone" }))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::CREATED);

    // Every consumer-owning role made its own durable consumer.
    let js = app.js();
    let mut names = Vec::new();
    for stream in ["COMMANDS", "EVENTS"] {
        let mut consumers = js.get_stream(stream).await.unwrap().consumer_names();
        while let Some(name) = consumers.next().await {
            names.push(format!("{stream}/{}", name.unwrap()));
        }
    }
    names.sort();
    let mut expected: Vec<String> = [
        "EVENTS/proj-all".to_owned(),
        "COMMANDS/processor".into(),
        "EVENTS/downloader".into(),
        "EVENTS/reactor-mail".into(),
    ]
    .into();
    expected.sort();
    assert_eq!(names, expected);
    assert_eq!(
        nats.violations(),
        Vec::<String>::new(),
        "no role was refused"
    );

    for run in running {
        run.stop().await.unwrap();
    }
    app.cleanup().await;
}

enum Probe {
    Publish(&'static str),
    Subscribe(&'static str),
}
use Probe::{Publish, Subscribe};

#[tokio::test]
async fn each_role_user_is_refused_outside_its_subjects() {
    let nats = PrivateNats::start();
    let (admin, _) = connect_as(&nats, "admin").await;
    let refused: [(&str, Vec<Probe>); 7] = [
        (
            "edge",
            vec![
                Subscribe("evt.>"),
                Subscribe("cmd.>"),
                Subscribe("_INBOX.>"),
                Subscribe("_INBOX_processor.>"),
                Subscribe("reply.downloader.>"),
                Subscribe("reply.>"),
                Publish("evt.user.u1.UserSignedUp"),
                Publish("cmd.track.store"),
                Publish("cmd.import.complete"),
                Publish("reply.e1.c1"),
                Publish("$JS.API.STREAM.DELETE.EVENTS"),
                Publish("$JS.API.CONSUMER.CREATE.COMMANDS.processor"),
            ],
        ),
        (
            "processor",
            vec![
                Subscribe("reply.>"),
                Subscribe("evt.>"),
                Subscribe("cmd.>"),
                Publish("evt.user.u1.UserSignedUp"),
                Publish("cmd.user.signup"),
                Publish("$JS.API.STREAM.UPDATE.COMMANDS"),
                Publish("$JS.API.CONSUMER.MSG.NEXT.EVENTS.proj-all"),
            ],
        ),
        (
            "relay",
            vec![
                Subscribe("cmd.>"),
                Subscribe("evt.>"),
                Publish("cmd.user.signup"),
                Publish("reply.e1.c1"),
                Publish("$JS.API.CONSUMER.CREATE.COMMANDS.processor"),
                Publish("$JS.API.CONSUMER.MSG.NEXT.COMMANDS.processor"),
            ],
        ),
        (
            "projector",
            vec![
                Subscribe("evt.>"),
                Publish("evt.user.u1.UserSignedUp"),
                Publish("cmd.user.signup"),
                Publish("$JS.API.CONSUMER.MSG.NEXT.COMMANDS.processor"),
                Publish("$JS.API.CONSUMER.CREATE.EVENTS.downloader.evt.import.*.ImportRequested"),
                Publish("$JS.ACK.COMMANDS.processor.1.1.1.1.1.1.1"),
            ],
        ),
        (
            "downloader",
            vec![
                Subscribe("evt.>"),
                Subscribe("cmd.>"),
                Subscribe("reply.edge.>"),
                Publish("evt.track.t1.TrackStored"),
                Publish("cmd.user.grant_role"),
                Publish("cmd.import.request"),
                Publish("$JS.API.CONSUMER.MSG.NEXT.COMMANDS.processor"),
            ],
        ),
        (
            "reactor",
            vec![
                Subscribe("evt.>"),
                Subscribe("cmd.>"),
                Subscribe("reply.edge.>"),
                Publish("evt.user.u1.UserSignedUp"),
                Publish("cmd.user.verify_email"),
                Publish("cmd.user.grant_role"),
                Publish("cmd.import.request"),
                Publish("$JS.API.CONSUMER.MSG.NEXT.EVENTS.proj-all"),
                Publish("$JS.API.STREAM.DELETE.EVENTS"),
            ],
        ),
        (
            "stream",
            vec![
                Subscribe("evt.>"),
                Subscribe("progress.>"),
                Subscribe("reply.>"),
                Publish("cmd.user.signup"),
                Publish("progress.import.j1"),
            ],
        ),
    ];
    for (user, probes) in refused {
        let (client, mut errors) = connect_as(&nats, user).await;
        for probe in probes {
            let (subject, what) = match probe {
                Publish(subject) => {
                    // What the user sends must not reach anyone.
                    let mut watch = admin.subscribe(subject).await.unwrap();
                    admin.flush().await.unwrap();
                    client.publish(subject, "x".into()).await.unwrap();
                    client.flush().await.unwrap();
                    let leaked = tokio::time::timeout(Duration::from_millis(200), watch.next());
                    assert!(leaked.await.is_err(), "{user} published to {subject}");
                    (subject, "publish")
                }
                Subscribe(subject) => {
                    let mut subscription = client.subscribe(subject).await.unwrap();
                    client.flush().await.unwrap();
                    admin.publish(subject, "x".into()).await.unwrap();
                    admin.flush().await.unwrap();
                    let got = tokio::time::timeout(Duration::from_millis(200), subscription.next());
                    assert!(
                        !matches!(got.await, Ok(Some(_))),
                        "{user} received from {subject}"
                    );
                    (subject, "subscription")
                }
            };
            let error = tokio::time::timeout(Duration::from_secs(5), errors.recv())
                .await
                .unwrap_or_else(|_| panic!("no error for {user}'s {what} to {subject}"))
                .unwrap()
                .to_lowercase();
            assert!(
                error.contains("permissions violation")
                    && error.contains(what)
                    && error.contains(&subject.to_lowercase()),
                "{user} {what} {subject}: {error}"
            );
        }
    }

    // And what a role needs does get through, so the refusals above are the rules'.
    let (edge, _) = connect_as(&nats, "edge").await;
    let mut progress = edge.subscribe("progress.import.*").await.unwrap();
    edge.flush().await.unwrap();
    let (downloader, _) = connect_as(&nats, "downloader").await;
    let message = delivered(&downloader, "progress.import.j1", "42", &mut progress)
        .await
        .expect("the downloader's progress reaches the edge");
    assert_eq!(&message.payload[..], b"42");
    let (processor, _) = connect_as(&nats, "processor").await;
    let mut replies = edge.subscribe("reply.edge.e1.*").await.unwrap();
    edge.flush().await.unwrap();
    let reply = delivered(&processor, "reply.edge.e1.c1", "ok", &mut replies)
        .await
        .expect("the processor's answer reaches the edge");
    assert_eq!(&reply.payload[..], b"ok");
    // The relay publishes events into EVENTS (made here by the admin user).
    jetstream::new(admin.clone())
        .create_stream(jetstream::stream::Config {
            name: "EVENTS".into(),
            subjects: vec!["evt.>".into()],
            ..Default::default()
        })
        .await
        .unwrap();
    let (relay, _) = connect_as(&nats, "relay").await;
    let relay = jetstream::new(relay);
    let ack = relay
        .publish("evt.user.u1.UserSignedUp", "{}".into())
        .await
        .unwrap()
        .await
        .expect("the relay's event is stored, and the PubAck reaches its inbox");
    assert_eq!(ack.stream, "EVENTS");
    // A starting relay reads the last message, to go on after it (ADR 21).
    let last = relay
        .get_stream("EVENTS")
        .await
        .unwrap()
        .get_raw_message(ack.sequence)
        .await
        .expect("the relay reads EVENTS' last message");
    assert_eq!(&last.payload[..], b"{}");
}

#[tokio::test]
async fn a_wrong_password_or_no_user_is_refused() {
    let nats = PrivateNats::start();
    let config = |vars: &[(&str, String)]| {
        let mut vars = vars.to_vec();
        vars.push(("NATS_URL", nats.url()));
        Config::from_lookup(|name| {
            vars.iter()
                .find(|(k, _)| *k == name)
                .map(|(_, v)| v.clone())
        })
        .unwrap()
    };
    let right = config(&[
        ("NATS_USER", "edge".into()),
        ("NATS_PASSWORD", password("edge")),
    ]);
    app::connect_nats(&right)
        .await
        .expect("the right password connects");
    for (what, vars) in [
        (
            "a wrong password",
            vec![
                ("NATS_USER", "edge".to_owned()),
                ("NATS_PASSWORD", password("processor")),
            ],
        ),
        (
            "an unknown user",
            vec![
                ("NATS_USER", "mallory".into()),
                ("NATS_PASSWORD", password("edge")),
            ],
        ),
        ("no user", vec![]),
    ] {
        let error = app::connect_nats(&config(&vars))
            .await
            .err()
            .unwrap_or_else(|| panic!("{what} was let in"));
        let error = format!("{error:#}").to_lowercase();
        assert!(error.contains("authorization"), "{what}: {error}");
        assert!(!error.contains("test-password"), "no password in: {error}");
    }
}

/// Three `nats-server` nodes clustered on loopback, JetStream on, no users.
struct Cluster {
    nodes: Vec<Child>,
    ports: Vec<u16>,
    dir: tempfile::TempDir,
}

impl Cluster {
    fn start() -> Self {
        let bin = jukebox::dev_infra::nats_server_bin().expect("nats-server is installed");
        let dir = tempfile::tempdir().unwrap();
        let ports: Vec<u16> = (0..3).map(|_| free_port()).collect();
        let routes: Vec<u16> = (0..3).map(|_| free_port()).collect();
        let route_list = routes
            .iter()
            .map(|p| format!("\"nats-route://127.0.0.1:{p}\""))
            .collect::<Vec<_>>()
            .join(", ");
        let mut nodes = Vec::new();
        for n in 0..3 {
            let config = dir.path().join(format!("n{n}.conf"));
            std::fs::write(
                &config,
                format!(
                    "server_name: n{n}\nlisten: 127.0.0.1:{}\n\
                     jetstream {{ store_dir: \"{}\" }}\n\
                     cluster {{ name: jukebox, listen: 127.0.0.1:{}, routes: [{route_list}] }}\n",
                    ports[n],
                    dir.path().join(format!("n{n}")).display(),
                    routes[n],
                ),
            )
            .unwrap();
            let log = std::fs::File::create(dir.path().join(format!("n{n}.log"))).unwrap();
            nodes.push(
                Command::new(&bin)
                    .arg("-c")
                    .arg(&config)
                    .stdout(Stdio::null())
                    .stderr(log)
                    .spawn()
                    .expect("nats-server starts"),
            );
        }
        Self { nodes, ports, dir }
    }

    fn url(&self) -> String {
        self.ports
            .iter()
            .map(|p| format!("nats://127.0.0.1:{p}"))
            .collect::<Vec<_>>()
            .join(",")
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        for node in &mut self.nodes {
            let _ = node.kill();
            let _ = node.wait();
        }
    }
}

#[tokio::test]
async fn stream_replicas_follow_the_configuration_and_a_lost_node_is_survived() {
    let cluster = Cluster::start();
    let config = Config::from_lookup(|name| match name {
        "NATS_URL" => Some(cluster.url()),
        "NATS_STREAM_REPLICAS" => Some("1".into()),
        _ => None,
    })
    .unwrap();
    assert_eq!(config.nats_servers().len(), 3);
    let mut client = None;
    for _ in 0..100 {
        if let Ok(connected) = app::connect_nats(&config).await {
            client = Some(connected);
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let client = client.expect("the cluster answers");
    let js = jetstream::new(client.clone());
    let topology = |replicas| jukebox_nats::Topology {
        replicas,
        ..jukebox_nats::Topology::new(Default::default())
    };
    // JetStream answers once the nodes have elected a meta leader.
    let mut formed = Err(String::new());
    for _ in 0..150 {
        formed = topology(1)
            .ensure_streams(&js)
            .await
            .map_err(|e| e.to_string());
        if formed.is_ok() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    formed.unwrap_or_else(|e| panic!("streams on the cluster: {e}; logs in {:?}", cluster.dir));
    let replicas = |name: &'static str| {
        let js = js.clone();
        async move {
            let info = js
                .get_stream(name)
                .await
                .unwrap()
                .info()
                .await
                .unwrap()
                .clone();
            // Peers that have caught up with the leader.
            let current = info
                .cluster
                .map_or(0, |c| c.replicas.iter().filter(|r| r.current).count());
            (info.config.num_replicas, current)
        }
    };
    assert_eq!(replicas("EVENTS").await, (1, 0));

    // NATS_STREAM_REPLICAS=3 on an existing stream: the topology updates it in place.
    topology(3).ensure_streams(&js).await.unwrap();
    for name in ["COMMANDS", "EVENTS"] {
        assert_eq!(replicas(name).await.0, 3, "{name}");
    }
    // The cluster's own replication, not a write of the test: no position applies.
    eventually("EVENTS has a leader and two current peers", || async {
        replicas("EVENTS").await.1 == 2
    })
    .await;

    // One node goes away: the client reconnects to another and EVENTS keeps its quorum.
    let mut cluster = cluster;
    let _ = cluster.nodes[0].kill();
    let _ = cluster.nodes[0].wait();
    let mut stored = Err(String::new());
    for attempt in 0..100 {
        stored = match js
            .publish("evt.user.u1.UserSignedUp", format!("{attempt}").into())
            .await
        {
            Ok(ack) => ack.await.map_err(|e| e.to_string()),
            Err(e) => Err(e.to_string()),
        };
        if stored.is_ok() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let stored = stored.unwrap_or_else(|e| {
        panic!(
            "no publish after losing a node ({e}); logs in {:?}",
            cluster.dir
        )
    });
    assert_eq!(stored.stream, "EVENTS");
}

#[tokio::test]
async fn a_role_user_cannot_make_the_streams_and_points_at_migrate() {
    let nats = PrivateNats::start();
    let app_config = |user: &str| {
        let vars = [
            // Postgres is only connected to, not written.
            ("DATABASE_URL", admin_database_url()),
            ("NATS_URL", nats.url()),
            ("NATS_USER", user.to_owned()),
            ("NATS_PASSWORD", password(user)),
        ];
        Config::from_lookup(|name| {
            vars.iter()
                .find(|(k, _)| *k == name)
                .map(|(_, v)| v.clone())
        })
        .unwrap()
    };
    let error = match Services::connect(&app_config("edge")).await {
        Ok(_) => panic!("the edge user made the streams"),
        Err(error) => format!("{error:#}"),
    };
    assert!(
        error.contains("COMMANDS") && error.contains("jukebox migrate"),
        "{error}"
    );
    assert!(
        nats.violations()
            .iter()
            .any(|line| line.contains("user:edge")
                && line.contains("$JS.API.STREAM.CREATE.COMMANDS")),
        "{:?}",
        nats.violations()
    );
    // Once the admin user made them (`jukebox migrate`), the same user starts fine.
    Services::connect(&app_config("admin")).await.unwrap();
    Services::connect(&app_config("edge")).await.unwrap();
}

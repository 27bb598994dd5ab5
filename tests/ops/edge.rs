//! The edge proxy: infra/edge/jukebox.conf.template rendered as the nginx image renders it,
//! checked by `nginx -t`, then run by Debian's nginx on free loopback ports, in the
//! foreground, in front of the running system, with a certificate made at test time.

use std::collections::{BTreeSet, HashMap};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use jukebox::app::Role;
use reqwest::header::{self, HeaderValue};
use reqwest::multipart::{Form, Part};
use reqwest::{Response, StatusCode};
use serde_json::{json, Value};

use crate::compose::{repo, Compose};
use crate::support::{free_port, spawn_app_with, TestApp};

const TEMPLATE: &str = "infra/edge/jukebox.conf.template";

/// The `${NAME}` placeholders of a template.
pub fn placeholders(template: &str) -> BTreeSet<String> {
    template
        .split("${")
        .skip(1)
        .filter_map(|rest| rest.split_once('}').map(|(name, _)| name.to_owned()))
        .collect()
}

/// Fills every placeholder, as the nginx image's envsubst step does; an unknown one fails.
fn render(template: &str, vars: &HashMap<String, String>) -> String {
    placeholders(template)
        .into_iter()
        .fold(template.to_owned(), |text, name| {
            let value = vars
                .get(&name)
                .unwrap_or_else(|| panic!("no value for ${{{name}}}"));
            text.replace(&format!("${{{name}}}"), value)
        })
}

fn run(command: &mut Command) -> std::process::Output {
    let output = command
        .output()
        .unwrap_or_else(|e| panic!("{command:?}: {e} (scripts/install-deps.sh installs it)"));
    assert!(
        output.status.success(),
        "{command:?}: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    output
}

/// A test CA and a certificate for `localhost` signed by it, made with openssl.
struct Tls {
    ca: PathBuf,
    cert: PathBuf,
    key: PathBuf,
}

impl Tls {
    fn make(dir: &Path) -> Self {
        let path = |name: &str| dir.join(name);
        let ec = [
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:prime256v1",
            "-nodes",
        ];
        run(Command::new("openssl")
            .args(["req", "-x509", "-days", "1", "-subj", "/CN=Jukebox test CA"])
            .args(ec)
            .arg("-keyout")
            .arg(path("ca.key"))
            .arg("-out")
            .arg(path("ca.crt")));
        run(Command::new("openssl")
            .args(["req", "-new", "-subj", "/CN=localhost"])
            .args(ec)
            .arg("-keyout")
            .arg(path("tls.key"))
            .arg("-out")
            .arg(path("tls.csr")));
        std::fs::write(
            path("leaf.ext"),
            "subjectAltName=DNS:localhost\nbasicConstraints=CA:FALSE\n\
             extendedKeyUsage=serverAuth\n",
        )
        .unwrap();
        run(Command::new("openssl")
            .args(["x509", "-req", "-days", "1", "-CAcreateserial"])
            .arg("-in")
            .arg(path("tls.csr"))
            .arg("-CA")
            .arg(path("ca.crt"))
            .arg("-CAkey")
            .arg(path("ca.key"))
            .arg("-extfile")
            .arg(path("leaf.ext"))
            .arg("-out")
            .arg(path("tls.crt")));
        Self {
            ca: path("ca.crt"),
            cert: path("tls.crt"),
            key: path("tls.key"),
        }
    }
}

/// Upstreams the edge proxies to.
struct Upstreams {
    api: SocketAddr,
    web: SocketAddr,
    stream: SocketAddr,
}

/// The template rendered with compose.prod.yaml's edge environment, except what binds to
/// this machine: listen addresses, upstreams and certificate paths.
fn edge_vars(https: u16, http: u16, upstreams: &Upstreams, tls: &Tls) -> HashMap<String, String> {
    let (compose, _) = Compose::prod();
    let mut vars = compose.environment("edge");
    let local: [(&str, String); 9] = [
        ("APP_DOMAIN", "localhost".into()),
        ("EDGE_PUBLIC_ORIGIN", format!("https://localhost:{https}")),
        ("EDGE_HTTP_LISTEN", format!("127.0.0.1:{http}")),
        ("EDGE_HTTPS_LISTEN", format!("127.0.0.1:{https}")),
        ("EDGE_TLS_CERT", tls.cert.display().to_string()),
        ("EDGE_TLS_KEY", tls.key.display().to_string()),
        ("EDGE_API_UPSTREAM", upstreams.api.to_string()),
        ("EDGE_WEB_UPSTREAM", upstreams.web.to_string()),
        ("EDGE_STREAM_UPSTREAM", upstreams.stream.to_string()),
    ];
    for (name, value) in local {
        assert!(
            vars.contains_key(name),
            "compose.prod.yaml's edge lacks {name}"
        );
        vars.insert(name.to_owned(), value);
    }
    vars
}

/// nginx in the foreground as one process (no workers to leave behind), every path under
/// its own temp folder; killed on drop.
struct Edge {
    child: Child,
    dir: tempfile::TempDir,
}

/// Writes the main config around the rendered template (what the nginx image's own
/// nginx.conf does with conf.d/) and returns its path.
fn write_config(dir: &Path, vars: &HashMap<String, String>) -> PathBuf {
    let template = std::fs::read_to_string(repo(TEMPLATE)).unwrap();
    std::fs::write(dir.join("jukebox.conf"), render(&template, vars)).unwrap();
    let d = dir.display();
    let main = format!(
        "daemon off;\nmaster_process off;\npid {d}/nginx.pid;\nerror_log {d}/error.log warn;\n\
         events {{ worker_connections 256; }}\n\
         http {{\n  access_log {d}/access.log;\n  client_body_temp_path {d}/body;\n  \
         proxy_temp_path {d}/proxy;\n  fastcgi_temp_path {d}/fastcgi;\n  uwsgi_temp_path {d}/uwsgi;\n  \
         scgi_temp_path {d}/scgi;\n  include {d}/jukebox.conf;\n}}\n"
    );
    let path = dir.join("nginx.conf");
    std::fs::write(&path, main).unwrap();
    path
}

fn nginx(dir: &Path, config: &Path) -> Command {
    let mut command = Command::new("nginx");
    command
        .arg("-p")
        .arg(dir)
        .arg("-c")
        .arg(config)
        .arg("-e")
        .arg(dir.join("startup.log"));
    command
}

/// `nginx -t`: (passed, what it printed).
fn nginx_test(dir: &Path, config: &Path) -> (bool, String) {
    let output = nginx(dir, config)
        .arg("-t")
        .output()
        .expect("nginx (scripts/install-deps.sh installs it)");
    let printed = String::from_utf8_lossy(&output.stderr).into_owned();
    (output.status.success(), printed)
}

impl Edge {
    fn start(dir: tempfile::TempDir, vars: &HashMap<String, String>, https: u16) -> Self {
        let config = write_config(dir.path(), vars);
        let (passed, printed) = nginx_test(dir.path(), &config);
        assert!(passed, "nginx -t: {printed}");
        let child = nginx(dir.path(), &config)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let mut edge = Self { child, dir };
        let deadline = Instant::now() + Duration::from_secs(20);
        while TcpStream::connect(("127.0.0.1", https)).is_err() {
            if let Some(status) = edge.child.try_wait().unwrap() {
                panic!("nginx exited ({status}): {}", edge.logs());
            }
            assert!(
                Instant::now() < deadline,
                "nginx did not listen: {}",
                edge.logs()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        edge
    }

    fn logs(&self) -> String {
        ["startup.log", "error.log"]
            .iter()
            .map(|f| std::fs::read_to_string(self.dir.path().join(f)).unwrap_or_default())
            .collect::<Vec<_>>()
            .join("\n")
    }
}

impl Drop for Edge {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[test]
fn the_edge_config_passes_nginx_t() {
    let dir = tempfile::tempdir().unwrap();
    let tls = Tls::make(dir.path());
    let any: SocketAddr = "127.0.0.1:9".parse().unwrap();
    let upstreams = Upstreams {
        api: any,
        web: any,
        stream: any,
    };
    let mut vars = edge_vars(free_port(), free_port(), &upstreams, &tls);
    let config = write_config(dir.path(), &vars);
    let (passed, printed) = nginx_test(dir.path(), &config);
    assert!(passed, "nginx -t: {printed}");
    assert!(printed.contains("syntax is ok"), "{printed}");
    // nginx -t does read what it is given: a missing certificate fails it.
    vars.insert("EDGE_TLS_CERT".into(), "/nonexistent/tls.crt".into());
    let config = write_config(dir.path(), &vars);
    let (passed, printed) = nginx_test(dir.path(), &config);
    assert!(
        !passed && printed.contains("/nonexistent/tls.crt"),
        "{printed}"
    );
}

const PASSWORD: &str = "correct horse battery";

fn assert_security_headers(response: &Response, what: &str) {
    for (name, expected) in [
        ("strict-transport-security", "max-age=31536000"),
        ("x-content-type-options", "nosniff"),
        ("x-frame-options", "DENY"),
        ("referrer-policy", "strict-origin-when-cross-origin"),
    ] {
        let values: Vec<&HeaderValue> = response.headers().get_all(name).iter().collect();
        assert_eq!(values, [expected], "{what}: {name}");
    }
    let policies = response
        .headers()
        .get_all(header::CONTENT_SECURITY_POLICY)
        .iter()
        .count();
    assert_eq!(policies, 1, "{what}: one Content-Security-Policy");
}

/// A job's state once it has finished, read through the edge.
async fn finished_job(client: &reqwest::Client, origin: &str, token: &str, job: &str) -> Value {
    let deadline = Instant::now() + Duration::from_secs(90);
    loop {
        let response = client
            .get(format!("{origin}/api/jobs/{job}"))
            .bearer_auth(token)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::OK);
        let body: Value = response.json().await.unwrap();
        if matches!(body["status"].as_str(), Some("completed" | "failed")) {
            return body;
        }
        assert!(Instant::now() < deadline, "job still running: {body:#}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

#[tokio::test]
async fn the_edge_routes_limits_refuses_scanners_and_sets_headers_in_front_of_the_system() {
    let (https, http) = (free_port(), free_port());
    let origin = format!("https://localhost:{https}");
    let work = tempfile::tempdir().unwrap();
    let app: TestApp = spawn_app_with(
        &[Role::All],
        &[
            ("APP_DOMAIN", "localhost".into()),
            ("PUBLIC_BASE_URL", origin.clone()),
            ("PUBLIC_STREAM_BASE_URL", origin.clone()),
            ("ALLOWED_ORIGINS", origin.clone()),
            ("COOKIE_SECURE", "1".into()),
            (
                "STREAM_SIGNING_SECRET",
                "edge-test-stream-key-0123456789abcdef".into(),
            ),
            ("IMPORT_WORK_DIR", work.path().display().to_string()),
            ("DOWNLOAD_CONCURRENCY", "1".into()),
        ],
    )
    .await;
    let running = app.running.as_ref().unwrap();
    let upstreams = Upstreams {
        api: running.api_addr.unwrap(),
        web: running.web_addr.unwrap(),
        stream: running.stream_addr.unwrap(),
    };
    let dir = tempfile::tempdir().unwrap();
    let tls = Tls::make(dir.path());
    let edge = Edge::start(dir, &edge_vars(https, http, &upstreams, &tls), https);

    let ca = reqwest::Certificate::from_pem(&std::fs::read(&tls.ca).unwrap()).unwrap();
    let client = reqwest::Client::builder()
        .add_root_certificate(ca)
        .tls_built_in_root_certs(false)
        .resolve("localhost", ([127, 0, 0, 1], https).into())
        .cookie_store(true)
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();

    // The web app: the page, with its own policy (which lets audio come from the edge).
    let page = client.get(format!("{origin}/")).send().await.unwrap();
    assert_eq!(page.status(), StatusCode::OK, "{}", edge.logs());
    assert_security_headers(&page, "the page");
    let csp = page.headers()[header::CONTENT_SECURITY_POLICY]
        .to_str()
        .unwrap()
        .to_owned();
    assert!(
        csp.contains("script-src 'self'"),
        "the page's own policy: {csp}"
    );
    assert!(page.text().await.unwrap().contains("app.js"));

    // The API under /api: sign up, sign in (the refresh cookie's path is the API's /auth
    // under /api), refresh with that cookie.
    let response = client
        .post(format!("{origin}/api/auth/signup"))
        .json(&json!({ "email": "edge@example.com", "password": PASSWORD }))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::CREATED);
    assert_security_headers(&response, "sign-up");
    let response = client
        .post(format!("{origin}/api/auth/signin"))
        .json(&json!({ "email": "edge@example.com", "password": PASSWORD }))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let cookie = response.headers()[header::SET_COOKIE]
        .to_str()
        .unwrap()
        .to_owned();
    assert!(
        cookie.starts_with("__Secure-jukebox_refresh=") && cookie.contains("; Path=/api/auth;"),
        "{cookie}"
    );
    assert!(
        cookie.contains("; Secure") && cookie.contains("HttpOnly"),
        "{cookie}"
    );
    let body: Value = response.json().await.unwrap();
    let token = body["access_token"].as_str().unwrap().to_owned();
    let me: Value = client
        .get(format!("{origin}/api/auth/me"))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(me["email"], "edge@example.com", "{me}");
    let response = client
        .post(format!("{origin}/api/auth/refresh"))
        .header(header::ORIGIN, &origin)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK, "the cookie came back");
    let body: Value = response.json().await.unwrap();
    let token = body["access_token"].as_str().unwrap().to_owned();

    // An upload through the edge becomes a track; its signed URL points at the edge,
    // which hands /api/public/stream/* to the stream role.
    let tone = work.path().join("tone.mp3");
    run(Command::new("ffmpeg")
        .args(["-nostdin", "-loglevel", "error", "-f", "lavfi", "-i"])
        .arg("sine=frequency=440:duration=3")
        .args(["-c:a", "libmp3lame", "-b:a", "128k"])
        .arg(&tone));
    let form = Form::new().part(
        "file",
        Part::bytes(std::fs::read(&tone).unwrap())
            .file_name("tone.mp3")
            .mime_str("audio/mpeg")
            .unwrap(),
    );
    let response = client
        .post(format!("{origin}/api/songs/upload"))
        .bearer_auth(&token)
        .multipart(form)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::ACCEPTED);
    let location = response.headers()[header::LOCATION]
        .to_str()
        .unwrap()
        .to_owned();
    let body: Value = response.json().await.unwrap();
    let job_id = body["job_id"].as_str().unwrap();
    // The API's relative `/jobs/{id}`, under /api (nginx makes it absolute).
    assert!(
        [
            format!("/api/jobs/{job_id}"),
            format!("{origin}/api/jobs/{job_id}")
        ]
        .contains(&location),
        "{location}"
    );
    let job = finished_job(&client, &origin, &token, job_id).await;
    assert_eq!(job["status"], "completed", "{job:#}");
    let song = job["track_id"].as_str().unwrap();

    let response = client
        .get(format!("{origin}/api/stream/{song}"))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::FOUND);
    let signed = response.headers()[header::LOCATION]
        .to_str()
        .unwrap()
        .to_owned();
    assert!(
        signed.starts_with(&format!("{origin}/api/public/stream/")),
        "{signed}"
    );
    let response = client
        .get(&signed)
        .header(header::RANGE, "bytes=0-15")
        .send()
        .await
        .unwrap();
    assert_eq!(
        response.status(),
        StatusCode::PARTIAL_CONTENT,
        "{}",
        edge.logs()
    );
    assert_security_headers(&response, "a ranged stream read");
    let range = response.headers()[header::CONTENT_RANGE]
        .to_str()
        .unwrap()
        .to_owned();
    assert!(range.starts_with("bytes 0-15/"), "{range}");
    let bytes = response.bytes().await.unwrap();
    assert_eq!(&bytes[4..8], b"ftyp", "the start of the stored .m4a");
    // Without a signature the stream role itself refuses.
    let response = client
        .get(format!("{origin}/api/public/stream/{song}"))
        .send()
        .await
        .unwrap();
    assert!(response.status().is_client_error(), "{}", response.status());

    // Health and metrics stay internal; the edge's own answers carry the headers too.
    for path in ["/api/metrics", "/api/healthz", "/api/readyz"] {
        let response = client.get(format!("{origin}{path}")).send().await.unwrap();
        assert_eq!(response.status(), StatusCode::NOT_FOUND, "{path}");
        assert_security_headers(&response, path);
    }

    // Scanners are refused by their user agent; a browser is not.
    for agent in [
        "sqlmap/1.7.2#stable (https://sqlmap.org)",
        "Mozilla/5.00 (Nikto/2.1.6) (Evasions:None) (Test:000003)",
        "Mozilla/5.0 (compatible; Nmap Scripting Engine; https://nmap.org/book/nse.html)",
        "masscan/1.3 (https://github.com/robertdavidgraham/masscan)",
        "Mozilla/5.0 zgrab/0.x",
    ] {
        let response = client
            .get(format!("{origin}/"))
            .header(header::USER_AGENT, agent)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::FORBIDDEN, "{agent}");
    }
    let browser = "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 Chrome/126.0 Safari/537.36";
    let response = client
        .get(format!("{origin}/"))
        .header(header::USER_AGENT, browser)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);

    // Plain http is redirected to the https origin, path and query kept.
    let plain = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let response = plain
        .get(format!("http://127.0.0.1:{http}/library?q=dub"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::MOVED_PERMANENTLY);
    assert_eq!(
        response.headers()[header::LOCATION],
        format!("{origin}/library?q=dub").as_str()
    );

    // Sign-in attempts from one address: the app answers (400 for a bad body) until the
    // edge's limit, then the edge answers 429 with Retry-After. The app's own limits are
    // set out of reach here (test-support), so the 429 is the edge's.
    let mut answered_by_app = 0;
    let limited = loop {
        let response = client
            .post(format!("{origin}/api/auth/signin"))
            .header(header::CONTENT_TYPE, "application/json")
            .body("{")
            .send()
            .await
            .unwrap();
        if response.status() == StatusCode::TOO_MANY_REQUESTS {
            break response;
        }
        assert_eq!(response.status(), StatusCode::BAD_REQUEST);
        answered_by_app += 1;
        assert!(
            answered_by_app < 40,
            "no 429 after {answered_by_app} sign-ins"
        );
    };
    assert!(answered_by_app >= 1);
    assert_eq!(limited.headers()[header::RETRY_AFTER], "60");
    assert_security_headers(&limited, "a 429");
    let body: Value = limited.json().await.unwrap();
    assert_eq!(body["error"]["code"], "rate_limited", "{body}");
    // The auth limit is its own: the rest still answers.
    let response = client
        .get(format!("{origin}/api/auth/me"))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    // Imports and admin pages have their own, larger limits (without a token the app
    // answers 401 until then).
    for (method, path) in [
        (reqwest::Method::POST, "/api/songs/import"),
        (reqwest::Method::GET, "/api/admin/users"),
    ] {
        let mut answered_by_app = 0;
        loop {
            let response = client
                .request(method.clone(), format!("{origin}{path}"))
                .send()
                .await
                .unwrap();
            if response.status() == StatusCode::TOO_MANY_REQUESTS {
                let body: Value = response.json().await.unwrap();
                assert_eq!(body["error"]["code"], "rate_limited", "{path}: {body}");
                break;
            }
            assert_eq!(response.status(), StatusCode::UNAUTHORIZED, "{path}");
            answered_by_app += 1;
            assert!(
                answered_by_app < 150,
                "{path}: no 429 after {answered_by_app}"
            );
        }
    }
    // The Subsonic API passes unchanged to the API with its own zone: a phone syncing a
    // 10,000-track library (search3 pages, then a cover per song) as fast as it can is
    // never refused. 2,500 requests, 32 at a time (the per-address connection limit is
    // 64), stay within its burst.
    use futures::StreamExt;
    let answers: Vec<_> = futures::stream::iter(
        (0..2_500).map(|_| client.get(format!("{origin}/rest/ping.view?f=json")).send()),
    )
    .buffer_unordered(32)
    .collect()
    .await;
    for response in answers {
        let response = response.unwrap();
        assert_eq!(
            response.status(),
            StatusCode::OK,
            "a /rest request was refused"
        );
        assert_eq!(response.headers()["access-control-allow-origin"], "*");
        let body: Value = response.json().await.unwrap();
        // Answered by the app: no credentials is the spec's error 10, not the edge's 429.
        assert_eq!(body["subsonic-response"]["error"]["code"], 10);
    }

    drop(edge);
    app.cleanup().await;
}

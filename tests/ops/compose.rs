//! compose.yaml and compose.prod.yaml, read the way `docker compose` reads them: YAML
//! merge keys applied, `${NAME:-default}` filled from .env.example, the override merged
//! over the base (`!reset` honoured). Then checked: one image for every role, declared
//! volumes and secrets, published ports, dependencies, and every role's environment loads
//! into the real `Config`.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::path::{Path, PathBuf};

use jukebox::Config;
use secrecy::ExposeSecret;
use serde_norway::{Mapping, Value};

pub const ROLES: [&str; 8] = [
    "api",
    "web",
    "stream",
    "processor",
    "relay",
    "projector",
    "downloader",
    "reactor",
];
/// Roles that open the object store.
const STORE_ROLES: [&str; 4] = ["api", "web", "stream", "downloader"];
/// The public domain the tests give the prod override.
pub const APP_DOMAIN: &str = "music.example.org";

pub fn repo(path: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join(path)
}

fn read(path: &str) -> String {
    std::fs::read_to_string(repo(path)).unwrap_or_else(|e| panic!("reading {path}: {e}"))
}

/// `.env.example`'s values, with every empty one (the secrets to fill in) given a value,
/// plus `APP_DOMAIN` for the prod override.
pub fn sample_env() -> HashMap<String, String> {
    let mut vars: HashMap<String, String> = read(".env.example")
        .lines()
        .filter(|line| !line.trim_start().starts_with('#'))
        .filter_map(|line| line.split_once('='))
        .map(|(name, value)| {
            let value = if value.is_empty() {
                format!("sample-{}-0123456789abcdef0123456789", name.to_lowercase())
            } else {
                value.to_owned()
            };
            (name.trim().to_owned(), value)
        })
        .collect();
    vars.insert("APP_DOMAIN".into(), APP_DOMAIN.into());
    vars
}

/// Every variable name `.env.example` documents (`NAME=...`, commented out or not).
fn documented_variables() -> BTreeSet<String> {
    read(".env.example")
        .lines()
        .map(|line| line.trim_start_matches(['#', ' ']))
        .filter_map(|line| line.split_once('=').map(|(name, _)| name))
        .filter(|name| is_env_name(name))
        .map(str::to_owned)
        .collect()
}

fn is_env_name(name: &str) -> bool {
    !name.is_empty()
        && name.starts_with(|c: char| c.is_ascii_uppercase())
        && name
            .chars()
            .all(|c| c.is_ascii_uppercase() || c.is_ascii_digit() || c == '_')
}

/// Compose's interpolation: `$$`, `$NAME`, `${NAME}`, `${NAME:-default}`, `${NAME-default}`,
/// `${NAME:?message}`, `${NAME?message}`. Records each name it looks up.
pub fn interpolate(
    text: &str,
    vars: &HashMap<String, String>,
    used: &mut BTreeSet<String>,
) -> Result<String, String> {
    let mut out = String::new();
    let mut rest = text;
    while let Some(at) = rest.find('$') {
        out.push_str(&rest[..at]);
        rest = &rest[at + 1..];
        if let Some(after) = rest.strip_prefix('$') {
            out.push('$');
            rest = after;
        } else if let Some(inner) = rest.strip_prefix('{') {
            let end = inner
                .find('}')
                .ok_or_else(|| format!("unclosed ${{ in {text:?}"))?;
            let expression = &inner[..end];
            rest = &inner[end + 1..];
            let name_end = expression
                .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
                .unwrap_or(expression.len());
            let (name, operator) = expression.split_at(name_end);
            used.insert(name.to_owned());
            let value = vars.get(name);
            let set = value.is_some_and(|v| !v.is_empty());
            let replaced = match operator {
                "" => value.cloned().unwrap_or_default(),
                _ if operator.starts_with(":-") => match set {
                    true => value.unwrap().clone(),
                    false => interpolate(&operator[2..], vars, used)?,
                },
                _ if operator.starts_with('-') => match value {
                    Some(v) => v.clone(),
                    None => interpolate(&operator[1..], vars, used)?,
                },
                _ if operator.starts_with(":?") || operator.starts_with('?') => {
                    let required = if operator.starts_with(':') {
                        set
                    } else {
                        value.is_some()
                    };
                    if !required {
                        return Err(format!("{name} is required: {}", &operator[2..]));
                    }
                    value.unwrap().clone()
                }
                _ => return Err(format!("unknown interpolation ${{{expression}}}")),
            };
            out.push_str(&replaced);
        } else {
            let end = rest
                .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
                .unwrap_or(rest.len());
            let name = &rest[..end];
            used.insert(name.to_owned());
            out.push_str(vars.get(name).map_or("", String::as_str));
            rest = &rest[end..];
        }
    }
    out.push_str(rest);
    Ok(out)
}

fn interpolate_all(value: &mut Value, vars: &HashMap<String, String>, used: &mut BTreeSet<String>) {
    match value {
        Value::String(text) => {
            *text = interpolate(text, vars, used).unwrap_or_else(|e| panic!("{e}"));
        }
        Value::Sequence(items) => items
            .iter_mut()
            .for_each(|v| interpolate_all(v, vars, used)),
        Value::Mapping(map) => map
            .iter_mut()
            .for_each(|(_, v)| interpolate_all(v, vars, used)),
        Value::Tagged(tagged) => interpolate_all(&mut tagged.value, vars, used),
        _ => {}
    }
}

/// A compose file as compose sees it: merge keys applied (nested ones too), `x-` keys
/// dropped, values interpolated.
pub fn load(path: &str, vars: &HashMap<String, String>, used: &mut BTreeSet<String>) -> Value {
    let mut value: Value =
        serde_norway::from_str(&read(path)).unwrap_or_else(|e| panic!("{path}: {e}"));
    // One pass leaves merge keys that came in through another merge: repeat.
    while has_merge_key(&value) {
        value.apply_merge().unwrap();
    }
    let map = value.as_mapping_mut().expect("a compose file is a mapping");
    map.retain(|key, _| !key.as_str().is_some_and(|k| k.starts_with("x-")));
    interpolate_all(&mut value, vars, used);
    value
}

fn has_merge_key(value: &Value) -> bool {
    match value {
        Value::Mapping(map) => map.iter().any(|(k, v)| k == "<<" || has_merge_key(v)),
        Value::Sequence(items) => items.iter().any(has_merge_key),
        Value::Tagged(tagged) => has_merge_key(&tagged.value),
        _ => false,
    }
}

/// Compose's merge of an override: mappings merge key by key, most lists append,
/// `command`/`entrypoint`/health check `test` are replaced, `!reset`/`!override` replace.
pub fn merge(base: &mut Value, over: Value, key: &str) {
    match (base, over) {
        (base, Value::Tagged(tagged)) if tagged.tag == "reset" || tagged.tag == "override" => {
            *base = tagged.value;
        }
        (Value::Mapping(base), Value::Mapping(over)) => {
            for (k, v) in over {
                let name = k.as_str().unwrap_or_default().to_owned();
                match base.get_mut(&k) {
                    Some(existing) => merge(existing, v, &name),
                    None => {
                        base.insert(k, untag(v));
                    }
                }
            }
        }
        (Value::Sequence(base), Value::Sequence(over))
            if !matches!(key, "command" | "entrypoint" | "test") =>
        {
            base.extend(over)
        }
        (base, over) => *base = untag(over),
    }
}

fn untag(value: Value) -> Value {
    match value {
        Value::Tagged(tagged) => tagged.value,
        other => other,
    }
}

pub struct Compose {
    pub file: Value,
}

impl Compose {
    pub fn base() -> (Self, BTreeSet<String>) {
        let mut used = BTreeSet::new();
        let file = load("compose.yaml", &sample_env(), &mut used);
        (Self { file }, used)
    }

    pub fn prod() -> (Self, BTreeSet<String>) {
        let (mut base, mut used) = Self::base();
        let over = load("compose.prod.yaml", &sample_env(), &mut used);
        merge(&mut base.file, over, "");
        (base, used)
    }

    pub fn services(&self) -> &Mapping {
        self.file["services"].as_mapping().expect("services")
    }

    pub fn service(&self, name: &str) -> &Value {
        self.file["services"]
            .get(name)
            .unwrap_or_else(|| panic!("no service {name}"))
    }

    fn service_names(&self) -> BTreeSet<String> {
        self.services()
            .keys()
            .map(|k| k.as_str().unwrap().to_owned())
            .collect()
    }

    pub fn environment(&self, service: &str) -> HashMap<String, String> {
        match &self.service(service)["environment"] {
            Value::Mapping(map) => map
                .iter()
                .map(|(k, v)| {
                    let value = match v {
                        Value::String(s) => s.clone(),
                        Value::Null => String::new(),
                        other => serde_norway::to_string(other).unwrap().trim().to_owned(),
                    };
                    (k.as_str().unwrap().to_owned(), value)
                })
                .collect(),
            Value::Null => HashMap::new(),
            other => panic!("{service}: environment as a mapping, not {other:?}"),
        }
    }

    /// (service, published port, container port) of every published port.
    fn published(&self) -> BTreeSet<(String, u16, u16)> {
        let mut ports = BTreeSet::new();
        for (name, service) in self.services() {
            for port in service["ports"].as_sequence().into_iter().flatten() {
                let spec = port.as_str().expect("ports as \"host:container\" strings");
                let parts: Vec<&str> = spec.rsplitn(3, ':').collect();
                let container = parts[0].parse().unwrap();
                let published = parts.get(1).map_or(container, |p| p.parse().unwrap());
                ports.insert((name.as_str().unwrap().to_owned(), published, container));
            }
        }
        ports
    }

    /// Paths `/run/secrets/<target>` mounted into a service.
    fn secret_mounts(&self, service: &str) -> BTreeMap<String, String> {
        self.service(service)["secrets"]
            .as_sequence()
            .into_iter()
            .flatten()
            .map(|secret| match secret {
                Value::String(name) => (format!("/run/secrets/{name}"), name.clone()),
                long => {
                    let source = long["source"].as_str().unwrap().to_owned();
                    let target = long["target"].as_str().unwrap_or(&source).to_owned();
                    (format!("/run/secrets/{target}"), source)
                }
            })
            .collect()
    }

    fn check_references(&self) {
        let names = self.service_names();
        let declared = |section: &str| -> BTreeSet<String> {
            self.file[section]
                .as_mapping()
                .into_iter()
                .flatten()
                .map(|(k, _)| k.as_str().unwrap().to_owned())
                .collect()
        };
        let volumes = declared("volumes");
        let secrets = declared("secrets");
        let mut used_volumes = BTreeSet::new();
        let mut used_secrets = BTreeSet::new();
        for name in &names {
            let service = self.service(name);
            assert!(
                service["image"].is_string(),
                "{name}: every service names its image"
            );
            match &service["depends_on"] {
                Value::Mapping(deps) => {
                    for (dep, condition) in deps {
                        let dep = dep.as_str().unwrap();
                        assert!(names.contains(dep), "{name} depends on unknown {dep}");
                        if condition["condition"] == "service_completed_successfully" {
                            assert_eq!(
                                self.service(dep)["restart"],
                                "no",
                                "{name} waits for {dep} to finish: it must not restart"
                            );
                        }
                        if condition["condition"] == "service_healthy" {
                            assert!(
                                self.service(dep)["healthcheck"].is_mapping(),
                                "{name} waits for {dep} to be healthy: it needs a health check"
                            );
                        }
                    }
                }
                Value::Null => {}
                other => panic!("{name}: depends_on as a mapping, not {other:?}"),
            }
            for volume in service["volumes"].as_sequence().into_iter().flatten() {
                let source = volume.as_str().unwrap().split(':').next().unwrap();
                if source.starts_with(['.', '/']) {
                    assert!(
                        repo(source).exists(),
                        "{name} mounts {source}, which is not in the repository"
                    );
                } else {
                    assert!(
                        volumes.contains(source),
                        "{name}: volume {source} undeclared"
                    );
                    used_volumes.insert(source.to_owned());
                }
            }
            for (path, secret) in self.secret_mounts(name) {
                assert!(
                    secrets.contains(&secret),
                    "{name}: secret {secret} undeclared"
                );
                used_secrets.insert(secret);
                assert!(path.starts_with("/run/secrets/"));
            }
            // A `*_FILE` variable names a file that is mounted (MinIO's take a bare name
            // under /run/secrets).
            let mounts = self.secret_mounts(name);
            for (var, value) in self.environment(name) {
                if var.ends_with("_FILE") && !value.is_empty() {
                    let path = if value.starts_with('/') {
                        value.clone()
                    } else {
                        format!("/run/secrets/{value}")
                    };
                    assert!(
                        mounts.contains_key(&path),
                        "{name}: {var}={value} is not a mounted secret ({mounts:?})"
                    );
                }
            }
        }
        assert_eq!(used_volumes, volumes, "declared volumes nobody mounts");
        assert_eq!(used_secrets, secrets, "declared secrets nobody uses");
    }
}

/// Variables `src/` reads: quoted upper-case names in the configuration code, plus the
/// ones read implicitly (`RUST_LOG`, by tracing's EnvFilter).
fn variables_read() -> (BTreeSet<String>, BTreeSet<String>) {
    let mut names = BTreeSet::from(["RUST_LOG".to_owned()]);
    let mut secrets = BTreeSet::new();
    for file in ["src/config.rs", "src/config/oidc.rs", "src/main.rs"] {
        let text = read(file);
        // A quoted name right after `(` (`env.parse(\n "API_PORT", ...)` too).
        for (i, _) in text.match_indices('"') {
            let before = text[..i].trim_end();
            let rest = &text[i + 1..];
            let Some(end) = rest.find('"') else { continue };
            let name = &rest[..end];
            if is_env_name(name) && before.ends_with('(') {
                names.insert(name.to_owned());
                if before.trim_end_matches('(').ends_with("secret") {
                    secrets.insert(name.to_owned());
                }
            }
        }
    }
    assert!(secrets.contains("JWT_SECRET") && secrets.contains("DATABASE_URL"));
    let files: Vec<String> = secrets.iter().map(|s| format!("{s}_FILE")).collect();
    names.extend(files);
    (names, secrets)
}

/// Loads a role's environment into the real `Config`, with `/run/secrets/*` files
/// replaced by temp files holding sample values.
fn load_config(compose: &Compose, role: &str, secrets_dir: &Path) -> Config {
    let mut env = compose.environment(role);
    for value in env.values_mut() {
        if let Some(name) = value.strip_prefix("/run/secrets/") {
            let path = secrets_dir.join(name);
            let content = format!("sample-{name}-0123456789abcdef0123456789\n");
            std::fs::write(&path, content).unwrap();
            *value = path.display().to_string();
        }
    }
    Config::from_lookup(|name| env.get(name).cloned())
        .unwrap_or_else(|e| panic!("{role}: its environment does not load: {e:#}"))
}

fn check_roles(compose: &Compose) {
    let (read_by_app, _) = variables_read();
    let image = compose.service("api")["image"].clone();
    for role in ROLES.iter().copied().chain(["db-migrate"]) {
        let service = compose.service(role);
        assert_eq!(service["image"], image, "{role}: one image for every role");
        assert_eq!(service["build"], ".", "{role}: built from the Dockerfile");
        let expected: Vec<&str> = match role {
            "db-migrate" => vec!["migrate"],
            role => vec!["serve", role],
        };
        assert_eq!(
            service["command"],
            serde_norway::to_value(&expected).unwrap(),
            "{role}: its command"
        );
        let env = compose.environment(role);
        let unknown: Vec<&String> = env.keys().filter(|k| !read_by_app.contains(*k)).collect();
        assert!(
            unknown.is_empty(),
            "{role} sets variables jukebox does not read: {unknown:?}"
        );
        if role != "db-migrate" {
            let health_port = &env["HEALTH_PORT"];
            let test = serde_norway::to_string(&service["healthcheck"]["test"]).unwrap();
            assert!(
                test.contains(&format!("127.0.0.1:{health_port}/readyz")),
                "{role}: the health check asks the health port ({health_port}): {test}"
            );
        }
    }
}

/// The NATS users of infra/nats/users.conf and the variables its passwords come from.
fn nats_users() -> BTreeMap<String, String> {
    let users = read("infra/nats/users.conf");
    let users: BTreeMap<String, String> = users
        .match_indices("user: ")
        .map(|(i, _)| {
            let rest = &users[i + "user: ".len()..];
            let user = rest.split(',').next().unwrap().trim().to_owned();
            let password = rest.split("password: $").nth(1).unwrap();
            let end = password
                .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
                .unwrap();
            (user, password[..end].to_owned())
        })
        .collect();
    assert!(
        users.contains_key("admin") && users.contains_key("edge"),
        "{users:?}"
    );
    users
}

/// nats runs infra/nats/nats.conf with every user's password; each role connects as a
/// user of users.conf with that user's password (`prod`: from that user's secret file).
fn check_nats(compose: &Compose, prod: bool) {
    let users = nats_users();
    let nats = compose.service("nats");
    let command = serde_norway::to_string(&nats["command"]).unwrap();
    // The single server's file, or a cluster node's (which includes the same users).
    assert!(
        ["/etc/nats/nats.conf", "/etc/nats/cluster/node.conf"]
            .iter()
            .any(|file| command.contains(file)),
        "nats runs infra/nats: {command}"
    );
    let volumes = serde_norway::to_string(&nats["volumes"]).unwrap();
    assert!(volumes.contains("./infra/nats:/etc/nats:ro"), "{volumes}");
    let server_env = compose.environment("nats");
    let server_mounts = compose.secret_mounts("nats");
    for (user, variable) in &users {
        assert!(server_env.contains_key(variable), "nats: {variable} unset");
        if prod {
            let file = format!("/run/secrets/nats_{user}_password");
            assert!(
                server_mounts.contains_key(&file),
                "nats: {file} not mounted"
            );
            // The start command reads every user's file into its variable.
            let loop_users = command
                .split("for user in ")
                .nth(1)
                .and_then(|rest| rest.split(';').next())
                .unwrap_or_else(|| panic!("nats: no loop over the users in {command}"));
            assert!(
                loop_users.split_whitespace().any(|u| u == user),
                "nats: {user} missing from {loop_users}"
            );
            assert!(
                command.contains("/run/secrets/nats_${user}_password"),
                "{command}"
            );
        }
    }
    for role in ROLES.iter().copied().chain(["db-migrate"]) {
        let env = compose.environment(role);
        let user = env
            .get("NATS_USER")
            .unwrap_or_else(|| panic!("{role}: NATS_USER"));
        let expected_user = match role {
            "api" | "web" => "edge",
            "db-migrate" => "admin",
            role => role,
        };
        assert_eq!(user, expected_user, "{role}");
        let variable = &users[user];
        if prod {
            assert_eq!(
                env["NATS_PASSWORD_FILE"],
                format!("/run/secrets/nats_{user}_password"),
                "{role}"
            );
        } else {
            assert_eq!(
                env["NATS_PASSWORD"], server_env[variable],
                "{role}: {user}'s password"
            );
        }
    }
}

#[test]
fn compose_yaml_is_consistent() {
    let (compose, used) = Compose::base();
    compose.check_references();
    check_roles(&compose);
    check_nats(&compose, false);
    // Only the three HTTP ports, each on the role that listens there.
    let published = compose.published();
    let expected: BTreeSet<(String, u16, u16)> = [("api", 8000), ("web", 3000), ("stream", 8005)]
        .into_iter()
        .map(|(s, p)| (s.to_owned(), p, p))
        .collect();
    assert_eq!(published, expected);
    let secrets_dir = tempfile::tempdir().unwrap();
    for role in ROLES {
        let config = load_config(&compose, role, secrets_dir.path());
        let port = match role {
            "api" => Some(config.api_port),
            "web" => Some(config.web_port),
            "stream" => Some(config.stream_port),
            _ => None,
        };
        if let Some(port) = port {
            assert!(published.contains(&(role.to_owned(), port, port)), "{role}");
        }
        assert!(
            config.bind_address.is_unspecified(),
            "{role} listens on 0.0.0.0"
        );
        assert_eq!(config.nats_url, "nats://nats:4222");
        let database = url::Url::parse(config.database_url.expose_secret()).unwrap();
        assert_eq!(database.host_str(), Some("postgres"), "{role}");
        assert_eq!(database.path(), "/jukebox");
        assert!(
            database.password().is_some(),
            "{role}: the database password"
        );
        if STORE_ROLES.contains(&role) {
            config.store_config().expect("S3 settings complete");
            assert_eq!(config.s3_endpoint.as_deref(), Some("http://minio:9000"));
        }
        assert!(config.jwt_secret.is_some() && config.stream_signing_secret.is_some());
    }
    // Whatever the files interpolate is documented for the operator.
    let documented = documented_variables();
    let undocumented: Vec<&String> = used.iter().filter(|v| !documented.contains(*v)).collect();
    assert!(
        undocumented.is_empty(),
        ".env.example lacks {undocumented:?}"
    );
}

#[test]
fn prod_override_publishes_only_the_edge_and_reads_secrets_from_files() {
    let (compose, used) = Compose::prod();
    compose.check_references();
    check_roles(&compose);
    check_nats(&compose, true);
    let published: BTreeSet<(String, u16, u16)> = compose.published();
    let expected: BTreeSet<(String, u16, u16)> =
        [("edge".to_owned(), 80, 80), ("edge".into(), 443, 443)].into();
    assert_eq!(published, expected, "only the edge is published");

    // Every secret file lives in infra/secrets and is described there.
    let readme = read("infra/secrets/README.md");
    for (name, secret) in compose.file["secrets"].as_mapping().unwrap() {
        let file = secret["file"].as_str().unwrap();
        let base = file
            .strip_prefix("./infra/secrets/")
            .unwrap_or_else(|| panic!("secret {name:?} outside infra/secrets: {file}"));
        let nats_user = base
            .strip_prefix("nats_")
            .and_then(|rest| rest.strip_suffix("_password"));
        let described = readme.contains(&format!("`{base}`"))
            || nats_user.is_some_and(|user| {
                readme.contains("`nats_<user>_password`") && readme.contains(&format!("`{user}`"))
            });
        assert!(described, "infra/secrets/README.md lacks {base}");
    }

    let (_, secret_vars) = variables_read();
    let secrets_dir = tempfile::tempdir().unwrap();
    let origin = format!("https://{APP_DOMAIN}");
    for role in ROLES {
        let env = compose.environment(role);
        for secret in &secret_vars {
            let Some(value) = env.get(secret).filter(|v| !v.is_empty()) else {
                continue;
            };
            // A database URL without its password is no secret (DATABASE_PASSWORD_FILE).
            let harmless = secret == "DATABASE_URL"
                && url::Url::parse(value).is_ok_and(|u| u.password().is_none());
            assert!(
                harmless,
                "{role}: {secret} in plain text; use {secret}_FILE"
            );
        }
        let config = load_config(&compose, role, secrets_dir.path());
        let database = url::Url::parse(config.database_url.expose_secret()).unwrap();
        assert_eq!(database.host_str(), Some("postgres"), "{role}");
        assert!(
            database.password().is_some(),
            "{role}: the password from its file"
        );
        assert!(config.cookie_secure, "{role}");
        assert_eq!(config.app_domain, APP_DOMAIN);
        assert_eq!(config.public_base_url, origin);
        assert_eq!(
            config.public_stream_base_url, origin,
            "{role}: streams go through the edge"
        );
        assert_eq!(config.allowed_origins, std::slice::from_ref(&origin));
        assert_eq!(
            config.jwt_secret.is_some(),
            ["api", "web", "reactor"].contains(&role),
            "{role}: the JWT key only where tokens are issued (the reactor derives the \
             verification tokens' key from it)"
        );
        assert_eq!(
            config.smtp_url.is_some(),
            role == "reactor",
            "{role}: SMTP only where mail is sent"
        );
        assert_eq!(
            config.stream_signing_secret.is_some(),
            ["api", "web", "stream"].contains(&role),
            "{role}: the stream key only where URLs are signed or checked"
        );
        if STORE_ROLES.contains(&role) {
            config.store_config().expect("S3 credentials from files");
        } else {
            assert!(
                config.s3_secret_key.is_none(),
                "{role} has no use for S3 keys"
            );
        }
    }

    // The edge: its template's placeholders are all set, upstreams are the roles' ports,
    // the certificate is a mounted secret.
    let edge = compose.environment("edge");
    let template = read("infra/edge/jukebox.conf.template");
    for name in crate::edge::placeholders(&template) {
        assert!(edge.contains_key(&name), "edge: {name} unset");
    }
    for (var, role, port) in [
        ("EDGE_API_UPSTREAM", "api", 8000),
        ("EDGE_WEB_UPSTREAM", "web", 3000),
        ("EDGE_STREAM_UPSTREAM", "stream", 8005),
    ] {
        assert_eq!(edge[var], format!("{role}:{port}"));
    }
    assert_eq!(edge["APP_DOMAIN"], APP_DOMAIN);
    let mounts = compose.secret_mounts("edge");
    for var in ["EDGE_TLS_CERT", "EDGE_TLS_KEY"] {
        assert!(
            mounts.contains_key(&edge[var]),
            "edge: {var} is not a mounted secret"
        );
    }
    assert_eq!(edge["EDGE_PUBLIC_ORIGIN"], origin);
    let volumes = serde_norway::to_string(&compose.service("edge")["volumes"]).unwrap();
    assert!(
        volumes.contains(
            "./infra/edge/jukebox.conf.template:/etc/nginx/templates/default.conf.template"
        ),
        "{volumes}"
    );
    let documented = documented_variables();
    let undocumented: Vec<&String> = used.iter().filter(|v| !documented.contains(*v)).collect();
    assert!(
        undocumented.is_empty(),
        ".env.example lacks {undocumented:?}"
    );
}

#[test]
fn interpolation_follows_compose() {
    let vars: HashMap<String, String> = [("A", "1"), ("EMPTY", "")]
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .collect();
    let mut used = BTreeSet::new();
    let mut run = |text: &str| interpolate(text, &vars, &mut used);
    assert_eq!(run("x${A}y$A$$A").unwrap(), "x1y1$A");
    assert_eq!(run("${EMPTY:-d} ${EMPTY-d} ${NONE-d}").unwrap(), "d  d");
    assert_eq!(run("$${B:-$$(cat f)}").unwrap(), "${B:-$(cat f)}");
    assert!(run("${EMPTY:?set it}").unwrap_err().contains("set it"));
}

#[test]
fn the_three_node_nats_example_is_consistent_and_nats_server_accepts_it() {
    let (mut compose, _) = Compose::base();
    let mut used = BTreeSet::new();
    let cluster = load("infra/nats/cluster/compose.yaml", &sample_env(), &mut used);
    merge(&mut compose.file, cluster, "");
    compose.check_references();
    check_nats(&compose, false);
    let nodes = ["nats", "nats-2", "nats-3"];
    let node_conf = read("infra/nats/cluster/node.conf");
    let mut names = BTreeSet::new();
    for node in nodes {
        let command: Vec<String> =
            serde_norway::from_value(compose.service(node)["command"].clone()).unwrap();
        let flag = |name: &str| {
            let at = command.iter().position(|a| a == name).unwrap();
            command[at + 1].clone()
        };
        assert_eq!(flag("-c"), "/etc/nats/cluster/node.conf", "{node}");
        assert_eq!(flag("--store_dir"), "/data", "{node}");
        names.insert(flag("--server_name"));
        assert!(
            node_conf.contains(&format!("nats-route://{node}:6222")),
            "node.conf routes to {node}"
        );
        let healthcheck = serde_norway::to_string(&compose.service(node)["healthcheck"]).unwrap();
        assert!(healthcheck.contains("8222/healthz"), "{node}");
    }
    assert_eq!(
        names.len(),
        3,
        "one JetStream server name per node: {names:?}"
    );
    let secrets_dir = tempfile::tempdir().unwrap();
    for role in ROLES {
        let config = load_config(&compose, role, secrets_dir.path());
        assert_eq!(config.nats_stream_replicas, 3, "{role}");
        for node in nodes {
            assert!(
                config.nats_url.contains(&format!("nats://{node}:4222")),
                "{role} knows {node}: {}",
                config.nats_url
            );
        }
    }
    // The real nats-server parses the node's file, users and all.
    let output = std::process::Command::new("nats-server")
        .arg("-c")
        .arg(repo("infra/nats/cluster/node.conf"))
        .args(["--server_name", "nats-1", "-t"])
        .envs(compose.environment("nats"))
        .output()
        .expect("nats-server (scripts/install-deps.sh installs it)");
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
}

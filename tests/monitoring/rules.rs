//! The monitoring configuration under infra/monitoring, checked by the real promtool and
//! amtool, and read here for the metric names its alerts use.

use std::collections::BTreeSet;
use std::process::Command;

use jukebox_handlers::media::find_tool;

use crate::repo_file;

/// One alerting rule of alerts.yml, as written.
#[derive(Debug)]
pub struct Alert {
    pub name: String,
    pub expr: String,
    /// The rule's other lines (`for:`, labels, annotations), trimmed.
    pub lines: Vec<String>,
}

/// The rules of infra/monitoring/alerts.yml, read line by line: the file is ours and
/// keeps to one layout (`- alert:` starts a rule; `expr:` is inline, or a `|` block
/// indented further).
pub fn alerts() -> Vec<Alert> {
    let text = std::fs::read_to_string(repo_file("infra/monitoring/alerts.yml")).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    let indent = |line: &str| line.len() - line.trim_start().len();
    let mut alerts: Vec<Alert> = Vec::new();
    let mut i = 0;
    while i < lines.len() {
        let line = lines[i];
        let trimmed = line.trim();
        if let Some(name) = trimmed.strip_prefix("- alert:") {
            alerts.push(Alert {
                name: unquote(name),
                expr: String::new(),
                lines: Vec::new(),
            });
        } else if let Some(alert) = alerts.last_mut() {
            if let Some(value) = trimmed.strip_prefix("expr:") {
                let value = value.trim();
                alert.expr = if value.starts_with('|') || value.starts_with('>') {
                    let mut body = Vec::new();
                    while i + 1 < lines.len()
                        && (lines[i + 1].trim().is_empty() || indent(lines[i + 1]) > indent(line))
                    {
                        i += 1;
                        body.push(lines[i].trim());
                    }
                    body.join(" ")
                } else {
                    unquote(value)
                };
            } else if !trimmed.is_empty() && !trimmed.starts_with('#') {
                alert.lines.push(trimmed.to_owned());
            }
        }
        i += 1;
    }
    alerts
}

fn unquote(value: &str) -> String {
    let value = value.trim();
    for quote in ['"', '\''] {
        if let Some(inner) = value
            .strip_prefix(quote)
            .and_then(|v| v.strip_suffix(quote))
        {
            return inner.to_owned();
        }
    }
    value.to_owned()
}

/// The metric names a PromQL expression reads: strings, label matchers, ranges and the
/// label lists of `by`/`without`/`on`/`ignoring`/`group_*` blanked out, then every
/// identifier that is not a function, an aggregation or a keyword.
pub fn metric_names(expr: &str) -> BTreeSet<String> {
    let mut plain = String::new();
    let (mut braces, mut brackets, mut quote) = (0, 0, None);
    let mut chars = expr.chars();
    while let Some(c) = chars.next() {
        if let Some(q) = quote {
            if c == '\\' {
                chars.next();
            } else if c == q {
                quote = None;
            }
            plain.push(' ');
            continue;
        }
        match c {
            '"' | '\'' | '`' => quote = Some(c),
            '{' => braces += 1,
            '}' => braces -= 1,
            '[' => brackets += 1,
            ']' => brackets -= 1,
            _ if braces == 0 && brackets == 0 => {
                plain.push(c);
                continue;
            }
            _ => {}
        }
        plain.push(' ');
    }

    #[derive(PartialEq)]
    enum Token {
        Word(String),
        Number,
        Open,
        Close,
        Other,
    }
    let mut tokens = Vec::new();
    let mut chars = plain.chars().peekable();
    while let Some(&c) = chars.peek() {
        if c.is_ascii_alphabetic() || c == '_' || c == ':' {
            let mut word = String::new();
            while let Some(&c) = chars
                .peek()
                .filter(|c| c.is_ascii_alphanumeric() || **c == '_' || **c == ':')
            {
                word.push(c);
                chars.next();
            }
            tokens.push(Token::Word(word));
        } else if c.is_ascii_digit() || c == '.' {
            // Numbers and durations (1e3, 0.5, 5m).
            while chars
                .next_if(|c| c.is_ascii_alphanumeric() || *c == '.')
                .is_some()
            {}
            tokens.push(Token::Number);
        } else {
            chars.next();
            tokens.push(match c {
                '(' => Token::Open,
                ')' => Token::Close,
                c if c.is_whitespace() => continue,
                _ => Token::Other,
            });
        }
    }

    const GROUPING: [&str; 6] = [
        "by",
        "without",
        "on",
        "ignoring",
        "group_left",
        "group_right",
    ];
    const KEYWORDS: [&str; 5] = ["and", "or", "unless", "bool", "offset"];
    let mut names = BTreeSet::new();
    let mut i = 0;
    while i < tokens.len() {
        if let Token::Word(word) = &tokens[i] {
            // `sum by (x) (...)`: an aggregation whose grouping comes first.
            let grouped = matches!(tokens.get(i + 1), Some(Token::Word(next)) if next == "by" || next == "without");
            let called = grouped || tokens.get(i + 1) == Some(&Token::Open);
            if called && GROUPING.contains(&word.as_str()) {
                // Skip the label list.
                while i < tokens.len() && tokens[i] != Token::Close {
                    i += 1;
                }
            } else if !called && !KEYWORDS.contains(&word.as_str()) {
                names.insert(word.clone());
            }
        }
        i += 1;
    }
    names
}

/// Metric names Prometheus makes itself for every target; no application exports them.
pub const SCRAPE_SERIES: [&str; 1] = ["up"];

#[test]
fn metric_names_of_an_expression() {
    let names = metric_names(
        r#"sum by (route_class) (rate(jukebox_x_total{status="429",q="a}[b"}[5m])) / on(job) group_left(instance) up > 0.5
           and max_over_time(gauge_b[1h:5m]) offset 5m unless bar_total > bool 1e3"#,
    );
    let expected = ["bar_total", "gauge_b", "jukebox_x_total", "up"];
    assert_eq!(names, expected.iter().map(|s| s.to_string()).collect());
}

#[test]
fn every_alert_has_an_expression_a_duration_a_severity_and_a_runbook() {
    let alerts = alerts();
    assert!(alerts.len() >= 8, "alerts.yml: {alerts:?}");
    let doc = std::fs::read_to_string(repo_file("docs/monitoring.md")).unwrap();
    // GitHub's heading anchors: lower case, spaces to '-', other punctuation dropped.
    let anchors: BTreeSet<String> = doc
        .lines()
        .filter_map(|line| line.strip_prefix('#'))
        .map(|heading| {
            heading
                .trim_start_matches('#')
                .trim()
                .to_lowercase()
                .chars()
                .filter_map(|c| match c {
                    ' ' => Some('-'),
                    c if c.is_alphanumeric() || c == '-' || c == '_' => Some(c),
                    _ => None,
                })
                .collect()
        })
        .collect();
    for alert in &alerts {
        let name = &alert.name;
        assert!(
            !metric_names(&alert.expr).is_empty(),
            "{name}: no metric in its expr"
        );
        let field = |key: &str| {
            alert
                .lines
                .iter()
                .find_map(|line| line.strip_prefix(key).map(unquote))
                .unwrap_or_else(|| panic!("{name} has no `{key}`"))
        };
        assert!(!field("for:").is_empty(), "{name}: empty `for:`");
        let severity = field("severity:");
        assert!(
            ["warning", "critical"].contains(&severity.as_str()),
            "{name}: severity {severity}"
        );
        assert!(!field("summary:").is_empty(), "{name}: empty summary");
        let runbook = field("runbook_url:");
        let anchor = runbook
            .strip_prefix("docs/monitoring.md#")
            .unwrap_or_else(|| {
                panic!("{name}: runbook {runbook} is not a docs/monitoring.md section")
            });
        assert!(
            anchors.contains(anchor),
            "{name}: docs/monitoring.md has no section #{anchor}"
        );
    }
}

/// Runs a tool from infra/monitoring; it must succeed.
fn run(tool: &str, args: &[&str]) {
    let path = find_tool(tool).unwrap_or_else(|| {
        panic!(
            "{tool} is not installed: run scripts/install-deps.sh (Debian packages prometheus, \
             prometheus-alertmanager)"
        )
    });
    let output = Command::new(&path)
        .args(args)
        .current_dir(repo_file("infra/monitoring"))
        .output()
        .unwrap_or_else(|e| panic!("running {}: {e}", path.display()));
    assert!(
        output.status.success(),
        "{tool} {}: {}\n{}{}",
        args.join(" "),
        output.status,
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
}

#[test]
fn prometheus_config_and_alert_rules_pass_promtool() {
    run("promtool", &["check", "config", "prometheus.yml"]);
    run("promtool", &["check", "rules", "alerts.yml"]);
}

#[test]
fn alert_rules_pass_their_unit_tests() {
    run("promtool", &["test", "rules", "alerts.test.yml"]);
}

#[test]
fn alertmanager_config_passes_amtool() {
    run("amtool", &["check-config", "alertmanager.yml"]);
}

/// Services named at the top level of a compose file's `services:` (two-space indent).
fn compose_services(file: &str) -> BTreeSet<String> {
    let text = std::fs::read_to_string(repo_file(file)).unwrap();
    let mut in_services = false;
    let mut services = BTreeSet::new();
    for line in text.lines() {
        if !line.starts_with(' ') && !line.trim().is_empty() && !line.starts_with('#') {
            in_services = line.trim_end() == "services:";
        } else if in_services {
            if let Some(name) = line
                .strip_prefix("  ")
                .filter(|rest| !rest.starts_with(' ') && !rest.starts_with('#'))
                .and_then(|rest| rest.trim_end().strip_suffix(':'))
            {
                services.insert(name.to_owned());
            }
        }
    }
    services
}

#[test]
fn prometheus_scrapes_compose_services_on_the_image_health_port() {
    let config = std::fs::read_to_string(repo_file("infra/monitoring/prometheus.yml")).unwrap();
    let mut services = compose_services("compose.yaml");
    services.extend(compose_services("compose.monitoring.yaml"));
    let dockerfile = std::fs::read_to_string(repo_file("Dockerfile")).unwrap();
    assert!(
        dockerfile.contains("HEALTH_PORT=9090"),
        "the image sets the health port Prometheus scrapes"
    );
    let mut roles = BTreeSet::new();
    for line in config.lines().map(str::trim) {
        if let Some(rest) = line.strip_prefix("dns_sd_configs: [{ names: [") {
            let (name, rest) = rest.split_once(']').unwrap();
            assert!(rest.contains("port: 9090"), "{line}");
            roles.insert(name.to_owned());
        }
        if let Some(rest) = line.strip_prefix("- targets: [\"") {
            let host = rest.split(':').next().unwrap();
            if host != "localhost" {
                assert!(
                    services.contains(host),
                    "{host} is not a compose service: {services:?}"
                );
            }
        }
    }
    // The NATS exporter reads the monitoring port the NATS config opens.
    let monitoring = std::fs::read_to_string(repo_file("compose.monitoring.yaml")).unwrap();
    let port = monitoring
        .split("http://nats:")
        .nth(1)
        .and_then(|rest| rest.split('"').next())
        .expect("the exporter's NATS URL");
    let nats_conf = std::fs::read_to_string(repo_file("infra/nats/nats.conf")).unwrap();
    assert!(
        nats_conf
            .lines()
            .any(|line| line.trim() == format!("http_port: {port}")),
        "infra/nats/nats.conf opens no monitoring port {port}"
    );
    let every_role = [
        "api",
        "web",
        "stream",
        "processor",
        "relay",
        "projector",
        "downloader",
    ];
    assert_eq!(
        roles,
        every_role.iter().map(|r| r.to_string()).collect(),
        "one scrape job per role"
    );
    for role in &roles {
        assert!(
            services.contains(role),
            "role {role} is not a compose service"
        );
    }
}

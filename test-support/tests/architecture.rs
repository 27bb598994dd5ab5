//! Architecture invariants as tests, in the manner of rust-analyzer's tidy tests: each reads
//! the sources and fails naming the file and the rule it breaks.
//!
//! "Production code" is every `src/` of the workspace's crates and the binary (not
//! `tests/`, `benches/` or this crate), up to the file's first `#[cfg(test)]` line: unit
//! tests beside the code may set up rows and are not counted in a file's length.
//!
//! Some rules have an allow-list of the files that broke them when the rule was written,
//! while the code is being moved (issue 17). An allow-list only shrinks: an entry that no
//! longer breaks its rule (moved, split or fixed) fails the test until it is removed.

use std::path::{Path, PathBuf};

/// The crates' source folders and the binary's, relative to the workspace root.
const PRODUCTION: &[&str] = &[
    "domain/src",
    "nats/src",
    "handlers/src",
    "projections/src",
    "edge/src",
    "storage/src",
    "src",
];

/// Crates that do I/O (or exist to): the domain depends on none of them.
const IO_CRATES: &[&str] = &[
    "sqlx",
    "tokio",
    "tokio-util",
    "async-nats",
    "axum",
    "reqwest",
    "postgres-es",
    "lettre",
    "rust-s3",
    "hyper",
    "tower",
    "tower-http",
    "jukebox-nats",
    "jukebox-storage",
    "jukebox-handlers",
    "jukebox-projections",
    "jukebox-edge",
];

/// Files that read the `events` table without going through the log reader (issue 17
/// moved every one of them to `jukebox_nats::log`, ADR 17).
const EVENTS_READERS_TO_MOVE: &[&str] = &[];

/// The module(s) allowed to select from `events`: the typed event-log reader.
const LOG_READER: &[&str] = &["nats/src/log.rs", "nats/src/log/command_load.rs"];

/// Edge files that still run SQL themselves; their queries move to typed functions of the
/// read-model crate (issue 17, "edge contains no SQL").
const EDGE_SQL_TO_MOVE: &[&str] = &[];

/// Production files longer than `MAX_LINES` without a reason at their top, to be split
/// (issue 17: the processor's plan).
const LONG_FILES_TO_SPLIT: &[&str] = &[];

/// A production file longer than this says why at its top, in its leading comment, with
/// the words "long because".
const MAX_LINES: usize = 500;

#[test]
fn the_domain_depends_on_no_io_crate() {
    let mut failures = Vec::new();
    let manifest = read(&root().join("domain/Cargo.toml"));
    for name in dependencies(&manifest) {
        if IO_CRATES.contains(&name.as_str()) {
            failures.push(format!(
                "domain/Cargo.toml: depends on `{name}` (rule: the domain depends on no I/O crate)"
            ));
        }
    }
    for file in rust_files(&root().join("domain/src")) {
        let code = production_part(&read(&file));
        for (number, line) in code_lines(&code) {
            for name in IO_CRATES {
                let path = format!("{}::", name.replace('-', "_"));
                if mentions_path(line, &path) {
                    failures.push(format!(
                        "{}:{number}: uses `{path}` (rule: the domain depends on no I/O crate)",
                        relative(&file)
                    ));
                }
            }
            for io in ["std::fs", "std::net", "std::process", "std::env"] {
                if line.contains(io) {
                    failures.push(format!(
                        "{}:{number}: uses `{io}` (rule: the domain does no I/O)",
                        relative(&file)
                    ));
                }
            }
        }
    }
    report(failures);
}

#[test]
fn only_the_log_reader_selects_from_events() {
    let rule = "only the event-log reader selects from the events table";
    let mut failures = Vec::new();
    let mut offenders = Vec::new();
    for file in production_files() {
        let name = relative(&file);
        let code = production_part(&read(&file));
        let hits = selects_from_events(&code);
        if hits.is_empty() || LOG_READER.contains(&name.as_str()) {
            continue;
        }
        offenders.push(name.clone());
        if !EVENTS_READERS_TO_MOVE.contains(&name.as_str()) {
            failures.push(format!(
                "{name}:{}: selects from `events` (rule: {rule}; read the log through the \
                 log reader)",
                hits[0]
            ));
        }
    }
    failures.extend(stale(EVENTS_READERS_TO_MOVE, &offenders, rule));
    report(failures);
}

#[test]
fn edge_holds_no_sql_query() {
    let rule = "`edge` holds no SQL; the read-model crate owns typed queries";
    let mut failures = Vec::new();
    let mut offenders = Vec::new();
    for file in rust_files(&root().join("edge/src")) {
        let name = relative(&file);
        let code = production_part(&read(&file));
        let hits: Vec<usize> = code_lines(&code)
            .filter(|(_, line)| is_sql_query(line))
            .map(|(number, _)| number)
            .collect();
        if hits.is_empty() {
            continue;
        }
        offenders.push(name.clone());
        if !EDGE_SQL_TO_MOVE.contains(&name.as_str()) {
            failures.push(format!("{name}:{}: runs a query (rule: {rule})", hits[0]));
        }
    }
    failures.extend(stale(EDGE_SQL_TO_MOVE, &offenders, rule));
    report(failures);
}

#[test]
fn no_lower_layer_imports_edge() {
    let mut failures = Vec::new();
    for krate in ["handlers", "projections", "nats", "domain", "storage"] {
        let manifest_path = root().join(krate).join("Cargo.toml");
        if dependencies(&read(&manifest_path)).any(|name| name == "jukebox-edge") {
            failures.push(format!(
                "{krate}/Cargo.toml: depends on `jukebox-edge` (rule: no module of \
                 handlers/projections/nats imports `edge`)"
            ));
        }
        for file in rust_files(&root().join(krate).join("src")) {
            for (number, line) in code_lines(&read(&file)) {
                if mentions_path(line, "jukebox_edge") {
                    failures.push(format!(
                        "{}:{number}: uses `jukebox_edge` (rule: no module of \
                         handlers/projections/nats imports `edge`)",
                        relative(&file)
                    ));
                }
            }
        }
    }
    report(failures);
}

/// Files of `edge` that may name `crate::api`: the router itself, and the web role, which
/// serves the API's router under `/api`.
const API_USERS: &[&str] = &["edge/src/api.rs", "edge/src/web.rs"];

#[test]
fn no_edge_module_imports_the_api_router() {
    let rule = "only `api.rs` assembles the router; route modules and what they use never \
                import `crate::api` (no import cycle: put shared code in `commands`, \
                `extract` or the resource's module)";
    let mut failures = Vec::new();
    for file in rust_files(&root().join("edge/src")) {
        let name = relative(&file);
        if API_USERS.contains(&name.as_str()) {
            continue;
        }
        for (number, line) in code_lines(&production_part(&read(&file))) {
            if imports_api(line) {
                failures.push(format!(
                    "{name}:{number}: imports `crate::api` (rule: {rule})"
                ));
            }
        }
    }
    report(failures);
}

/// `crate::api` as a path (`crate::api::x`, `use crate::api;`) or in a group
/// (`use crate::{api, x};`), not `crate::apis` nor `crate::x::api`.
fn imports_api(line: &str) -> bool {
    let as_path = line.match_indices("crate::api").any(|(at, found)| {
        let before = line[..at].chars().next_back();
        let after = line[at + found.len()..].chars().next();
        before.is_none_or(|c| !(c.is_alphanumeric() || c == '_' || c == ':'))
            && after.is_none_or(|c| !(c.is_alphanumeric() || c == '_'))
    });
    let in_group = line.match_indices("crate::{").any(|(at, found)| {
        let group = &line[at + found.len()..];
        let group = &group[..group.find('}').unwrap_or(group.len())];
        group.split(',').any(|item| {
            let item = item.trim();
            item == "api" || item.starts_with("api::") || item.starts_with("api ")
        })
    });
    as_path || in_group
}

#[test]
fn no_production_file_is_long_without_a_reason_at_its_top() {
    let rule = format!("no production file over {MAX_LINES} lines without a reason at its top");
    let mut failures = Vec::new();
    let mut offenders = Vec::new();
    for file in production_files() {
        let name = relative(&file);
        let text = read(&file);
        let lines = production_part(&text).lines().count();
        if lines <= MAX_LINES || says_why_it_is_long(&text) {
            continue;
        }
        offenders.push(name.clone());
        if !LONG_FILES_TO_SPLIT.contains(&name.as_str()) {
            failures.push(format!(
                "{name}: {lines} lines (rule: {rule}; split it, or say at its top why it is \
                 long because ...)"
            ));
        }
    }
    failures.extend(stale(LONG_FILES_TO_SPLIT, &offenders, &rule));
    report(failures);
}

#[test]
fn documents_link_only_to_files_in_the_repository() {
    let mut failures = Vec::new();
    let mut documents = vec![root().join("README.md")];
    let mut folders = vec![root().join("docs")];
    while let Some(folder) = folders.pop() {
        for entry in std::fs::read_dir(&folder).unwrap().flatten() {
            let path = entry.path();
            if path.is_dir() {
                folders.push(path);
            } else if path.extension().is_some_and(|e| e == "md") {
                documents.push(path);
            }
        }
    }
    documents.sort();
    for document in documents {
        let text = read(&document);
        for (number, line) in text.lines().enumerate() {
            for target in relative_links(line) {
                let resolved = document.parent().unwrap().join(&target);
                if !resolved.exists() {
                    failures.push(format!(
                        "{}:{}: links to `{target}`, which is not in the repository (rule: \
                         documents reference only documents in the repository)",
                        relative(&document),
                        number + 1
                    ));
                }
            }
        }
    }
    report(failures);
}

/// The targets of `[text](target)` links that are paths (not URLs, not `#anchors`),
/// without their `#fragment`.
fn relative_links(line: &str) -> Vec<String> {
    line.match_indices("](")
        .filter_map(|(at, _)| {
            let rest = &line[at + 2..];
            let target = &rest[..rest.find(')')?];
            let target = target.split('#').next().unwrap_or_default().trim();
            let external = target.contains("://") || target.starts_with("mailto:");
            (!target.is_empty() && !external).then(|| target.to_owned())
        })
        .collect()
}

/// The checks themselves, on small inputs: a rule that cannot fail protects nothing.
#[test]
fn the_checks_see_what_they_look_for() {
    assert_eq!(
        selects_from_events("let q = \"SELECT {} FROM\n   events WHERE x\";"),
        vec![1]
    );
    assert!(selects_from_events("sqlx::query(\"SELECT 1 FROM events_rebuild\")").is_empty());
    assert!(selects_from_events("// read from events in relay order").is_empty());
    assert_eq!(selects_from_events("x\ny JOIN events e ON"), vec![2]);
    assert_eq!(
        relative_links("see [ADR 4](adr/04-x.md#why), [site](https://x.test) and [top](#top)"),
        ["adr/04-x.md"]
    );
    assert!(imports_api("use crate::api::{envelope, send};"));
    assert!(imports_api(
        "    crate::api::stored_outcome_soon(state, id),"
    ));
    assert!(imports_api("use crate::{api, error};"));
    assert!(imports_api("use crate::api;"));
    assert!(!imports_api("use crate::apis::x;"));
    assert!(!imports_api("use crate::routes::api::x;"));
    assert!(!imports_api("use crate::{apis, error};"));
    assert!(is_sql_query("    sqlx::query_as(\"SELECT 1\")"));
    assert!(is_sql_query("        .fetch_optional(pool)"));
    assert!(!is_sql_query("use sqlx::PgPool;"));
    assert!(mentions_path("use tokio::sync::mpsc;", "tokio::"));
    assert!(!mentions_path("use my_tokio::x;", "tokio::"));
    assert_eq!(
        production_part("a\nb\n#[cfg(test)]\nmod tests {}\n"),
        "a\nb\n"
    );
    let names: Vec<String> = dependencies(
        "[package]\nname = \"x\"\n[dependencies]\nsqlx.workspace = true\nserde = { workspace = true }\n[dev-dependencies]\ntokio = \"1\"\n",
    )
    .collect();
    assert_eq!(names, ["sqlx", "serde"]);
    assert!(says_why_it_is_long(
        "//! Routes.\n//! This file is long because X.\n\nfn x() {}"
    ));
    assert!(!says_why_it_is_long(
        "//! Routes.\n\n// long because of x\nfn x() {}"
    ));
    assert_eq!(
        stale(&["a.rs", "b.rs"], &["a.rs".to_owned()], "r"),
        [
            "b.rs is on the allow-list of rule `r` but no longer breaks it (moved, split or \
          fixed): remove it from the list in test-support/tests/architecture.rs"
        ]
    );
}

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("test-support sits in the workspace root")
        .to_path_buf()
}

fn relative(path: &Path) -> String {
    path.strip_prefix(root())
        .unwrap_or(path)
        .display()
        .to_string()
}

fn read(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap_or_else(|e| panic!("reading {}: {e}", path.display()))
}

fn rust_files(dir: &Path) -> Vec<PathBuf> {
    let mut files = Vec::new();
    let mut folders = vec![dir.to_path_buf()];
    while let Some(folder) = folders.pop() {
        let entries = std::fs::read_dir(&folder)
            .unwrap_or_else(|e| panic!("reading {}: {e}", folder.display()));
        for entry in entries.flatten() {
            let path = entry.path();
            if path.is_dir() {
                folders.push(path);
            } else if path.extension().is_some_and(|e| e == "rs") {
                files.push(path);
            }
        }
    }
    files.sort();
    files
}

fn production_files() -> Vec<PathBuf> {
    PRODUCTION
        .iter()
        .flat_map(|dir| rust_files(&root().join(dir)))
        .collect()
}

/// The file up to its first `#[cfg(test)]` line.
fn production_part(text: &str) -> String {
    let mut out = String::new();
    for line in text.split_inclusive('\n') {
        if line.trim_start().starts_with("#[cfg(test)]") {
            break;
        }
        out.push_str(line);
    }
    out
}

/// Numbered lines (from 1) that are not comments.
fn code_lines(text: &str) -> impl Iterator<Item = (usize, &str)> {
    text.lines()
        .enumerate()
        .map(|(i, line)| (i + 1, line))
        .filter(|(_, line)| !line.trim_start().starts_with("//"))
}

/// `path` (`tokio::`) used as a path start, not as the end of another name (`my_tokio::`).
fn mentions_path(line: &str, path: &str) -> bool {
    line.match_indices(path).any(|(at, _)| {
        line[..at]
            .chars()
            .next_back()
            .is_none_or(|c| !(c.is_alphanumeric() || c == '_'))
    })
}

/// The lines on which `FROM events` or `JOIN events` (any case, any white space between,
/// also across lines) starts, outside comment lines.
fn selects_from_events(code: &str) -> Vec<usize> {
    let text: String = code
        .lines()
        .map(|line| {
            if line.trim_start().starts_with("//") {
                String::new()
            } else {
                line.to_ascii_lowercase()
            }
        })
        .collect::<Vec<_>>()
        .join("\n");
    let word = |c: char| c.is_alphanumeric() || c == '_';
    let mut hits = Vec::new();
    for keyword in ["from", "join"] {
        for (at, _) in text.match_indices(keyword) {
            let before = text[..at].chars().next_back();
            if before.is_some_and(word) {
                continue;
            }
            let rest = &text[at + keyword.len()..];
            let table = rest.trim_start();
            if table.len() == rest.len() || !table.starts_with("events") {
                continue;
            }
            if table["events".len()..].chars().next().is_some_and(word) {
                continue;
            }
            hits.push(text[..at].matches('\n').count() + 1);
        }
    }
    hits.sort();
    hits
}

fn is_sql_query(line: &str) -> bool {
    [
        "sqlx::query",
        "sqlx::raw_sql",
        ".fetch_one(",
        ".fetch_all(",
        ".fetch_optional(",
        ".fetch(",
    ]
    .iter()
    .any(|pattern| line.contains(pattern))
}

/// The names in a manifest's `[dependencies]` table.
fn dependencies(manifest: &str) -> impl Iterator<Item = String> + '_ {
    let mut inside = false;
    manifest.lines().filter_map(move |line| {
        let line = line.trim();
        if line.starts_with('[') {
            inside = line == "[dependencies]";
            return None;
        }
        if !inside || line.is_empty() || line.starts_with('#') {
            return None;
        }
        let key = line.split(['=', '.', ' ']).next()?.trim();
        (!key.is_empty()).then(|| key.to_owned())
    })
}

/// The file's leading comment says why it is long ("... long because ...").
fn says_why_it_is_long(text: &str) -> bool {
    text.lines()
        .take_while(|line| line.trim_start().starts_with("//"))
        .any(|line| line.to_ascii_lowercase().contains("long because"))
}

/// Allow-list entries that no longer break their rule.
fn stale(allowed: &[&str], offenders: &[String], rule: &str) -> Vec<String> {
    allowed
        .iter()
        .filter(|name| !offenders.iter().any(|o| o == *name))
        .map(|name| {
            format!(
                "{name} is on the allow-list of rule `{rule}` but no longer breaks it (moved, \
                 split or fixed): remove it from the list in test-support/tests/architecture.rs"
            )
        })
        .collect()
}

fn report(failures: Vec<String>) {
    assert!(
        failures.is_empty(),
        "architecture rules broken:\n  {}",
        failures.join("\n  ")
    );
}

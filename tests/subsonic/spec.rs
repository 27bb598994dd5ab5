//! Validation of answers against the OpenSubsonic OpenAPI description (copied from the
//! spec into `tests/subsonic/openapi/`, Apache-2.0, so a clean clone has it). Its schemas
//! are spread over files joined by relative `$ref`s; this inlines them and checks the
//! keywords they use: type, properties, required, items, enum, allOf, oneOf, minimum,
//! maximum, minItems.

use std::path::{Path, PathBuf};

use serde_json::Value;

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/subsonic/openapi")
}

fn load(path: &Path) -> Value {
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    serde_json::from_str(&text).unwrap()
}

/// `value` with every `$ref` (relative to `dir`) replaced by what it points at.
fn inline(value: &Value, dir: &Path, depth: usize) -> Value {
    assert!(
        depth < 64,
        "$ref too deep (a cycle?) under {}",
        dir.display()
    );
    match value {
        Value::Object(map) => {
            if let Some(Value::String(reference)) = map.get("$ref") {
                let (file, pointer) = reference.split_once('#').unwrap_or((reference, ""));
                let path = dir.join(file);
                let mut target = load(&path);
                if !pointer.is_empty() {
                    target = target.pointer(pointer).cloned().expect(reference);
                }
                return inline(&target, path.parent().unwrap(), depth + 1);
            }
            Value::Object(
                map.iter()
                    .map(|(k, v)| (k.clone(), inline(v, dir, depth)))
                    .collect(),
            )
        }
        Value::Array(items) => Value::Array(items.iter().map(|v| inline(v, dir, depth)).collect()),
        other => other.clone(),
    }
}

/// The schema of `method`'s JSON answer. Methods that answer bytes (`stream`,
/// `download`, `getCoverArt`) answer JSON only to fail: the failure response.
pub fn schema(method: &str) -> Value {
    if matches!(method, "stream" | "download" | "getCoverArt") {
        let dir = root().join("schemas/SubsonicResponse");
        let failure = load(&dir.join("SubsonicFailureResponse.json"));
        let failure = inline(&failure, &dir, 0);
        return serde_json::json!({
            "type": "object",
            "properties": {"subsonic-response": failure},
            "required": ["subsonic-response"],
        });
    }
    let dir = root().join("endpoints");
    let path = dir.join(format!("{method}.json"));
    let endpoint = load(&path);
    let answer = endpoint
        .pointer("/get/responses/200")
        .unwrap_or_else(|| panic!("{method}: no answer in the spec"));
    inline(answer, &dir, 0)
        .pointer("/content/application~1json/schema")
        .unwrap_or_else(|| panic!("{method}: no JSON answer in the spec"))
        .clone()
}

/// The problems of `value` against `schema`, as JSON pointers with a reason.
pub fn problems(schema: &Value, value: &Value, at: &str) -> Vec<String> {
    let mut found = Vec::new();
    if let Some(kind) = schema.get("type").and_then(Value::as_str) {
        let ok = match kind {
            "object" => value.is_object(),
            "array" => value.is_array(),
            "string" => value.is_string(),
            "integer" => value.is_i64() || value.is_u64(),
            "number" => value.is_number(),
            "boolean" => value.is_boolean(),
            "null" => value.is_null(),
            _ => true,
        };
        if !ok {
            return vec![format!("{at}: expected {kind}, got {value}")];
        }
    }
    if let Some(options) = schema.get("enum").and_then(Value::as_array) {
        if !options.contains(value) {
            found.push(format!("{at}: {value} is not one of {options:?}"));
        }
    }
    if let (Some(min), Some(n)) = (
        schema.get("minimum").and_then(Value::as_f64),
        value.as_f64(),
    ) {
        if n < min {
            found.push(format!("{at}: {n} < minimum {min}"));
        }
    }
    if let (Some(max), Some(n)) = (
        schema.get("maximum").and_then(Value::as_f64),
        value.as_f64(),
    ) {
        if n > max {
            found.push(format!("{at}: {n} > maximum {max}"));
        }
    }
    if let Some(object) = value.as_object() {
        for name in schema
            .get("required")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .filter_map(Value::as_str)
        {
            if !object.contains_key(name) {
                found.push(format!("{at}: missing required `{name}`"));
            }
        }
        if let Some(properties) = schema.get("properties").and_then(Value::as_object) {
            for (name, property) in properties {
                if let Some(field) = object.get(name) {
                    found.extend(problems(property, field, &format!("{at}/{name}")));
                }
            }
        }
    }
    if let Some(items) = value.as_array() {
        if let Some(min) = schema.get("minItems").and_then(Value::as_u64) {
            if (items.len() as u64) < min {
                found.push(format!("{at}: fewer than {min} items"));
            }
        }
        if let Some(item_schema) = schema.get("items") {
            for (i, item) in items.iter().enumerate() {
                found.extend(problems(item_schema, item, &format!("{at}/{i}")));
            }
        }
    }
    for part in schema
        .get("allOf")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        found.extend(problems(part, value, at));
    }
    if let Some(options) = schema.get("oneOf").and_then(Value::as_array) {
        let matching = options
            .iter()
            .filter(|option| problems(option, value, at).is_empty())
            .count();
        if matching != 1 {
            let why: Vec<String> = options
                .iter()
                .flat_map(|option| problems(option, value, at))
                .collect();
            found.push(format!(
                "{at}: matches {matching} of oneOf's {} schemas ({})",
                options.len(),
                why.join("; ")
            ));
        }
    }
    found
}

/// Panics, naming every problem, unless `answer` is a valid answer of `method`.
pub fn assert_valid(method: &str, answer: &Value) {
    let found = problems(&schema(method), answer, "");
    assert!(
        found.is_empty(),
        "{method}: the answer does not follow the spec:\n{}\n{answer:#}",
        found.join("\n")
    );
}

#[test]
fn the_validator_refuses_what_the_spec_refuses() {
    let ok = serde_json::json!({"subsonic-response": {
        "status": "ok", "version": "1.16.1", "type": "jukebox", "serverVersion": "0.1.0",
        "openSubsonic": true, "song": {"id": "yt:a", "isDir": false, "title": "A"}}});
    assert_valid("getSong", &ok);
    let mut no_title = ok.clone();
    no_title["subsonic-response"]["song"]
        .as_object_mut()
        .unwrap()
        .remove("title");
    assert!(!problems(&schema("getSong"), &no_title, "").is_empty());
    let mut numeric_id = ok.clone();
    numeric_id["subsonic-response"]["song"]["id"] = serde_json::json!(7);
    assert!(!problems(&schema("getSong"), &numeric_id, "").is_empty());
    let bad_code = serde_json::json!({"subsonic-response": {
        "status": "failed", "version": "1.16.1", "type": "jukebox", "serverVersion": "0.1.0",
        "openSubsonic": true, "error": {"code": 45}}});
    assert!(!problems(&schema("ping"), &bad_code, "").is_empty());
    let mut no_version = ok;
    no_version["subsonic-response"]
        .as_object_mut()
        .unwrap()
        .remove("serverVersion");
    assert!(!problems(&schema("getSong"), &no_version, "").is_empty());
}

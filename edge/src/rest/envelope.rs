//! The `subsonic-response` envelope in the three formats (`f=xml`, the default, `json`,
//! `jsonp`), and the API's errors: always HTTP 200 with a code from the spec, except a
//! method Jukebox does not have (404, as OpenSubsonic answers an unsupported extension).

use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use serde_json::{Map, Value};

/// The Subsonic API version Jukebox speaks.
pub const API_VERSION: &str = "1.16.1";
pub const SERVER_TYPE: &str = "jukebox";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    Xml,
    Json,
    Jsonp,
}

/// How to answer: the format and, for JSONP, the callback.
#[derive(Debug, Clone)]
pub struct Reply {
    pub format: Format,
    pub callback: Option<String>,
}

impl Reply {
    pub fn new(format: Option<&str>, callback: Option<&str>) -> Self {
        let format = match format {
            Some("json") => Format::Json,
            // A callback that is not a plain JavaScript name would be script injection.
            Some("jsonp") if callback.is_some_and(valid_callback) => Format::Jsonp,
            Some("jsonp") => Format::Json,
            _ => Format::Xml,
        };
        Self {
            format,
            callback: callback.map(str::to_owned),
        }
    }

    /// A successful answer: `body` holds the method's elements (an object, maybe empty).
    pub fn ok(&self, body: Value) -> Response {
        self.render(StatusCode::OK, "ok", body)
    }

    pub fn error(&self, error: &SubsonicError) -> Response {
        let mut detail = Map::new();
        detail.insert("code".into(), Value::from(error.code));
        detail.insert("message".into(), Value::from(error.message.clone()));
        let mut body = Map::new();
        body.insert("error".into(), Value::Object(detail));
        self.render(error.status, "failed", Value::Object(body))
    }

    fn render(&self, status: StatusCode, outcome: &str, body: Value) -> Response {
        let mut response = Map::new();
        response.insert("status".into(), Value::from(outcome));
        response.insert("version".into(), Value::from(API_VERSION));
        response.insert("type".into(), Value::from(SERVER_TYPE));
        response.insert(
            "serverVersion".into(),
            Value::from(env!("CARGO_PKG_VERSION")),
        );
        response.insert("openSubsonic".into(), Value::from(true));
        if let Value::Object(fields) = body {
            response.extend(fields);
        }
        let response = Value::Object(response);
        match self.format {
            Format::Json => (
                status,
                [(header::CONTENT_TYPE, "application/json")],
                wrapped(response),
            )
                .into_response(),
            Format::Jsonp => {
                let callback = self.callback.as_deref().unwrap_or("callback");
                (
                    status,
                    [(header::CONTENT_TYPE, "application/javascript")],
                    format!("{callback}({});", wrapped(response)),
                )
                    .into_response()
            }
            Format::Xml => {
                let mut xml = String::from(r#"<?xml version="1.0" encoding="UTF-8"?>"#);
                element(&mut xml, "subsonic-response", &response, true);
                (
                    status,
                    [(header::CONTENT_TYPE, "text/xml; charset=utf-8")],
                    xml,
                )
                    .into_response()
            }
        }
    }
}

fn wrapped(response: Value) -> String {
    let mut root = Map::new();
    root.insert("subsonic-response".into(), response);
    Value::Object(root).to_string()
}

fn valid_callback(name: &str) -> bool {
    (1..=64).contains(&name.len())
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'$' | b'.'))
        && !name.as_bytes()[0].is_ascii_digit()
}

/// The XML form of a JSON answer, as every Subsonic server writes it: scalar fields are
/// attributes, objects are child elements, a list is one element per item.
fn element(xml: &mut String, name: &str, value: &Value, root: bool) {
    xml.push('<');
    xml.push_str(name);
    if root {
        xml.push_str(r#" xmlns="http://subsonic.org/restapi""#);
    }
    let Value::Object(fields) = value else {
        xml.push('>');
        escape(xml, &scalar(value));
        xml.push_str("</");
        xml.push_str(name);
        xml.push('>');
        return;
    };
    for (key, field) in fields {
        if !matches!(field, Value::Object(_) | Value::Array(_) | Value::Null) {
            xml.push(' ');
            xml.push_str(key);
            xml.push_str("=\"");
            escape(xml, &scalar(field));
            xml.push('"');
        }
    }
    let children: Vec<(&String, &Value)> = fields
        .iter()
        .filter(|(_, f)| matches!(f, Value::Object(_) | Value::Array(_)))
        .collect();
    if children.is_empty() {
        xml.push_str("/>");
        return;
    }
    xml.push('>');
    for (key, child) in children {
        match child {
            Value::Array(items) => items.iter().for_each(|item| element(xml, key, item, false)),
            other => element(xml, key, other, false),
        }
    }
    xml.push_str("</");
    xml.push_str(name);
    xml.push('>');
}

fn scalar(value: &Value) -> String {
    match value {
        Value::String(text) => text.clone(),
        other => other.to_string(),
    }
}

fn escape(xml: &mut String, text: &str) {
    for c in text.chars() {
        match c {
            '&' => xml.push_str("&amp;"),
            '<' => xml.push_str("&lt;"),
            '>' => xml.push_str("&gt;"),
            '"' => xml.push_str("&quot;"),
            '\'' => xml.push_str("&apos;"),
            // Characters XML 1.0 cannot carry at all.
            c if (c as u32) < 0x20 && !matches!(c, '\t' | '\n' | '\r') => xml.push('\u{FFFD}'),
            c => xml.push(c),
        }
    }
}

/// An error in the spec's terms.
#[derive(Debug, Clone)]
pub struct SubsonicError {
    pub code: u16,
    pub message: String,
    /// 200 for every error but an unknown method.
    pub status: StatusCode,
}

impl SubsonicError {
    fn new(code: u16, message: impl Into<String>) -> Self {
        Self {
            code,
            message: message.into(),
            status: StatusCode::OK,
        }
    }

    pub fn generic(message: impl Into<String>) -> Self {
        Self::new(0, message)
    }
    pub fn missing(parameter: &str) -> Self {
        Self::new(10, format!("Required parameter is missing: {parameter}"))
    }
    pub fn invalid(message: impl Into<String>) -> Self {
        Self::new(10, message)
    }
    pub fn wrong_credentials() -> Self {
        Self::new(
            40,
            "Wrong username or password. Use an app credential from Apps & devices, not the account password",
        )
    }
    pub fn conflicting() -> Self {
        Self::new(
            43,
            "Multiple conflicting authentication mechanisms provided",
        )
    }
    pub fn invalid_api_key() -> Self {
        Self::new(44, "Invalid API key")
    }
    pub fn not_authorized(message: impl Into<String>) -> Self {
        Self::new(50, message)
    }
    pub fn not_found(what: &str) -> Self {
        Self::new(70, format!("{what} not found"))
    }
    pub fn unknown_method(method: &str) -> Self {
        Self {
            status: StatusCode::NOT_FOUND,
            ..Self::new(
                0,
                format!("Jukebox does not implement the method `{method}`"),
            )
        }
    }
}

/// A failure on our side: logged, answered as error 0 (never a 500 page an app cannot
/// parse).
impl SubsonicError {
    pub fn internal(error: &dyn std::fmt::Display) -> Self {
        tracing::error!(error = %error, "a Subsonic request failed");
        Self::generic("Jukebox could not answer this request; try again later")
    }
}

impl From<sqlx::Error> for SubsonicError {
    fn from(error: sqlx::Error) -> Self {
        // Class 22, "data exception": a value from the request Postgres cannot take.
        if let sqlx::Error::Database(db) = &error {
            if db.code().is_some_and(|code| code.starts_with("22")) {
                return Self::invalid(format!("a parameter's value is out of range: {db}"));
            }
        }
        Self::internal(&error)
    }
}

impl From<anyhow::Error> for SubsonicError {
    fn from(error: anyhow::Error) -> Self {
        Self::internal(&format!("{error:#}"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn xml_has_attributes_for_scalars_and_elements_for_lists() {
        let mut xml = String::new();
        let body = json!({"status": "ok", "a": "x<&\"y", "list": {"item": [{"id": "1"}, {"id": "2"}]},
                          "versions": [1, 2], "none": null});
        element(&mut xml, "subsonic-response", &body, true);
        assert_eq!(
            xml,
            r#"<subsonic-response xmlns="http://subsonic.org/restapi" a="x&lt;&amp;&quot;y" status="ok"><list><item id="1"/><item id="2"/></list><versions>1</versions><versions>2</versions></subsonic-response>"#
        );
    }

    #[test]
    fn jsonp_needs_a_plain_callback_name() {
        assert_eq!(
            Reply::new(Some("jsonp"), Some("cb_1")).format,
            Format::Jsonp
        );
        assert_eq!(
            Reply::new(Some("jsonp"), Some("alert(1)//")).format,
            Format::Json
        );
        assert_eq!(Reply::new(Some("jsonp"), None).format, Format::Json);
        assert_eq!(Reply::new(None, None).format, Format::Xml);
        assert_eq!(Reply::new(Some("nonsense"), None).format, Format::Xml);
    }
}

//! Calling `/rest` from the test: every JSON answer is checked against the spec, and the
//! same call in XML must parse and carry the same data.

use std::collections::BTreeMap;

use md5::{Digest, Md5};
use reqwest::StatusCode;
use serde_json::{Map, Value};

use crate::spec::assert_valid;

/// How a call authenticates.
#[derive(Debug, Clone)]
pub enum Auth {
    None,
    ApiKey(String),
    /// `u` + `t` + `s` (a fresh salt per call).
    Token(String, String),
    /// `u` + `p`, sent as given.
    Password(String, String),
}

impl Auth {
    fn params(&self) -> Vec<(String, String)> {
        let pair = |k: &str, v: &str| (k.to_owned(), v.to_owned());
        match self {
            Self::None => vec![],
            Self::ApiKey(key) => vec![pair("apiKey", key)],
            Self::Token(user, secret) => {
                let salt = hex::encode(rand::random::<[u8; 6]>());
                let token = hex::encode(Md5::digest(format!("{secret}{salt}").as_bytes()));
                vec![pair("u", user), pair("t", &token), pair("s", &salt)]
            }
            Self::Password(user, password) => vec![pair("u", user), pair("p", password)],
        }
    }
}

/// A Subsonic server address (the API port or the web app's) and a client.
pub struct Rest {
    pub base: String,
    pub http: reqwest::Client,
}

impl Rest {
    pub fn new(base: String) -> Self {
        Self {
            base,
            http: reqwest::Client::new(),
        }
    }

    fn url(&self, method: &str) -> String {
        format!("{}/rest/{method}", self.base.trim_end_matches('/'))
    }

    /// `method` with `auth` and `params`, as JSON (GET), checked against the spec; the same
    /// call in XML must carry the same data. Returns the `subsonic-response` object.
    pub async fn call(&self, method: &str, auth: &Auth, params: &[(&str, &str)]) -> Value {
        let json = self.json(method, auth, params).await;
        let xml = self.xml(method, auth, params).await;
        assert_eq!(
            shape_of_json(&json),
            xml,
            "{method}: the XML answer does not carry the JSON answer's data"
        );
        json
    }

    /// The JSON answer alone (validated), without the XML comparison.
    pub async fn json(&self, method: &str, auth: &Auth, params: &[(&str, &str)]) -> Value {
        let mut query = auth.params();
        query.push(("f".into(), "json".into()));
        query.extend(params.iter().map(|(k, v)| (k.to_string(), v.to_string())));
        let response = self
            .http
            .get(self.url(method))
            .query(&query)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::OK, "{method}");
        assert_eq!(response.headers()["access-control-allow-origin"], "*");
        assert_eq!(response.headers()["x-content-type-options"], "nosniff");
        assert!(response.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("application/json"));
        let answer: Value = response.json().await.unwrap();
        assert_valid(method, &answer);
        answer["subsonic-response"].clone()
    }

    async fn xml(&self, method: &str, auth: &Auth, params: &[(&str, &str)]) -> Value {
        let mut query = auth.params();
        query.extend(params.iter().map(|(k, v)| (k.to_string(), v.to_string())));
        let response = self
            .http
            .get(self.url(method))
            .query(&query)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::OK, "{method} (xml)");
        assert!(response.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/xml"));
        parse_xml(&response.text().await.unwrap())
    }

    /// The error code of a failed call (validated like any answer).
    pub async fn error_code(&self, method: &str, auth: &Auth, params: &[(&str, &str)]) -> i64 {
        let answer = self.call(method, auth, params).await;
        assert_eq!(answer["status"], "failed", "{method}: {answer}");
        answer["error"]["code"].as_i64().unwrap()
    }
}

/// The comparable shape of an element: attributes as text, children by name, in order.
fn element_shape(attributes: BTreeMap<String, Value>, children: Vec<(String, Value)>) -> Value {
    let mut shape: Map<String, Value> = attributes.into_iter().collect();
    for (name, child) in children {
        let list = shape
            .entry(name)
            .or_insert_with(|| Value::Array(Vec::new()));
        list.as_array_mut().unwrap().push(child);
    }
    Value::Object(shape)
}

/// A JSON answer in that shape: scalars as text, each object or list as child elements.
fn shape_of_json(value: &Value) -> Value {
    let Value::Object(map) = value else {
        return Value::String(text(value));
    };
    let mut attributes = BTreeMap::new();
    let mut children = Vec::new();
    for (key, field) in map {
        match field {
            Value::Object(_) => children.push((key.clone(), shape_of_json(field))),
            Value::Array(items) => {
                children.extend(items.iter().map(|item| (key.clone(), shape_of_json(item))))
            }
            Value::Null => {}
            scalar => {
                attributes.insert(key.clone(), Value::String(text(scalar)));
            }
        }
    }
    element_shape(attributes, children)
}

fn text(value: &Value) -> String {
    match value {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

/// The root element of an XML answer in that shape (checking it is a Subsonic answer).
fn parse_xml(xml: &str) -> Value {
    use quick_xml::events::Event;
    let mut reader = quick_xml::Reader::from_str(xml);
    // (name, attributes, children, text)
    type Open = (
        String,
        BTreeMap<String, Value>,
        Vec<(String, Value)>,
        String,
    );
    let mut stack: Vec<Open> = Vec::new();
    let mut root = None;
    let open = |start: &quick_xml::events::BytesStart| -> Open {
        let name = String::from_utf8(start.name().as_ref().to_vec()).unwrap();
        let mut attributes = BTreeMap::new();
        for attribute in start.attributes() {
            let attribute = attribute.expect("a well-formed attribute");
            let key = String::from_utf8(attribute.key.as_ref().to_vec()).unwrap();
            let raw = std::str::from_utf8(&attribute.value).unwrap();
            let value = quick_xml::escape::unescape(raw).expect("valid escapes");
            if key != "xmlns" {
                attributes.insert(key, Value::String(value.into_owned()));
            }
        }
        (name, attributes, Vec::new(), String::new())
    };
    let close = |(name, attributes, children, text): Open| -> (String, Value) {
        if attributes.is_empty() && children.is_empty() && !text.is_empty() {
            (name, Value::String(text))
        } else {
            (name, element_shape(attributes, children))
        }
    };
    loop {
        match reader.read_event().expect("well-formed XML") {
            Event::Start(start) => stack.push(open(&start)),
            Event::Empty(start) => {
                let (name, value) = close(open(&start));
                match stack.last_mut() {
                    Some(parent) => parent.2.push((name, value)),
                    None => root = Some((name, value)),
                }
            }
            Event::End(_) => {
                let (name, value) = close(stack.pop().expect("balanced tags"));
                match stack.last_mut() {
                    Some(parent) => parent.2.push((name, value)),
                    None => root = Some((name, value)),
                }
            }
            Event::Text(t) => {
                if let Some(top) = stack.last_mut() {
                    top.3.push_str(t.decode().unwrap().trim());
                }
            }
            Event::Eof => break,
            _ => {}
        }
    }
    let (name, value) = root.expect("a root element");
    assert_eq!(name, "subsonic-response");
    assert!(xml.contains(r#"xmlns="http://subsonic.org/restapi""#));
    value
}

//! The YouTube Data API v3 client, a [`SongSearch`](crate::ports::SongSearch).

use std::collections::HashMap;

use async_trait::async_trait;
use jukebox_domain::SourceRef;
use secrecy::{ExposeSecret, SecretString};
use serde_json::Value;

use crate::ports::{SearchError, SearchHit, SongSearch};

/// The YouTube Data API v3: `search.list` for the ids, then `videos.list` for the
/// durations.
pub struct YoutubeApi {
    pub base_url: String,
    pub key: SecretString,
    pub http: reqwest::Client,
}

impl YoutubeApi {
    async fn get(&self, path: &str, query: &[(&str, &str)]) -> Result<Value, SearchError> {
        let response = self
            .http
            .get(format!("{}/{path}", self.base_url))
            .query(query)
            .query(&[("key", self.key.expose_secret())])
            .send()
            .await
            .map_err(|e| {
                // reqwest puts the URL (with the key) in its message: leave it out.
                let what = if e.is_timeout() {
                    "it did not answer in time"
                } else {
                    "it could not be reached"
                };
                SearchError::Unavailable(what.into())
            })?;
        let status = response.status();
        let body: Value = response.json().await.unwrap_or(Value::Null);
        if status.is_success() {
            return Ok(body);
        }
        let reason = body["error"]["errors"][0]["reason"]
            .as_str()
            .unwrap_or_default()
            .to_owned();
        let message = body["error"]["message"]
            .as_str()
            .map(|m| m.chars().take(200).collect::<String>())
            .unwrap_or_else(|| format!("HTTP {status}"));
        if status.as_u16() == 429
            || status.is_server_error()
            || matches!(
                reason.as_str(),
                "quotaExceeded" | "rateLimitExceeded" | "dailyLimitExceeded"
            )
        {
            Err(SearchError::Unavailable(message))
        } else {
            Err(SearchError::BadGateway(message))
        }
    }
}

#[async_trait]
impl SongSearch for YoutubeApi {
    async fn search(&self, query: &str, limit: usize) -> Result<Vec<SearchHit>, SearchError> {
        let limit = limit.to_string();
        let found = self
            .get(
                "search",
                &[
                    ("part", "snippet"),
                    ("type", "video"),
                    ("maxResults", &limit),
                    ("q", query),
                ],
            )
            .await?;
        let items = found["items"]
            .as_array()
            .ok_or_else(|| SearchError::BadGateway("the answer has no results list".into()))?;
        let mut hits: Vec<SearchHit> = items
            .iter()
            .filter_map(|item| {
                let video_id = item["id"]["videoId"].as_str()?;
                SourceRef::video(video_id).ok()?;
                let snippet = &item["snippet"];
                Some(SearchHit {
                    video_id: video_id.to_owned(),
                    title: snippet["title"].as_str().unwrap_or_default().to_owned(),
                    channel: snippet["channelTitle"].as_str().map(str::to_owned),
                    duration_s: None,
                    thumbnail: ["high", "medium", "default"]
                        .iter()
                        .find_map(|size| snippet["thumbnails"][size]["url"].as_str())
                        .map(str::to_owned),
                })
            })
            .collect();
        if hits.is_empty() {
            return Ok(hits);
        }
        let ids: Vec<&str> = hits.iter().map(|h| h.video_id.as_str()).collect();
        let details = self
            .get(
                "videos",
                &[("part", "contentDetails"), ("id", &ids.join(","))],
            )
            .await?;
        let durations: HashMap<String, u64> = details["items"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|item| {
                let id = item["id"].as_str()?;
                let duration =
                    parse_iso8601_duration(item["contentDetails"]["duration"].as_str()?)?;
                Some((id.to_owned(), duration))
            })
            .collect();
        for hit in &mut hits {
            hit.duration_s = durations.get(&hit.video_id).copied();
        }
        Ok(hits)
    }
}

/// `PT1H2M3S` -> 3723 (YouTube's durations; days appear as `P1DT...`).
pub fn parse_iso8601_duration(s: &str) -> Option<u64> {
    let rest = s.strip_prefix('P')?;
    let (days, time) = match rest.split_once('T') {
        Some((d, t)) => (d, t),
        None => (rest, ""),
    };
    let mut total = 0u64;
    if !days.is_empty() {
        total += days.strip_suffix('D')?.parse::<u64>().ok()? * 86_400;
    }
    let mut number = String::new();
    for c in time.chars() {
        if c.is_ascii_digit() {
            number.push(c);
            continue;
        }
        let n: u64 = number.parse().ok()?;
        number.clear();
        total += n * match c {
            'H' => 3600,
            'M' => 60,
            'S' => 1,
            _ => return None,
        };
    }
    number.is_empty().then_some(total)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn youtube_durations_parse() {
        assert_eq!(parse_iso8601_duration("PT3M33S"), Some(213));
        assert_eq!(parse_iso8601_duration("PT1H"), Some(3600));
        assert_eq!(parse_iso8601_duration("P1DT1S"), Some(86_401));
        assert_eq!(parse_iso8601_duration("PT0S"), Some(0));
        assert_eq!(parse_iso8601_duration("3M"), None);
        assert_eq!(parse_iso8601_duration("PT3X"), None);
    }
}

//! The S3 backend (rust-s3), path-style, for any S3-compatible server.

use std::fmt;

use async_trait::async_trait;
use futures::TryStreamExt;
use s3::command::Command;
use s3::creds::Credentials;
use s3::error::S3Error;
use s3::request::tokio_backend::ReqwestRequest;
use s3::request::Request;
use s3::{Bucket, BucketConfiguration, Region};
use secrecy::ExposeSecret;

use super::{ByteRange, ObjectBody, ObjectInfo, ObjectKey, ObjectStore, S3Config, StoreError};

pub struct S3Store {
    bucket: Box<Bucket>,
    credentials: Credentials,
    region: Region,
}

impl fmt::Debug for S3Store {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Never the credentials.
        f.debug_struct("S3Store")
            .field("endpoint", &self.region.endpoint())
            .field("bucket", &self.bucket.name())
            .finish_non_exhaustive()
    }
}

fn backend(op: &'static str) -> impl FnOnce(S3Error) -> StoreError {
    move |e| StoreError::Backend {
        op,
        message: e.to_string(),
    }
}

fn status_error(op: &'static str, status: u16, body: &[u8]) -> StoreError {
    // S3 error bodies are small XML documents: `<Code>` says what went wrong.
    let body = String::from_utf8_lossy(body);
    let code = body
        .split_once("<Code>")
        .and_then(|(_, rest)| rest.split_once("</Code>"))
        .map(|(code, _)| code.to_owned());
    StoreError::Backend {
        op,
        message: match code {
            Some(code) => format!("HTTP {status} ({code})"),
            None => format!("HTTP {status}"),
        },
    }
}

impl S3Store {
    pub fn new(config: &S3Config) -> Result<Self, StoreError> {
        let region = Region::Custom {
            region: config.region.clone(),
            endpoint: config.endpoint.trim_end_matches('/').to_owned(),
        };
        let credentials = Credentials::new(
            Some(config.access_key.expose_secret()),
            Some(config.secret_key.expose_secret()),
            None,
            None,
            None,
        )
        .map_err(|e| StoreError::Backend {
            op: "configure",
            message: e.to_string(),
        })?;
        let bucket = Bucket::new(&config.bucket, region.clone(), credentials.clone())
            .map_err(backend("configure"))?
            .with_path_style();
        Ok(Self {
            bucket,
            credentials,
            region,
        })
    }

    /// `(status, headers, body stream)` of a GET, with a `Range` header when `range` is set.
    async fn get_response(
        &self,
        key: &ObjectKey,
        range: Option<ByteRange>,
    ) -> Result<GetResponse, StoreError> {
        let command = match range {
            None => Command::GetObject,
            Some(r) => Command::GetObjectRange {
                start: r.start,
                end: r.end,
            },
        };
        let request = ReqwestRequest::new(&self.bucket, key.as_str(), command)
            .await
            .map_err(backend("get"))?;
        let response = request.response().await.map_err(backend("get"))?;
        let status = response.status().as_u16();
        let content_length = response.content_length();
        let content_range = response
            .headers()
            .get("content-range")
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned);
        if !(200..300).contains(&status) {
            let body = response.bytes().await.unwrap_or_default();
            return Ok(GetResponse::Failed(status, body.to_vec()));
        }
        let stream = response.bytes_stream().map_err(std::io::Error::other);
        Ok(GetResponse::Ok {
            status,
            content_length,
            content_range,
            stream: Box::pin(stream),
        })
    }
}

enum GetResponse {
    Ok {
        status: u16,
        content_length: Option<u64>,
        content_range: Option<String>,
        stream: super::ByteStream,
    },
    Failed(u16, Vec<u8>),
}

/// `bytes <first>-<last>/<total>` -> `(first, last, total)`.
fn parse_content_range(value: &str) -> Option<(u64, u64, u64)> {
    let rest = value.trim().strip_prefix("bytes ")?;
    let (span, total) = rest.split_once('/')?;
    let (first, last) = span.split_once('-')?;
    Some((
        first.trim().parse().ok()?,
        last.trim().parse().ok()?,
        total.trim().parse().ok()?,
    ))
}

#[async_trait]
impl ObjectStore for S3Store {
    async fn ensure_bucket(&self) -> Result<(), StoreError> {
        // HeadBucket: rust-s3 has no command for it, but a HEAD on the empty key is
        // `HEAD /<bucket>/` in path style, which is one. (Its `exists()` lists all
        // buckets instead, which needs more permissions and chokes on s3s-fs' answer.)
        let (_, status) = self
            .bucket
            .head_object("")
            .await
            .map_err(backend("head bucket"))?;
        match status {
            200..=299 => return Ok(()),
            404 => {}
            status => return Err(status_error("head bucket", status, b"")),
        }
        let created = Bucket::create_with_path_style(
            &self.bucket.name(),
            self.region.clone(),
            self.credentials.clone(),
            BucketConfiguration::default(),
        )
        .await
        .map_err(backend("create bucket"))?;
        match created.response_code {
            200..=299 => Ok(()),
            // Someone else created it in the meantime.
            409 if created.response_text.contains("BucketAlreadyOwnedByYou") => Ok(()),
            status => Err(status_error(
                "create bucket",
                status,
                created.response_text.as_bytes(),
            )),
        }
    }

    #[tracing::instrument(skip_all, fields(key = %key))]
    async fn put_stream(
        &self,
        key: &ObjectKey,
        reader: &mut (dyn tokio::io::AsyncRead + Send + Unpin),
    ) -> Result<ObjectInfo, StoreError> {
        let mut reader = reader;
        // Below 8 MiB rust-s3 reads everything, then sends one PUT; above, it uploads
        // parts and the object appears only at CompleteMultipartUpload (a failed upload
        // is aborted). Either way the key never shows a partial object.
        let response = self
            .bucket
            .put_object_stream_with_content_type(&mut reader, key.as_str(), key.content_type())
            .await
            .map_err(|e| match e {
                S3Error::Io(source) => StoreError::Io {
                    context: format!("reading the data to store as {key}"),
                    source,
                },
                e => backend("put")(e),
            })?;
        match response.status_code() {
            200..=299 => Ok(ObjectInfo {
                size: response.uploaded_bytes() as u64,
            }),
            status => Err(status_error("put", status, b"")),
        }
    }

    async fn get(
        &self,
        key: &ObjectKey,
        range: Option<ByteRange>,
    ) -> Result<ObjectBody, StoreError> {
        match self.get_response(key, range).await? {
            GetResponse::Failed(404, _) => Err(StoreError::NotFound(key.clone())),
            GetResponse::Failed(416, _) => {
                let size = self
                    .head(key)
                    .await?
                    .ok_or_else(|| StoreError::NotFound(key.clone()))?
                    .size;
                Err(StoreError::RangeNotSatisfiable { size })
            }
            GetResponse::Failed(status, body) => Err(status_error("get", status, &body)),
            GetResponse::Ok {
                status: 206,
                content_range: Some(content_range),
                stream,
                ..
            } => {
                let (first, last, total) =
                    parse_content_range(&content_range).ok_or_else(|| StoreError::Backend {
                        op: "get",
                        message: format!("unreadable Content-Range {content_range:?}"),
                    })?;
                Ok(ObjectBody {
                    start: first,
                    content_length: last - first + 1,
                    total_size: total,
                    stream,
                })
            }
            GetResponse::Ok {
                status,
                content_length,
                stream,
                ..
            } => {
                let total = content_length.ok_or_else(|| StoreError::Backend {
                    op: "get",
                    message: format!("HTTP {status} without a Content-Length"),
                })?;
                match range {
                    // The whole object, as asked, or because the range covers all of it.
                    None => {}
                    Some(r) if r.resolve(total) == Some((0, total.saturating_sub(1))) => {}
                    Some(r) if r.resolve(total).is_none() => {
                        return Err(StoreError::RangeNotSatisfiable { size: total })
                    }
                    Some(_) => {
                        return Err(StoreError::Backend {
                            op: "get",
                            message: "the server ignored the Range header".into(),
                        })
                    }
                }
                Ok(ObjectBody {
                    start: 0,
                    content_length: total,
                    total_size: total,
                    stream,
                })
            }
        }
    }

    async fn head(&self, key: &ObjectKey) -> Result<Option<ObjectInfo>, StoreError> {
        let (head, status) = self
            .bucket
            .head_object(key.as_str())
            .await
            .map_err(backend("head"))?;
        match status {
            200..=299 => {
                let size = head.content_length.ok_or_else(|| StoreError::Backend {
                    op: "head",
                    message: "no Content-Length in the answer".into(),
                })?;
                Ok(Some(ObjectInfo { size: size as u64 }))
            }
            404 => Ok(None),
            status => Err(status_error("head", status, b"")),
        }
    }

    async fn delete(&self, key: &ObjectKey) -> Result<(), StoreError> {
        let response = self
            .bucket
            .delete_object(key.as_str())
            .await
            .map_err(backend("delete"))?;
        match response.status_code() {
            200..=299 | 404 => Ok(()),
            status => Err(status_error("delete", status, response.as_slice())),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::parse_content_range;

    #[test]
    fn content_range_is_parsed() {
        assert_eq!(parse_content_range("bytes 0-9/100"), Some((0, 9, 100)));
        assert_eq!(parse_content_range("bytes 5-5/6"), Some((5, 5, 6)));
        assert_eq!(parse_content_range("bytes */100"), None);
        assert_eq!(parse_content_range("items 0-1/2"), None);
    }
}

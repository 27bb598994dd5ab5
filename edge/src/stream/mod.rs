//! Playback: signed stream URLs (issued by the API) and the stream role that serves them.
//!
//! `GET /stream/{song_id}` on the API checks that the caller may play the song and answers
//! with a short-lived URL on the stream role: `.../api/public/stream/{song_id}?u=&e=&s=`,
//! where `s` is HMAC-SHA256 (key `STREAM_SIGNING_SECRET`, used for nothing else) over the
//! song, the user and the expiry. The URL is a narrow capability: one song, one user, a
//! few minutes; never the access token. The stream role checks the signature in constant
//! time, the expiry, and that the user still has the song, then serves the object from
//! the store with byte ranges, without buffering it whole.
//!
//! Covers work the same way, because an `<img>` cannot send a bearer header either:
//! `GET /library` and `GET /stream/{song_id}` hand out `.../api/public/covers/{song_id}?u=&e=&s=`,
//! signed under a tag of their own (a cover URL never opens the audio, nor the reverse),
//! with the same checks, served with a cache lifetime no longer than the signature's.

mod access;
mod range;
mod scale;
mod serve;
mod signing;

pub(crate) use access::{song_access, Access, StoredImage};
pub use range::{parse_range, RangeDecision, MAX_RANGES};
pub(crate) use serve::{audio, picture};
pub use serve::{router, SignedParams, StreamState};
pub use signing::{Capability, Denied, StreamIssuer, StreamSigner};

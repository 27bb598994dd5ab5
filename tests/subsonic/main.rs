//! The Subsonic side of Jukebox (issue 18): app credentials (`/me/app-credentials`) and
//! the OpenSubsonic API under `/rest`, against the real system (Postgres, NATS, ffmpeg,
//! the object store) and, for the API, real third-party clients from PyPI.

mod credentials;

use jukebox_test_support::imports as helpers;

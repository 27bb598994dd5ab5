//! Accounts integration tests (issue 3) against the real Postgres, NATS JetStream, an
//! in-process SMTP server and a fake Google on loopback. Every test gets its own
//! database and NATS namespace.

mod admin;
mod bus;
mod flow;
mod google;
mod helpers;
mod idempotency;
mod input;
mod limits;
mod mail;
mod manage;
mod sealed;
mod tokens;

use jukebox_test_support as support;

//! Accounts integration tests (issue 3) against the real Postgres, NATS JetStream, an
//! in-process SMTP server and fake OpenID Connect providers (Google, a Keycloak-like one) on loopback. Every test gets its own
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
mod oidc;
mod sealed;
mod tokens;

use jukebox_test_support as support;

//! Backbone integration tests against the real Postgres and NATS JetStream.
//! Each test gets its own database and NATS namespace, and removes them at the end.

mod cleanup;
mod cli;
mod encrypt_legacy;
mod legacy;
mod processor;
mod projections;
mod relay;
mod signup;

use jukebox_test_support as support;

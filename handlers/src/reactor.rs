//! The mail reactor: side effects come from events, not from HTTP handlers (DESIGN.md 8).
//!
//! A durable consumer of `EVENTS` (`reactor-mail`) that answers:
//! - `UserSignedUp` and `VerificationRequested` with a verification token
//!   (`IssueVerification`, its command id derived from the event id) and a mail with the
//!   link, once the token's hash is committed;
//! - `SignUpAttempted` (a sign-up found the address taken) with an "already registered"
//!   mail to the owner, when verification is required (otherwise sign-up answers 409);
//! - the owner's account changes (`reactor/account.rs`, ADR 29): reset and confirmation
//!   links made like verification links, and notices of a changed password or address;
//! - `UserErased` (`reactor/erasure.rs`, ADR 42): the user's own uploads are discarded
//!   (`DiscardTrack`) and leave the object store.
//!
//! What it did is recorded in `reactor_effects`, keyed by (reactor, event id), so a
//! redelivered or re-fed event sends nothing twice. The record is written after the SMTP
//! server accepted the mail: a crash between the two sends that mail again, with the same
//! `Message-ID` and the same link (the token is derived from the event id), which is the
//! narrowest window an SMTP hand-off allows (ADR 15).

use std::sync::Arc;
use std::time::Duration;

use async_nats::jetstream;
use jukebox_domain::{issue_command_id, Command, Email, UserEvent, VerificationToken};
use jukebox_nats::{
    CommandBus, CommandEnvelope, CommandOutcome, ConsumerRuntime, EventRecord, FailPointFired,
    FailPoints, InHand, MessageHandler, OutcomeStatus, Redeliveries, Settle, Topology,
};
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::registry::Registry;
use sqlx::PgPool;
use tokio_util::sync::CancellationToken;
use tracing::{error, info, info_span, warn, Instrument};
use uuid::Uuid;

use crate::mail::{Mail, Mailer};

/// The durable consumer's name, and the reactor's key in `reactor_effects`.
pub const CONSUMER: &str = "reactor-mail";

mod account;
mod erasure;

/// The events this reactor answers (subjects below `evt.`).
pub const SUBJECTS: [&str; 9] = [
    "evt.user.*.UserSignedUp",
    "evt.user.*.VerificationRequested",
    "evt.email_claim.*.SignUpAttempted",
    "evt.user.*.PasswordResetRequested",
    "evt.user.*.PasswordReset",
    "evt.user.*.PasswordChanged",
    "evt.user.*.EmailChangeRequested",
    "evt.user.*.EmailChanged",
    "evt.user.*.UserErased",
];

/// What the mails say and how links are made.
#[derive(Clone)]
pub struct MailSettings {
    /// Where people reach the web app; links start here.
    pub public_base_url: String,
    pub verification_ttl: Duration,
    /// "Already registered" mails go out only when verification is required: without it,
    /// sign-up answers 409 and the person already knows.
    pub email_verify_required: bool,
    /// HMAC key of verification tokens (`VerificationToken::derive`).
    pub token_key: Vec<u8>,
    /// How long a password reset link works.
    pub password_reset_ttl: Duration,
}

/// `jukebox_mail_total{kind="sent"|"failed"}`.
#[derive(Clone, Debug, Default)]
pub struct MailMetrics {
    family: Family<[(&'static str, &'static str); 1], Counter>,
}

impl MailMetrics {
    pub fn register(&self, registry: &mut Registry) {
        for kind in ["sent", "failed"] {
            let _ = self.family.get_or_create(&[("kind", kind)]);
        }
        registry.register("jukebox_mail", "Mails sent or failed", self.family.clone());
    }

    fn count(&self, kind: &'static str) {
        self.family.get_or_create(&[("kind", kind)]).inc();
    }

    pub fn get(&self, kind: &'static str) -> u64 {
        self.family.get(&[("kind", kind)]).map_or(0, |c| c.get())
    }
}

#[derive(Debug, thiserror::Error)]
enum ReactError {
    #[error("database: {0}")]
    Database(#[from] sqlx::Error),
    /// Worth another try later: the bus, the processor or the mail server.
    #[error("{0}")]
    Transient(String),
    #[error(transparent)]
    FailPoint(#[from] FailPointFired),
}

#[derive(Clone)]
pub struct MailReactor {
    pool: PgPool,
    client: async_nats::Client,
    topology: Topology,
    mailer: Arc<dyn Mailer>,
    settings: Arc<MailSettings>,
    pub ack_wait: Duration,
    /// How long a command waits for its answer before the stored outcome is read.
    pub command_wait: Duration,
    /// Events handled at once.
    pub concurrency: usize,
    pub redeliveries: Redeliveries,
    pub metrics: MailMetrics,
    pub fail_points: FailPoints,
    /// Where an erased user's uploads are deleted from (ADR 42).
    pub store: Option<Arc<dyn crate::storage::ObjectStore>>,
}

impl MailReactor {
    pub fn new(
        pool: PgPool,
        client: async_nats::Client,
        topology: Topology,
        mailer: Arc<dyn Mailer>,
        settings: MailSettings,
    ) -> Self {
        Self {
            pool,
            client,
            topology,
            mailer,
            settings: Arc::new(settings),
            ack_wait: Duration::from_secs(30),
            command_wait: Duration::from_secs(10),
            concurrency: 8,
            redeliveries: Redeliveries::default(),
            metrics: MailMetrics::default(),
            fail_points: FailPoints::default(),
            store: None,
        }
    }

    /// Runs until `shutdown`; events in hand are finished first.
    pub async fn run(self, shutdown: CancellationToken) -> anyhow::Result<()> {
        let js = jetstream::new(self.client.clone());
        let consumer = self
            .topology
            .reactor_consumer(&js, &SUBJECTS, self.ack_wait)
            .await?;
        let bus = CommandBus::start(self.client.clone(), self.topology.namespace.clone()).await?;
        info!("mail reactor started");
        let reactions = Reactions {
            reactor: &self,
            bus,
        };
        ConsumerRuntime::new("reactor", CONSUMER)
            .with(&self.fail_points, &self.redeliveries)
            .each(
                &consumer,
                self.concurrency,
                InHand::Finish,
                &shutdown,
                &reactions,
            )
            .await?;
        info!("mail reactor stopped");
        Ok(())
    }
}

/// The consumer's handler: the reactor and its command bus.
struct Reactions<'a> {
    reactor: &'a MailReactor,
    bus: CommandBus,
}

impl MessageHandler for Reactions<'_> {
    async fn handle(&self, message: &jetstream::Message) -> Result<Settle, FailPointFired> {
        let mut record: EventRecord = match serde_json::from_slice(&message.payload) {
            Ok(record) => record,
            Err(error) => {
                error!(%error, subject = %message.subject, "unreadable event, terminating it");
                return Ok(Settle::Term);
            }
        };
        // The addresses it mails to are sealed per user (ADR 34). An erased user's read
        // as erased, which is no address: nothing is mailed.
        let opened = jukebox_nats::user_keys::open_records(
            &self.reactor.pool,
            std::slice::from_mut(&mut record),
            jukebox_nats::sealed::ERASED,
        )
        .await;
        if let Err(error) = opened {
            warn!(%error, "reading the user's key failed, retrying later");
            return Ok(Settle::Retry(Duration::from_secs(5)));
        }
        let event_id = event_id(&record);
        let span = info_span!("react", event_id = %event_id,
            correlation_id = record.metadata_str("correlation_id").unwrap_or("-"));
        let reacted = self
            .reactor
            .react(&self.bus, &record, &event_id)
            .instrument(span)
            .await;
        match reacted {
            // A lost ack redelivers the event, which finds the effect recorded.
            Ok(()) => Ok(Settle::Ack),
            Err(ReactError::FailPoint(fired)) => Err(fired),
            Err(error) => {
                warn!(%error, %event_id, "reaction failed, retrying later");
                Ok(Settle::Retry(Duration::from_secs(5)))
            }
        }
    }
}

impl MailReactor {
    async fn react(
        &self,
        bus: &CommandBus,
        record: &EventRecord,
        event_id: &str,
    ) -> Result<(), ReactError> {
        // `attempts` counts how often this event got this far: above 1, a crash or a
        // failure came between an earlier try and its record.
        let (attempts, done): (i32, bool) = sqlx::query_as(
            "INSERT INTO reactor_effects (reactor, event_id) VALUES ($1, $2)
             ON CONFLICT (reactor, event_id)
                 DO UPDATE SET attempts = reactor_effects.attempts + 1
             RETURNING attempts, done_at IS NOT NULL",
        )
        .bind(CONSUMER)
        .bind(event_id)
        .fetch_one(&self.pool)
        .await?;
        if done {
            info!("already done; nothing sent again");
            return Ok(());
        }
        if attempts > 1 {
            info!(attempts, "an earlier try did not finish; trying again");
        }
        if (record.aggregate_type.as_str(), record.event_type.as_str()) == ("user", "UserErased") {
            let deleted = self.erase_uploads(bus, record, event_id).await?;
            info!(deleted, "the erased user's own uploads deleted");
            return self.record_effect(event_id, "uploads_deleted").await;
        }
        let erased = jukebox_nats::sealed::reads_erased(&record.payload);
        let mail = match (record.aggregate_type.as_str(), record.event_type.as_str()) {
            // The user was erased: no address to mail, nothing to retry (ADR 42).
            _ if erased => None,
            ("user", "UserSignedUp" | "VerificationRequested") => {
                self.verification(bus, record, event_id).await?
            }
            ("email_claim", "SignUpAttempted") if self.settings.email_verify_required => {
                self.already_registered(record, event_id)
            }
            ("user", "PasswordResetRequested" | "EmailChangeRequested") => {
                self.link(bus, record, event_id).await?
            }
            ("user", "PasswordReset" | "PasswordChanged" | "EmailChanged") => {
                self.notice(record, event_id).await?
            }
            _ => None,
        };
        let effect = match mail {
            Some(mail) => {
                let kind = mail.kind;
                self.fail_points.check("reactor.before_send")?;
                if let Err(error) = self.mailer.send(mail.mail).await {
                    self.metrics.count("failed");
                    return Err(ReactError::Transient(format!("{error:#}")));
                }
                self.metrics.count("sent");
                self.fail_points.check("reactor.after_send")?;
                kind
            }
            None if erased => "erased",
            None => "none",
        };
        self.record_effect(event_id, effect).await
    }

    async fn record_effect(&self, event_id: &str, effect: &str) -> Result<(), ReactError> {
        sqlx::query(
            "UPDATE reactor_effects SET done_at = now(), effect = $3
             WHERE reactor = $1 AND event_id = $2",
        )
        .bind(CONSUMER)
        .bind(event_id)
        .bind(effect)
        .execute(&self.pool)
        .await?;
        info!(effect, "reaction recorded");
        Ok(())
    }

    /// Commits a token derived from the event, then returns the mail with its link;
    /// `None` when the user needs none (verified meanwhile, or no such user).
    async fn verification(
        &self,
        bus: &CommandBus,
        record: &EventRecord,
        event_id: &str,
    ) -> Result<Option<KindOfMail>, ReactError> {
        let user_id: Uuid = record
            .aggregate_id
            .parse()
            .map_err(|_| ReactError::Transient("a user id that is not a UUID".into()))?;
        let email = match record.decode::<UserEvent>() {
            Ok(UserEvent::UserSignedUp { email, .. })
            | Ok(UserEvent::VerificationRequested { email }) => email,
            _ => {
                return Err(ReactError::Transient(
                    "not a user event with an address".into(),
                ))
            }
        };
        let token = VerificationToken::derive(&self.settings.token_key, user_id, event_id);
        let ttl = time::Duration::try_from(self.settings.verification_ttl)
            .unwrap_or(time::Duration::days(1));
        let command = Command::IssueVerification {
            user_id,
            token_hash: token.hash(),
            expires_at: time::OffsetDateTime::now_utc() + ttl,
        };
        if !self.issue(bus, record, event_id, command).await? {
            return Ok(None);
        }
        let link = format!(
            "{}/?verify={}",
            self.settings.public_base_url,
            token.as_str()
        );
        Ok(Some(KindOfMail {
            kind: "verification",
            mail: Mail {
                message_id: message_id(event_id),
                to: email,
                subject: "Confirm your email address for Jukebox".into(),
                body: format!(
                    "Hello,\n\nconfirm your address by opening this link within {} hours:\n\n\
                     {link}\n\nIf you did not sign up for Jukebox, ignore this message.\n",
                    self.settings.verification_ttl.as_secs() / 3600
                ),
            },
        }))
    }

    fn already_registered(&self, record: &EventRecord, event_id: &str) -> Option<KindOfMail> {
        // The event carries the address, opened with the owner's key (ADR 43); before it,
        // the claim's id was the address. Neither (the owner was erased): no one to mail.
        let sealed = record.payload["SignUpAttempted"]["email"].as_str();
        let Some(to) = [sealed, Some(record.aggregate_id.as_str())]
            .into_iter()
            .flatten()
            .find_map(|address| Email::parse(address).ok())
        else {
            info!("the address reads as erased; nothing to send");
            return None;
        };
        Some(KindOfMail {
            kind: "already_registered",
            mail: Mail {
                message_id: message_id(event_id),
                to,
                subject: "Someone tried to sign up to Jukebox with your address".into(),
                body: format!(
                    "Hello,\n\nsomeone (perhaps you) tried to create a Jukebox account with \
                     this address, but it already has one. Sign in at {}/ instead.\n\n\
                     If it was not you, you can ignore this message.\n",
                    self.settings.public_base_url
                ),
            },
        })
    }

    /// Commits a token's hash with `command`, whose id is derived from the event, so a
    /// redelivery is answered from the stored outcome. `false`: refused (no mail).
    async fn issue(
        &self,
        bus: &CommandBus,
        record: &EventRecord,
        event_id: &str,
        command: Command,
    ) -> Result<bool, ReactError> {
        let envelope = CommandEnvelope {
            command_id: issue_command_id(event_id),
            correlation_id: record
                .metadata_str("correlation_id")
                .and_then(|c| c.parse().ok())
                .unwrap_or_else(Uuid::now_v7),
            issued_by: None,
            issued_at: time::OffsetDateTime::now_utc(),
            command,
        };
        let outcome = self.send(bus, &envelope).await?;
        if outcome.status == OutcomeStatus::Rejected {
            let code = outcome.error.map_or("none", |e| e.code.as_str());
            info!(%code, "no mail: the token was refused");
            return Ok(false);
        }
        Ok(true)
    }

    /// The command's stored outcome, else sends it and waits (a redelivery's copy is a
    /// duplicate JetStream drops, so it would get no answer).
    async fn send(
        &self,
        bus: &CommandBus,
        envelope: &CommandEnvelope,
    ) -> Result<CommandOutcome, ReactError> {
        if let Some(outcome) = stored_outcome(&self.pool, envelope.command_id).await? {
            return Ok(outcome);
        }
        let answer = bus
            .send(envelope, self.command_wait)
            .await
            .map_err(|e| ReactError::Transient(e.to_string()))?;
        match answer {
            Some(outcome) => Ok(outcome),
            None => stored_outcome(&self.pool, envelope.command_id)
                .await?
                .ok_or_else(|| ReactError::Transient("the command was not answered".into())),
        }
    }
}

struct KindOfMail {
    kind: &'static str,
    mail: Mail,
}

/// `<aggregate_type>:<aggregate_id>:<sequence>`, the event's identity (and its
/// `Nats-Msg-Id`).
pub fn event_id(record: &EventRecord) -> String {
    format!(
        "{}:{}:{}",
        record.aggregate_type, record.aggregate_id, record.sequence
    )
}

fn message_id(event_id: &str) -> String {
    let id = Uuid::new_v5(
        &Uuid::NAMESPACE_OID,
        format!("jukebox:{CONSUMER}:mail:{event_id}").as_bytes(),
    );
    format!("<{}@jukebox>", id.simple())
}

async fn stored_outcome(
    pool: &PgPool,
    command_id: Uuid,
) -> Result<Option<CommandOutcome>, sqlx::Error> {
    let row: Option<(sqlx::types::Json<CommandOutcome>,)> =
        sqlx::query_as("SELECT outcome FROM command_outcomes WHERE command_id = $1")
            .bind(command_id)
            .fetch_optional(pool)
            .await?;
    Ok(row.map(|(outcome,)| outcome.0))
}

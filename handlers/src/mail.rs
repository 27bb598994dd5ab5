//! Outgoing mail, sent by the mail reactor (`reactor.rs`). SMTP through lettre when
//! `SMTP_URL` is set; otherwise (dev) the message is written to the log.

use async_trait::async_trait;
use jukebox_domain::Email;
use lettre::message::header::ContentType;
use lettre::message::Mailbox;
use lettre::{AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};

#[derive(Debug, Clone)]
pub struct Mail {
    /// The `Message-ID`, derived from the event the mail answers: a copy sent again after
    /// a crash mid-send carries the same id, which receiving servers and clients dedupe.
    pub message_id: String,
    pub to: Email,
    pub subject: String,
    pub body: String,
}

#[async_trait]
pub trait Mailer: Send + Sync {
    async fn send(&self, mail: Mail) -> anyhow::Result<()>;
}

pub struct SmtpMailer {
    transport: AsyncSmtpTransport<Tokio1Executor>,
    from: Mailbox,
}

impl SmtpMailer {
    /// `smtp://[user:pass@]host:port[?tls=required|opportunistic]` or `smtps://...`.
    pub fn new(url: &str, from: &str) -> anyhow::Result<Self> {
        let transport = AsyncSmtpTransport::<Tokio1Executor>::from_url(url)
            .map_err(|e| anyhow::anyhow!("SMTP_URL is not usable: {e}"))?
            .timeout(Some(std::time::Duration::from_secs(10)))
            .build();
        let from = from
            .parse()
            .map_err(|e| anyhow::anyhow!("MAIL_FROM={from:?} is not a mailbox: {e}"))?;
        Ok(Self { transport, from })
    }
}

#[async_trait]
impl Mailer for SmtpMailer {
    async fn send(&self, mail: Mail) -> anyhow::Result<()> {
        let message = Message::builder()
            .message_id(Some(mail.message_id))
            .from(self.from.clone())
            .to(mail.to.as_str().parse()?)
            .subject(mail.subject)
            .header(ContentType::TEXT_PLAIN)
            .body(mail.body)?;
        self.transport
            .send(message)
            .await
            .map_err(|e| anyhow::anyhow!("SMTP delivery failed: {e}"))?;
        Ok(())
    }
}

/// Dev only (no `SMTP_URL`): writes the message, link included, to the log.
pub struct LogMailer;

#[async_trait]
impl Mailer for LogMailer {
    async fn send(&self, mail: Mail) -> anyhow::Result<()> {
        tracing::info!(
            message_id = %mail.message_id,
            to = %mail.to,
            subject = %mail.subject,
            body = %mail.body,
            "mail not sent (no SMTP_URL; dev only)"
        );
        Ok(())
    }
}

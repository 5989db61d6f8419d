//! The embedded mode's mailer: each email becomes an `.eml` file in a folder (open it with any
//! mail client), and its first link is logged.

use std::path::PathBuf;

use async_trait::async_trait;

use oes_domain::email::OutgoingEmail;
use oes_domain::ports::{MailError, Mailer};

/// Writes emails to a folder.
#[derive(Debug, Clone)]
pub struct OutboxMailer {
    dir: PathBuf,
    from: String,
}

impl OutboxMailer {
    /// Writes into `dir` (created on first send), as sender `from`.
    pub fn new(dir: impl Into<PathBuf>, from: impl Into<String>) -> Self {
        Self {
            dir: dir.into(),
            from: from.into(),
        }
    }
}

/// A multipart/alternative message with text and HTML parts, 8-bit UTF-8.
fn to_eml(from: &str, id: &str, email: &OutgoingEmail) -> String {
    let boundary = format!("oes-{id}");
    format!(
        "From: {from}\r\nTo: {to}\r\nSubject: {subject}\r\nMessage-ID: <{id}@oes.local>\r\n\
         MIME-Version: 1.0\r\nContent-Type: multipart/alternative; boundary=\"{boundary}\"\r\n\r\n\
         --{boundary}\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: 8bit\r\n\r\n{text}\r\n\
         --{boundary}\r\nContent-Type: text/html; charset=utf-8\r\nContent-Transfer-Encoding: 8bit\r\n\r\n{html}\r\n\
         --{boundary}--\r\n",
        to = email.to,
        subject = email.subject,
        text = email.text,
        html = email.html,
    )
}

#[async_trait]
impl Mailer for OutboxMailer {
    async fn send(&self, email: &OutgoingEmail) -> Result<String, MailError> {
        let id = uuid::Uuid::new_v4().to_string();
        tokio::fs::create_dir_all(&self.dir)
            .await
            .map_err(|e| MailError::Transient(format!("creating the outbox: {e}")))?;
        let path = self.dir.join(format!("{id}.eml"));
        tokio::fs::write(&path, to_eml(&self.from, &id, email))
            .await
            .map_err(|e| MailError::Transient(format!("writing {}: {e}", path.display())))?;
        let link = email
            .text
            .split_whitespace()
            .find(|word| word.starts_with("http://") || word.starts_with("https://"))
            .unwrap_or("");
        tracing::info!(to = %email.to, subject = %email.subject, file = %path.display(), link, "email written to the outbox");
        Ok(id)
    }
}

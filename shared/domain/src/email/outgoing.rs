//! A rendered email, as the mailer sends it.

use crate::user::Email;

/// A rendered email, ready to send. `Debug` shows its recipient and subject, not its parts:
/// they may hold a one-time link.
#[derive(Clone, PartialEq, Eq)]
pub struct OutgoingEmail {
    /// Recipient.
    pub to: Email,
    /// Subject line.
    pub subject: String,
    /// Plain-text part.
    pub text: String,
    /// HTML part.
    pub html: String,
}

impl std::fmt::Debug for OutgoingEmail {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OutgoingEmail")
            .field("to", &self.to)
            .field("subject", &self.subject)
            .field("text", &format_args!("[{} bytes]", self.text.len()))
            .field("html", &format_args!("[{} bytes]", self.html.len()))
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn its_debug_shows_no_part_of_the_message() {
        let email = OutgoingEmail {
            to: Email::parse("ada@example.com").expect("valid"),
            subject: "Confirm".into(),
            text: "https://x.test/auth/verify-email?token=s3cr3t".into(),
            html: "<a href=\"https://x.test/auth/verify-email?token=s3cr3t\">".into(),
        };
        let printed = format!("{email:?}");
        assert!(!printed.contains("s3cr3t"), "{printed}");
        assert!(printed.contains("ada@example.com"), "{printed}");
    }
}

//! Turns a job into subject, text and HTML. User-supplied values are escaped in the HTML part;
//! links are built from the configured public base URL.

use super::OutgoingEmail;
use super::{EmailJob, EmailTemplate};

/// Renders jobs into emails.
#[derive(Debug, Clone)]
pub struct Renderer {
    base_url: String,
}

/// The pieces every email is made of.
struct Parts {
    name: Option<String>,
    paragraphs: Vec<String>,
    action: Option<(&'static str, String)>,
    code: Option<String>,
    footer: Option<&'static str>,
}

impl Renderer {
    /// `base_url` is where links point (the API's or the web app's public URL), without a
    /// trailing slash.
    pub fn new(base_url: &str) -> Self {
        Self {
            base_url: base_url.trim_end_matches('/').to_owned(),
        }
    }

    /// Renders `job`.
    pub fn render(&self, job: &EmailJob) -> OutgoingEmail {
        // A message to an address its account has not proven yet (a sign-up's, an email
        // change's new one) greets no one by name: the name is whatever whoever typed the address
        // chose, and the message goes from our address to a mailbox that may not be theirs.
        let token_email =
            |name: Option<&str>, intro: &str, action, path, token: &str, validity| Parts {
                name: name.map(str::to_owned),
                paragraphs: vec![intro.to_owned()],
                action: Some((action, self.link(path, "token", token))),
                code: Some(token.to_owned()),
                footer: Some(validity),
            };
        let parts = match &job.template {
            EmailTemplate::Verification {
                name: _,
                token,
                choose_password,
            } => token_email(
                None,
                if *choose_password {
                    "This address was used to sign up more than once before it was confirmed. \
                     We cannot tell which sign-up was yours, so we kept no password from any of \
                     them. Please confirm your email address to activate your account, then \
                     choose your password: ask to reset it (\"Forgot your password?\") and \
                     follow the link we send. If you did not sign up, ignore this email."
                } else {
                    "Welcome! Please confirm your email address to activate your account. If \
                     you did not sign up, ignore this email: someone typed your address, and \
                     whoever chose the account's password would sign in with it once confirmed."
                },
                "Confirm my email address",
                "/auth/verify-email",
                token.expose(),
                "This link expires in 24 hours.",
            ),
            EmailTemplate::PasswordReset { name, token } => token_email(
                Some(name),
                "Someone asked to reset the password of your account. If it was not you, ignore \
                 this email: your password stays as it is.",
                "Choose a new password",
                "/reset-password",
                token.expose(),
                "This link expires in 1 hour and works once.",
            ),
            EmailTemplate::EmailChange { name: _, token } => token_email(
                None,
                "Please confirm this address to make it the new email address of your account. \
                 If you did not ask for this, ignore this email: the account stays where it is.",
                "Confirm my new address",
                "/auth/verify-email",
                token.expose(),
                "This link expires in 24 hours.",
            ),
            EmailTemplate::AccountExists { name } => Parts {
                name: Some(name.clone()),
                paragraphs: vec![
                    "Someone tried to create an account with this email address, which already \
                     has one."
                        .to_owned(),
                    "If it was you, sign in with your password; if you have forgotten it, you \
                     can reset it. If it was not you, ignore this email: your account has not \
                     changed."
                        .to_owned(),
                ],
                action: Some((
                    "Reset my password",
                    format!("{}/reset-password", self.base_url),
                )),
                code: None,
                footer: None,
            },
            EmailTemplate::ExamResult {
                name,
                exam_title,
                score_percent,
                passed,
                attempt_id,
            } => Parts {
                name: Some(name.clone()),
                paragraphs: vec![format!(
                    "Your attempt at \"{exam_title}\" has been graded: {score_percent}% — {}.",
                    if *passed { "passed" } else { "not passed" }
                )],
                action: Some((
                    "See my result",
                    format!("{}/attempts/{}", self.base_url, percent_encode(attempt_id)),
                )),
                code: None,
                footer: None,
            },
            EmailTemplate::Generic { text, .. } => Parts {
                name: None,
                paragraphs: text.split("\n\n").map(str::to_owned).collect(),
                action: None,
                code: None,
                footer: None,
            },
        };
        OutgoingEmail {
            to: job.to.clone(),
            subject: job.template.subject(),
            text: text_part(&parts),
            html: html_part(&parts),
        }
    }

    fn link(&self, path: &str, parameter: &str, value: &str) -> String {
        format!(
            "{}{path}?{parameter}={}",
            self.base_url,
            percent_encode(value)
        )
    }
}

fn text_part(parts: &Parts) -> String {
    let mut text = String::new();
    if let Some(name) = &parts.name {
        text.push_str(&format!("Hello {name},\n\n"));
    }
    for paragraph in &parts.paragraphs {
        text.push_str(paragraph);
        text.push_str("\n\n");
    }
    if let Some((label, link)) = &parts.action {
        text.push_str(&format!("{label}: {link}\n\n"));
    }
    if let Some(code) = &parts.code {
        text.push_str(&format!("Or use this code: {code}\n\n"));
    }
    if let Some(footer) = parts.footer {
        text.push_str(footer);
        text.push('\n');
    }
    text
}

fn html_part(parts: &Parts) -> String {
    let mut html = String::from("<!doctype html>\n<html><body style=\"font-family:sans-serif\">\n");
    if let Some(name) = &parts.name {
        html.push_str(&format!("<p>Hello {},</p>\n", escape_html(name)));
    }
    for paragraph in &parts.paragraphs {
        html.push_str(&format!("<p>{}</p>\n", escape_html(paragraph)));
    }
    if let Some((label, link)) = &parts.action {
        html.push_str(&format!(
            "<p><a href=\"{}\">{}</a></p>\n",
            escape_html(link),
            escape_html(label)
        ));
    }
    if let Some(code) = &parts.code {
        html.push_str(&format!(
            "<p>Or use this code: <code>{}</code></p>\n",
            escape_html(code)
        ));
    }
    if let Some(footer) = parts.footer {
        html.push_str(&format!("<p>{}</p>\n", escape_html(footer)));
    }
    html.push_str("</body></html>\n");
    html
}

/// Escapes text for HTML element content and attribute values.
pub fn escape_html(raw: &str) -> String {
    let mut out = String::with_capacity(raw.len());
    for c in raw.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            _ => out.push(c),
        }
    }
    out
}

/// Percent-encodes everything but RFC 3986 unreserved characters.
fn percent_encode(raw: &str) -> String {
    let mut out = String::with_capacity(raw.len());
    for b in raw.bytes() {
        if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::security::Secret;
    use crate::user::Email;

    fn verification(name: &str, token: &str) -> EmailJob {
        EmailJob::new(
            Email::parse("ada@example.com").expect("valid"),
            EmailTemplate::Verification {
                name: name.into(),
                token: Secret::new(token),
                choose_password: false,
            },
            0,
        )
    }

    /// An email-change link for `name`'s account (token `t`).
    fn email_change(name: &str) -> EmailJob {
        EmailJob::new(
            Email::parse("ada@example.com").expect("valid"),
            EmailTemplate::EmailChange {
                name: name.into(),
                token: Secret::new("t"),
            },
            0,
        )
    }

    #[test]
    fn verification_links_point_at_the_configured_base_url() {
        let email =
            Renderer::new("https://exams.example.org/").render(&verification("Ada", "abc_-1"));
        let link = "https://exams.example.org/auth/verify-email?token=abc_-1";
        assert!(email.text.contains(link), "{}", email.text);
        assert!(
            email.html.contains(&format!("href=\"{link}\"")),
            "{}",
            email.html
        );
        assert_eq!(email.to.as_str(), "ada@example.com");
    }

    /// Anyone can sign up with anyone's address, or move their account to it, and choose the
    /// name: a greeting by that name put their text ("your account is locked, call …") in a
    /// message from our address to a stranger's mailbox.
    #[test]
    fn a_message_to_an_unproven_address_carries_no_name_its_sender_chose() {
        let name = "Your account is locked, see https://evil.example";
        for job in [verification(name, "t"), email_change(name)] {
            let email = Renderer::new("http://x").render(&job);
            assert!(!email.text.contains("evil") && !email.html.contains("evil"));
            assert!(!email.text.contains("Hello"), "{}", email.text);
        }
    }

    /// The verification email of an address signed up again before it was verified says that
    /// no password was kept and how to choose one, with the same confirmation link.
    #[test]
    fn a_verification_after_a_second_sign_up_says_to_choose_a_password() {
        let mut job = verification("Ada", "t0k");
        let plain = Renderer::new("http://x").render(&job);
        if let EmailTemplate::Verification {
            choose_password, ..
        } = &mut job.template
        {
            *choose_password = true;
        }
        let second = Renderer::new("http://x").render(&job);
        assert!(
            !plain.text.contains("Forgot your password"),
            "{}",
            plain.text
        );
        assert!(second.text.contains("kept no password"), "{}", second.text);
        assert!(
            second.text.contains("Forgot your password"),
            "{}",
            second.text
        );
        assert!(
            second.text.contains("/auth/verify-email?token=t0k"),
            "{}",
            second.text
        );
        assert!(!second.text.contains("Hello"), "{}", second.text);
    }

    /// Anyone can sign up with anyone's address and choose the password; an owner who
    /// confirmed such a sign-up would give its author an account at their address. Each link
    /// to an unproven address says to leave it alone if its reader did not ask for it.
    #[test]
    fn a_link_to_an_unproven_address_says_to_ignore_it_if_not_asked_for() {
        for (job, asked) in [
            (verification("Ada", "t"), "If you did not sign up"),
            (email_change("Ada"), "If you did not ask"),
        ] {
            let email = Renderer::new("http://x").render(&job);
            assert!(email.text.contains(asked), "{}", email.text);
            assert!(email.text.contains("ignore this email"), "{}", email.text);
        }
    }

    #[test]
    fn user_supplied_values_are_escaped_in_html() {
        let reset = EmailJob::new(
            Email::parse("ada@example.com").expect("valid"),
            EmailTemplate::PasswordReset {
                name: "<script>alert('x')</script>".into(),
                token: Secret::new("t"),
            },
            0,
        );
        let email = Renderer::new("http://x").render(&reset);
        assert!(!email.html.contains("<script>"));
        assert!(
            email
                .html
                .contains("&lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt;")
        );
    }

    #[test]
    fn odd_tokens_are_percent_encoded_in_links() {
        let email = Renderer::new("http://x").render(&verification("Ada", "a b&c"));
        assert!(email.text.contains("token=a%20b%26c"));
    }

    #[test]
    fn notifications_escape_their_text_and_keep_the_subject_on_one_line() {
        let job = EmailJob::new(
            Email::parse("ada@example.com").expect("valid"),
            EmailTemplate::Generic {
                subject: "Hi\r\nBcc: someone@example.com".into(),
                text: "<b>first</b>\n\nsecond".into(),
            },
            0,
        );
        let email = Renderer::new("http://x").render(&job);
        assert!(!email.subject.contains('\n') && !email.subject.contains('\r'));
        assert!(
            email.html.contains("<p>&lt;b&gt;first&lt;/b&gt;</p>"),
            "{}",
            email.html
        );
        assert!(email.html.contains("<p>second</p>"));
        assert!(email.text.starts_with("<b>first</b>\n\nsecond"));
    }

    #[test]
    fn the_notice_of_a_sign_up_for_a_taken_address_points_at_the_reset_page_with_no_token() {
        let job = EmailJob::new(
            Email::parse("ada@example.com").expect("valid"),
            EmailTemplate::AccountExists {
                name: "Ada <Lovelace>".into(),
            },
            0,
        );
        assert_eq!(job.lane(), crate::email::Lane::Priority);
        let email = Renderer::new("https://exams.example.org/").render(&job);
        assert_eq!(
            email.subject,
            "Someone tried to sign up with your email address"
        );
        assert!(
            email.text.starts_with("Hello Ada <Lovelace>,"),
            "{}",
            email.text
        );
        assert!(
            email.text.contains("If it was you, sign in"),
            "{}",
            email.text
        );
        let link = "https://exams.example.org/reset-password";
        assert!(
            email.text.contains(&format!("Reset my password: {link}\n")),
            "{}",
            email.text
        );
        assert!(
            email.html.contains(&format!("href=\"{link}\"")),
            "{}",
            email.html
        );
        assert!(
            email.html.contains("Ada &lt;Lovelace&gt;"),
            "{}",
            email.html
        );
        assert!(!email.text.contains("token") && !email.text.contains("code"));
    }

    #[test]
    fn exam_results_say_the_score_and_link_to_the_attempt() {
        let job = EmailJob::new(
            Email::parse("ada@example.com").expect("valid"),
            EmailTemplate::ExamResult {
                name: "Ada".into(),
                exam_title: "Analytical <Engines>".into(),
                score_percent: 85,
                passed: true,
                attempt_id: "a-1".into(),
            },
            0,
        );
        let email = Renderer::new("https://exams.example.org").render(&job);
        assert_eq!(email.subject, "Your result for Analytical <Engines>");
        assert!(email.text.contains("85% — passed"));
        assert!(
            email
                .text
                .contains("https://exams.example.org/attempts/a-1")
        );
        assert!(email.html.contains("Analytical &lt;Engines&gt;"));
    }
}

//! The contract of `Mailer`, run against both implementations: what is sent arrives, to its
//! recipient, with its subject and both parts intact (non-ASCII included), under the message id
//! the send returned; and the SES-only behaviour of SES v2 (an unverified sender is refused).
//!
//! - [`Inbox`] reads back what a mailer delivered: the `.eml` files of the outbox folder, or the
//!   messages the emulator accepted (`ses` → `Message` in moto's `/moto-api/data.json`, shared
//!   by every test running at the same time, so always filtered by a recipient of the test's
//!   own).
//! - One async body per property, taking `(&dyn Mailer, &Inbox)`.
//! - [`contract!`] turns each body into two tests: `outbox::<body>` over `OutboxMailer` in a
//!   fresh folder and `on_ses::<body>` over `SesMailer` against SES v2 in the emulator.
//! - `ses_only::<test>`: what only SES does.
//!
//! moto keeps only the HTML part of a message that has both (its `sesv2` `SendEmail` stores
//! `Html` if present, else `Text`), so the SES inbox reads the text part from the requests the
//! mailer sent ([`SentRequests`], an SDK interceptor on its client): what SES was asked to send,
//! matched to moto's message by recipient and subject.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use oes_adapters::outbox::OutboxMailer;
use oes_adapters::ses::SesMailer;
use oes_domain::email::{EmailJob, EmailTemplate, OutgoingEmail, Renderer};
use oes_domain::ports::{MailError, Mailer};
use oes_domain::user::Email;
use oes_tests::{TestEnv, ses_messages_to, unique_prefix};

macro_rules! contract {
    ($($body:ident),* $(,)?) => {
        mod outbox {
            use super::*;
            $(
                #[tokio::test]
                async fn $body() {
                    let dir = std::env::temp_dir().join(unique_prefix("oes-outbox"));
                    let mailer = OutboxMailer::new(&dir, SENDER);
                    let inbox = Inbox::Outbox {
                        dir: dir.clone(),
                        sender: SENDER.into(),
                    };
                    super::$body(&mailer, &inbox).await;
                    let _ = std::fs::remove_dir_all(&dir);
                }
            )*
        }

        mod on_ses {
            use super::*;
            $(
                #[tokio::test]
                async fn $body() {
                    let env = TestEnv::spawn().await;
                    let sender = env.provisioned.sender_email.clone();
                    let requests = SentRequests::default();
                    let client = aws_sdk_sesv2::Client::from_conf(
                        env.clients
                            .ses()
                            .config()
                            .to_builder()
                            .interceptor(requests.clone())
                            .build(),
                    );
                    let mailer = SesMailer::new(client, &sender);
                    let inbox = Inbox::Ses {
                        endpoint: env.endpoints.aws.clone(),
                        sender,
                        requests,
                    };
                    super::$body(&mailer, &inbox).await;
                }
            )*
        }
    };
}

contract!(
    what_is_sent_arrives_with_its_recipient_subject_and_both_parts_intact,
    a_rendered_template_arrives_as_it_was_rendered,
    two_sends_give_two_messages_with_distinct_ids,
    each_recipient_receives_only_its_own_messages,
);

/// The outbox's sender (SES sends from the identity `TestEnv` verified).
const SENDER: &str = "noreply@example.com";

// ---- the inbox ----------------------------------------------------------------------------

/// One delivered message, as an inbox shows it.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
struct Delivered {
    /// The message id (the outbox's `Message-ID`, SES's `MessageId`).
    id: String,
    from: String,
    to: Vec<String>,
    subject: String,
    /// The text part (`None` if the message had none).
    text: Option<String>,
    html: String,
}

/// Where a mailer's messages can be read back.
enum Inbox {
    /// The folder of an `OutboxMailer` sending as `sender`.
    Outbox { dir: PathBuf, sender: String },
    /// The emulator at `endpoint`, the mailer sending as `sender` through a client whose
    /// requests `requests` keeps.
    Ses {
        endpoint: String,
        sender: String,
        requests: SentRequests,
    },
}

/// The bodies of the requests an SES client sent (an interceptor on it), as JSON.
#[derive(Debug, Clone, Default)]
struct SentRequests(std::sync::Arc<std::sync::Mutex<Vec<serde_json::Value>>>);

impl aws_sdk_sesv2::config::Intercept for SentRequests {
    fn name(&self) -> &'static str {
        "SentRequests"
    }

    fn read_before_transmit(
        &self,
        context: &aws_sdk_sesv2::config::interceptors::BeforeTransmitInterceptorContextRef<'_>,
        _runtime_components: &aws_sdk_sesv2::config::RuntimeComponents,
        _cfg: &mut aws_sdk_sesv2::config::ConfigBag,
    ) -> Result<(), aws_smithy_runtime_api::box_error::BoxError> {
        let body = context.request().body().bytes().unwrap_or_default();
        if let Ok(json) = serde_json::from_slice(body) {
            self.0.lock().expect("not poisoned").push(json);
        }
        Ok(())
    }
}

impl SentRequests {
    /// The text part SES was asked to send to `to` under `subject`: the last such request's.
    fn text_part(&self, to: &str, subject: &str) -> Option<String> {
        let sent = self.0.lock().expect("not poisoned");
        sent.iter()
            .rev()
            .find(|r| {
                r["Destination"]["ToAddresses"]
                    .as_array()
                    .is_some_and(|a| a.iter().any(|v| v == to))
                    && r["Content"]["Simple"]["Subject"]["Data"] == subject
            })
            .and_then(|r| r["Content"]["Simple"]["Body"]["Text"]["Data"].as_str())
            .map(str::to_owned)
    }
}

impl Inbox {
    /// Every message delivered to `to`, sorted by id.
    async fn delivered_to(&self, to: &Email) -> Vec<Delivered> {
        let mut found: Vec<Delivered> = match self {
            Self::Outbox { dir, .. } => outbox_messages(dir)
                .into_iter()
                .filter(|m| m.to.iter().any(|a| a == to.as_str()))
                .collect(),
            Self::Ses {
                endpoint, requests, ..
            } => ses_messages_to(endpoint, to.as_str())
                .await
                .iter()
                .map(|m| {
                    let text = |v: &serde_json::Value| {
                        v.as_str()
                            .unwrap_or_else(|| panic!("not a string in {m}"))
                            .to_owned()
                    };
                    Delivered {
                        id: text(&m["id"]),
                        from: text(&m["source"]),
                        to: m["destinations"]["ToAddresses"]
                            .as_array()
                            .unwrap_or_else(|| panic!("no ToAddresses in {m}"))
                            .iter()
                            .map(text)
                            .collect(),
                        subject: text(&m["subject"]),
                        text: requests.text_part(to.as_str(), &text(&m["subject"])),
                        html: text(&m["body"]),
                    }
                })
                .collect(),
        };
        found.sort();
        found
    }

    /// What this inbox shows of `email` delivered as message `id`.
    fn shows(&self, id: &str, email: &OutgoingEmail) -> Delivered {
        let (Self::Outbox { sender, .. } | Self::Ses { sender, .. }) = self;
        Delivered {
            id: id.to_owned(),
            from: sender.clone(),
            to: vec![email.to.as_str().to_owned()],
            subject: email.subject.clone(),
            text: Some(email.text.clone()),
            html: email.html.clone(),
        }
    }
}

/// Every `.eml` file in `dir` (none if the folder was never created).
fn outbox_messages(dir: &Path) -> Vec<Delivered> {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    entries
        .map(|entry| entry.expect("a folder entry").path())
        .filter(|path| path.extension().is_some_and(|e| e == "eml"))
        .map(|path| {
            let eml = std::fs::read_to_string(&path)
                .unwrap_or_else(|e| panic!("{}: {e}", path.display()));
            let message = parse_eml(&eml);
            let stem = path.file_stem().and_then(|s| s.to_str()).unwrap_or("");
            assert_eq!(message.id, stem, "the file is named after its message id");
            message
        })
        .collect()
}

/// Headers (name → value) and body of one MIME entity; lines end with CRLF.
fn split_entity(entity: &str) -> (BTreeMap<String, String>, &str) {
    let (head, body) = entity
        .split_once("\r\n\r\n")
        .unwrap_or_else(|| panic!("no blank line after the headers: {entity:?}"));
    let headers = head
        .split("\r\n")
        .map(|line| {
            let (name, value) = line
                .split_once(": ")
                .unwrap_or_else(|| panic!("not a header line: {line:?}"));
            (name.to_ascii_lowercase(), value.to_owned())
        })
        .collect();
    (headers, body)
}

/// A multipart/alternative message with 8-bit text and HTML parts, as a mail client reads it.
fn parse_eml(eml: &str) -> Delivered {
    let (headers, body) = split_entity(eml);
    let header = |name: &str| {
        headers
            .get(name)
            .unwrap_or_else(|| panic!("no {name} header in {eml:?}"))
            .clone()
    };
    assert_eq!(header("mime-version"), "1.0");
    let content_type = header("content-type");
    let boundary = content_type
        .strip_prefix("multipart/alternative; boundary=\"")
        .and_then(|rest| rest.strip_suffix('"'))
        .unwrap_or_else(|| panic!("not multipart/alternative: {content_type}"));
    let delimiter = format!("\r\n--{boundary}");
    // The body starts with the first delimiter line (no preamble).
    let body = format!("\r\n{body}");
    let mut pieces = body.split(&delimiter);
    assert_eq!(pieces.next(), Some(""), "no preamble");
    let mut parts = BTreeMap::new();
    for piece in pieces {
        if piece == "--\r\n" {
            break;
        }
        let entity = piece
            .strip_prefix("\r\n")
            .unwrap_or_else(|| panic!("a delimiter line is followed by CRLF: {piece:?}"));
        let (part_headers, content) = split_entity(entity);
        assert_eq!(
            part_headers
                .get("content-transfer-encoding")
                .map(String::as_str),
            Some("8bit"),
            "{part_headers:?}"
        );
        let kind = part_headers
            .get("content-type")
            .and_then(|t| t.strip_suffix("; charset=utf-8"))
            .unwrap_or_else(|| panic!("a UTF-8 part: {part_headers:?}"))
            .to_owned();
        assert!(
            parts.insert(kind, content.to_owned()).is_none(),
            "one part of each type"
        );
    }
    let mut part = |kind: &str| {
        parts
            .remove(kind)
            .unwrap_or_else(|| panic!("no {kind} part"))
    };
    let delivered = Delivered {
        id: header("message-id")
            .strip_prefix('<')
            .and_then(|id| id.strip_suffix("@oes.local>"))
            .unwrap_or_else(|| panic!("a Message-ID: {eml:?}"))
            .to_owned(),
        from: header("from"),
        to: vec![header("to")],
        subject: header("subject"),
        text: Some(part("text/plain")),
        html: part("text/html"),
    };
    assert!(parts.is_empty(), "no other parts: {parts:?}");
    delivered
}

// ---- helpers ------------------------------------------------------------------------------

/// An address no other test sends to.
fn recipient(name: &str) -> Email {
    Email::parse(&format!("{}@example.com", unique_prefix(name))).expect("valid")
}

fn email(to: &Email, subject: &str) -> OutgoingEmail {
    OutgoingEmail {
        to: to.clone(),
        subject: subject.into(),
        text: "Hello,\n\nthis is a notice.\n".into(),
        html: "<p>Hello,</p><p>this is a notice.</p>".into(),
    }
}

async fn send(mailer: &dyn Mailer, email: &OutgoingEmail) -> String {
    let id = mailer.send(email).await.expect("sent");
    assert!(!id.is_empty(), "a message id");
    id
}

// ---- bodies -------------------------------------------------------------------------------

async fn what_is_sent_arrives_with_its_recipient_subject_and_both_parts_intact(
    mailer: &dyn Mailer,
    inbox: &Inbox,
) {
    let to = recipient("ines");
    let sent = OutgoingEmail {
        to: to.clone(),
        subject: "Résultat — 100 %".into(),
        text: "Bonjour Inès,\n\nVotre résultat : 100 % — réussi ✓\n\
               https://exams.example.org/attempts/1\n"
            .into(),
        html: "<!doctype html>\n<p>Bonjour Inès,</p>\n\
               <p>Votre résultat&nbsp;: <b>100&nbsp;%</b> — réussi ✓</p>\n"
            .into(),
    };
    let id = send(mailer, &sent).await;
    assert_eq!(inbox.delivered_to(&to).await, vec![inbox.shows(&id, &sent)]);
}

async fn a_rendered_template_arrives_as_it_was_rendered(mailer: &dyn Mailer, inbox: &Inbox) {
    let to = recipient("result");
    let job = EmailJob::new(
        to.clone(),
        EmailTemplate::ExamResult {
            name: "Zoë <Ada> & co".into(),
            exam_title: "Rust — les bases".into(),
            score_percent: 100,
            passed: true,
            attempt_id: "a-1".into(),
        },
        0,
    );
    let rendered = Renderer::new("https://exams.example.org").render(&job);
    let id = send(mailer, &rendered).await;
    assert_eq!(
        inbox.delivered_to(&to).await,
        vec![inbox.shows(&id, &rendered)]
    );
}

async fn two_sends_give_two_messages_with_distinct_ids(mailer: &dyn Mailer, inbox: &Inbox) {
    let to = recipient("twice");
    let sent = email(&to, "Twice");
    let first = send(mailer, &sent).await;
    let second = send(mailer, &sent).await;
    assert_ne!(first, second, "each send is its own message");
    let mut expected = vec![inbox.shows(&first, &sent), inbox.shows(&second, &sent)];
    expected.sort();
    assert_eq!(inbox.delivered_to(&to).await, expected);
}

async fn each_recipient_receives_only_its_own_messages(mailer: &dyn Mailer, inbox: &Inbox) {
    let ada = recipient("ada");
    let grace = recipient("grace");
    let to_ada = email(&ada, "For Ada");
    let to_grace = email(&grace, "For Grace");
    let ada_id = send(mailer, &to_ada).await;
    let grace_id = send(mailer, &to_grace).await;
    assert_eq!(
        inbox.delivered_to(&ada).await,
        vec![inbox.shows(&ada_id, &to_ada)]
    );
    assert_eq!(
        inbox.delivered_to(&grace).await,
        vec![inbox.shows(&grace_id, &to_grace)]
    );
    let ids: BTreeSet<_> = [ada_id, grace_id].into_iter().collect();
    assert_eq!(ids.len(), 2);
}

// ---- SES only -----------------------------------------------------------------------------

mod ses_only {
    use super::*;

    #[tokio::test]
    async fn ses_refuses_a_sender_it_has_not_verified_for_good() {
        let env = TestEnv::spawn().await;
        let mailer = SesMailer::new(env.clients.ses(), "nobody@unverified.example");
        let to = recipient("refused");
        let refused = mailer.send(&email(&to, "Refused")).await;
        assert!(
            matches!(&refused, Err(MailError::Permanent(reason)) if reason.contains("MessageRejected")),
            "{refused:?}"
        );
        assert!(
            ses_messages_to(&env.endpoints.aws, to.as_str())
                .await
                .is_empty()
        );
    }
}

//! SES v2 `SendEmail` with `Simple` content (subject, text and HTML parts).

use async_trait::async_trait;
use aws_sdk_sesv2::Client;
use aws_sdk_sesv2::error::SdkError;
use aws_sdk_sesv2::operation::send_email::SendEmailError;
use aws_sdk_sesv2::types::{Body, Content, Destination, EmailContent, Message};

use oes_domain::email::OutgoingEmail;
use oes_domain::ports::{MailError, Mailer};

/// Sends through SES v2 from one verified sender.
#[derive(Clone)]
pub struct SesMailer {
    client: Client,
    from: String,
}

impl SesMailer {
    /// Sends from `from` (an identity verified in SES).
    pub fn new(client: Client, from: impl Into<String>) -> Self {
        Self {
            client,
            from: from.into(),
        }
    }
}

fn content(data: &str) -> Result<Content, MailError> {
    Content::builder()
        .data(data)
        .charset("UTF-8")
        .build()
        .map_err(|e| MailError::Permanent(e.to_string()))
}

/// What SES says when the account's daily sending quota is spent, whatever the error's type.
const DAILY_QUOTA_SPENT: &str = "Daily message quota exceeded";

/// What SES says when the account's sending rate is exceeded, whatever the error's type.
const RATE_EXCEEDED: &str = "Maximum sending rate exceeded";

/// Sorts an SES error into permanent (this message will never go), transient (try later) and
/// account-level (the account cannot send now: paused, or the daily quota is spent). The text
/// kept is the error's code and message, not the whole SDK context (it ends up in job records
/// and dead-letter reasons).
fn classify(error: SdkError<SendEmailError>) -> MailError {
    let SdkError::ServiceError(service) = &error else {
        return MailError::Transient(aws_sdk_sesv2::error::DisplayErrorContext(&error).to_string());
    };
    let err = service.err();
    let text = match (err.meta().code(), err.meta().message()) {
        (Some(code), Some(message)) => format!("{code}: {message}"),
        _ => err.to_string(),
    };
    // AWS's SES guide ("Errors related to the sending quotas"): a spent daily quota is a
    // throttling error told from a spent rate only by its message.
    if text.contains(DAILY_QUOTA_SPENT) {
        return MailError::QuotaExceeded(text);
    }
    match err.meta().code() {
        // The role may not send (an IAM policy, a permissions boundary, an SCP; in the SES
        // sandbox, the recipient's identity): no message can go until an operator fixes it, as
        // when the account is paused — held without spending attempts, and the alarm raised.
        Some("AccessDenied" | "AccessDeniedException") => return MailError::AccountPaused(text),
        Some("Throttling" | "ThrottlingException") => return MailError::Throttled(text),
        _ if text.contains(RATE_EXCEEDED) => return MailError::Throttled(text),
        _ => {}
    }
    match err {
        SendEmailError::MessageRejected(_)
        | SendEmailError::BadRequestException(_)
        | SendEmailError::MailFromDomainNotVerifiedException(_)
        | SendEmailError::NotFoundException(_) => MailError::Permanent(text),
        SendEmailError::AccountSuspendedException(_)
        | SendEmailError::SendingPausedException(_) => MailError::AccountPaused(text),
        SendEmailError::LimitExceededException(_) => MailError::QuotaExceeded(text),
        SendEmailError::TooManyRequestsException(_) => MailError::Throttled(text),
        _ => MailError::Transient(text),
    }
}

#[async_trait]
impl Mailer for SesMailer {
    #[tracing::instrument(skip_all)]
    async fn send(&self, email: &OutgoingEmail) -> Result<String, MailError> {
        let message = Message::builder()
            .subject(content(&email.subject)?)
            .body(
                Body::builder()
                    .text(content(&email.text)?)
                    .html(content(&email.html)?)
                    .build(),
            )
            .build();
        let out = self
            .client
            .send_email()
            .from_email_address(&self.from)
            .destination(
                Destination::builder()
                    .to_addresses(email.to.as_str())
                    .build(),
            )
            .content(EmailContent::builder().simple(message).build())
            .send()
            .await
            .map_err(classify)?;
        Ok(out.message_id.unwrap_or_default())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use aws_sdk_sesv2::types::error::{
        LimitExceededException, MessageRejected, SendingPausedException, TooManyRequestsException,
    };
    use aws_smithy_runtime_api::http::{Response, StatusCode};
    use aws_smithy_types::body::SdkBody;

    fn service_error(error: SendEmailError) -> SdkError<SendEmailError> {
        let status = StatusCode::try_from(400).expect("a status");
        SdkError::service_error(error, Response::new(status, SdkBody::empty()))
    }

    #[test]
    fn ses_errors_are_sorted_by_what_they_say_about_the_message() {
        let rejected =
            SendEmailError::MessageRejected(MessageRejected::builder().message("no").build());
        assert!(matches!(
            classify(service_error(rejected)),
            MailError::Permanent(_)
        ));
        let throttled =
            SendEmailError::TooManyRequestsException(TooManyRequestsException::builder().build());
        assert!(matches!(
            classify(service_error(throttled)),
            MailError::Throttled(_)
        ));
        let paused =
            SendEmailError::SendingPausedException(SendingPausedException::builder().build());
        assert!(matches!(
            classify(service_error(paused)),
            MailError::AccountPaused(_)
        ));
    }

    /// A send the role may not make is not this message's failure: every message would be
    /// refused alike, so each spent its attempts over ~21 minutes and went to the dead-letter
    /// queue. It is held as for a paused account, with its alarm.
    #[test]
    fn a_send_the_role_may_not_make_is_held_as_for_a_paused_account() {
        let denied = SendEmailError::generic(
            aws_sdk_sesv2::error::ErrorMetadata::builder()
                .code("AccessDeniedException")
                .message("not authorized to perform ses:SendEmail on identity/ada@example.com")
                .build(),
        );
        let class = classify(service_error(denied));
        assert!(matches!(class, MailError::AccountPaused(_)), "{class:?}");
    }

    /// Defect 5 of issue 11: a spent daily quota was classed as transient, so every message
    /// burned its attempts against it and went to the dead-letter queue.
    #[test]
    fn a_spent_daily_quota_is_not_a_transient_failure_of_the_message() {
        let quota = SendEmailError::LimitExceededException(
            LimitExceededException::builder()
                .message("Daily message quota exceeded")
                .build(),
        );
        let class = classify(service_error(quota));
        assert!(matches!(class, MailError::QuotaExceeded(_)), "{class:?}");
    }

    /// SES answers a spent daily quota as a throttling error (AWS's SES guide, "Errors related
    /// to the sending quotas"), its message the one sign of it: classed by its type alone it was
    /// transient, each job spent its attempts against the quota and went to the dead-letter
    /// queue, and the quota's alarm never sounded. A spent rate is throttling: it spends no
    /// attempt either (a backlog bigger than the rate allows used up the attempts of jobs that
    /// never failed, ~21 minutes of throttling, and dead-lettered them).
    #[test]
    fn a_throttling_error_that_says_the_daily_quota_is_spent_is_the_quota() {
        let spent = |message: &str| {
            [
                SendEmailError::TooManyRequestsException(
                    TooManyRequestsException::builder().message(message).build(),
                ),
                SendEmailError::generic(
                    aws_sdk_sesv2::error::ErrorMetadata::builder()
                        .code("ThrottlingException")
                        .message(message)
                        .build(),
                ),
            ]
        };
        for error in spent("Throttling failure: Daily message quota exceeded.") {
            let class = classify(service_error(error));
            assert!(matches!(class, MailError::QuotaExceeded(_)), "{class:?}");
        }
        for error in spent("Maximum sending rate exceeded.") {
            let class = classify(service_error(error));
            assert!(matches!(class, MailError::Throttled(_)), "{class:?}");
        }
        let bare = SendEmailError::generic(
            aws_sdk_sesv2::error::ErrorMetadata::builder()
                .code("Throttling")
                .build(),
        );
        let class = classify(service_error(bare));
        assert!(matches!(class, MailError::Throttled(_)), "{class:?}");
    }
}

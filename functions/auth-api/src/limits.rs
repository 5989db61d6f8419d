//! How often each auth action may be tried, per subject (counted by
//! [`oes_runtime::rate_limit`]; a refusal is a 429 with `Retry-After`).
//!
//! - Guessing passwords (OWASP's device-cookie scheme, in `AuthService::login`): an attempt
//!   carrying a valid device token of the account (handed out by an earlier successful sign-in
//!   from that device) counts against [`LOGIN_PER_DEVICE`] only. Any other attempt counts
//!   against [`LOGIN_PER_ACCOUNT_AND_IP`], which stops one client quickly, and, only if that one
//!   let it through, [`LOGIN_PER_ACCOUNT`], which bounds guessing spread over many addresses:
//!   guesses one address was already refused never spend the account's budget, and an account
//!   under attack from many addresses stays open to the devices its owner signed in from.
//!   Every attempt counts, right password or wrong, so the argon2 work a client can cause is
//!   bounded too. There is no per-IP login limit: a school taking an exam behind one NAT
//!   address signs in all at once.
//! - Mail bombing and SES cost: [`EMAIL_PER_ADDRESS`] bounds the emails sent to an address the
//!   caller names (a sign-up's verification link or, for a verified address, its notice; a
//!   verification resend; an email change's link), per mailbox
//!   ([`oes_domain::user::Email::mailbox`]: `ada+1@x` and `ada+2@x` share one). Like
//!   [`RESET_PER_ACCOUNT`] it never refuses: only an email about to be sent counts, and past
//!   the budget the request sends nothing and is answered as any other. So no one can spend an
//!   address's budget without mailing it (counting requests that mail nothing let five resends
//!   an hour keep an address's owner from signing up), and the answer tells nothing. The
//!   requester's own limits refuse with a 429 first ([`EMAIL_PER_IP`], [`SIGN_UP_PER_IP`],
//!   [`EMAIL_CHANGE_PER_ACCOUNT`]): a request they refuse spends nothing of the address's.
//! - Password resets: [`EMAIL_PER_IP`], then [`RESET_PER_ACCOUNT`], which never refuses (the
//!   answer is 202 either way) but stops mailing: each reset email voids the link before it,
//!   and the last one sent outlives the window, so whoever spends the budget, the owner holds a
//!   working link.
//! - Mass sign-up: [`SIGN_UP_PER_IP`].
//! - Email change: [`EMAIL_CHANGE_PER_ACCOUNT`].
//!
//! Verification and reset tokens carry 256 random bits, so their routes need no limit against
//! guessing.

use std::time::Duration;

use oes_runtime::rate_limit::Limit;

use crate::service::RESET_TOKEN_TTL_SECONDS;

const HOUR: Duration = Duration::from_secs(3600);

/// Sign-in attempts for one account from one IP address.
pub const LOGIN_PER_ACCOUNT_AND_IP: Limit = Limit {
    rule: "login",
    max: 10,
    window: Duration::from_secs(15 * 60),
};

/// Sign-in attempts for one account from anywhere.
pub const LOGIN_PER_ACCOUNT: Limit = Limit {
    rule: "login_account",
    max: 100,
    window: HOUR,
};

/// Sign-in attempts from one trusted device (one that signed in to the account before and
/// presents its device token), from any address.
pub const LOGIN_PER_DEVICE: Limit = Limit {
    rule: "login_device",
    max: 10,
    window: Duration::from_secs(15 * 60),
};

/// Sign-ups from one IP address.
pub const SIGN_UP_PER_IP: Limit = Limit {
    rule: "register",
    max: 100,
    window: HOUR,
};

/// Emails sent to one mailbox (sign-up, verification resend, email change to it); past it
/// nothing is sent, and the request is answered as any other.
pub const EMAIL_PER_ADDRESS: Limit = Limit {
    rule: "email",
    max: 5,
    window: HOUR,
};

/// Emails asked for by one IP address, whatever the addresses (verification resend, password
/// reset).
pub const EMAIL_PER_IP: Limit = Limit {
    rule: "email_ip",
    max: 100,
    window: HOUR,
};

/// Password reset emails to one account. Requests past it are answered as any other and send
/// nothing; the link sent last works meanwhile, since a reset link lives at least as long as
/// the window (checked below).
pub const RESET_PER_ACCOUNT: Limit = Limit {
    rule: "reset",
    max: 5,
    window: HOUR,
};

const _: () = assert!(
    RESET_PER_ACCOUNT.window.as_secs() <= RESET_TOKEN_TTL_SECONDS.cast_unsigned(),
    "the last reset link sent must outlive the window in which no other is sent"
);

/// Email-change requests of one account.
pub const EMAIL_CHANGE_PER_ACCOUNT: Limit = Limit {
    rule: "email_change",
    max: 5,
    window: HOUR,
};

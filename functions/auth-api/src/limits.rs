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
//! - Mail bombing and SES cost: [`EMAIL_PER_ADDRESS`] on every route that mails an address the
//!   caller names, counted whether or not the account exists (so a 429 reveals nothing), and
//!   [`EMAIL_PER_IP`] against one client walking through many addresses.
//! - Mass sign-up: [`SIGN_UP_PER_IP`].
//! - Email change: [`EMAIL_CHANGE_PER_ACCOUNT`].
//!
//! Verification and reset tokens carry 256 random bits, so their routes need no limit against
//! guessing.

use std::time::Duration;

use oes_runtime::rate_limit::Limit;

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

/// Emails asked for one address (verification resend, password reset, email change).
pub const EMAIL_PER_ADDRESS: Limit = Limit {
    rule: "email",
    max: 5,
    window: HOUR,
};

/// Emails asked for by one IP address, whatever the addresses.
pub const EMAIL_PER_IP: Limit = Limit {
    rule: "email_ip",
    max: 100,
    window: HOUR,
};

/// Email-change requests of one account.
pub const EMAIL_CHANGE_PER_ACCOUNT: Limit = Limit {
    rule: "email_change",
    max: 5,
    window: HOUR,
};

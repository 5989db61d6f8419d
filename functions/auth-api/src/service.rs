//! The auth domain. Every operation goes through the ports; nothing here knows about Lambda.

use std::sync::Arc;

use oes_domain::cache::CacheStatus;
use oes_domain::clock::Clock;
use oes_domain::email::{EmailJob, EmailTemplate, PRIORITY_LANE_THRESHOLD};
use oes_domain::ports::{
    Replaced, StoreError, StoredToken, TokenPurpose, TokenStore, UserConflict, UserStore,
    UserUpdate,
};
use oes_domain::producer::{EmailProducer, EnqueueError};
use oes_domain::security::{
    DeviceClaims, OneTimeToken, Password, PasswordHasher, Secret, TokenHash,
};
use oes_domain::user::{DisplayName, Email, Role, User, UserId, UserProfile, UserStatus};
use oes_runtime::rate_limit::{Limit, RateLimiter, Verdict};
use oes_runtime::session::Sessions;

use crate::error::AuthError;
use crate::hashing::{Admission, HashPool};
use crate::limits::{
    EMAIL_PER_ADDRESS, LOGIN_PER_ACCOUNT, LOGIN_PER_ACCOUNT_AND_IP, LOGIN_PER_DEVICE,
    RESET_PER_ACCOUNT,
};
use crate::pacing::Pace;

/// How long a verification or email-change link works.
pub const VERIFY_TOKEN_TTL_SECONDS: i64 = 24 * 3600;
/// How long a password reset link works.
pub const RESET_TOKEN_TTL_SECONDS: i64 = 3600;
/// How often a sign-up reads the address and writes again when another sign-up for it won the
/// race in between; after that it gives up (answered as every sign-up).
const SIGN_UP_WRITE_ATTEMPTS: usize = 3;

/// A password reset done: the device that confirmed it is trusted for the account as reset.
#[derive(Debug, Clone, serde::Serialize, utoipa::ToSchema)]
pub struct ResetDone {
    /// Always `password_reset`.
    #[schema(value_type = String)]
    pub status: &'static str,
    /// A device token for the account as it now is (as a sign-in answers one): a reset voids
    /// the trust of every device, so while others spend the account's sign-in budget, the next
    /// sign-in from this device, sending it, counts against this device's own limit. Never
    /// printed.
    #[schema(value_type = String)]
    pub device_token: Secret,
}

/// A signed-in session.
#[derive(Debug, Clone, serde::Serialize, utoipa::ToSchema)]
pub struct AccessToken {
    /// The JWT. Never printed.
    #[schema(value_type = String)]
    pub access_token: Secret,
    /// Always `Bearer`.
    #[schema(value_type = String)]
    pub token_type: &'static str,
    /// Seconds until it expires.
    pub expires_in: i64,
    /// This device's token (see [`oes_domain::security::DeviceKeys`]): the client keeps it and
    /// sends it with its next sign-ins to this account, which then count against this device's
    /// own limit instead of the account's. Never printed.
    #[schema(value_type = String)]
    pub device_token: Secret,
}

/// Where a sign-in attempt comes from.
#[derive(Clone, Copy)]
pub struct SignInFrom<'a> {
    /// The client's address as API Gateway saw it.
    pub ip: &'a str,
    /// The device token the client kept from an earlier sign-in, if it sent one.
    pub device_token: Option<&'a str>,
}

/// The auth domain service. Built once at init; cheap to share.
pub struct AuthService {
    users: Arc<dyn UserStore>,
    tokens: Arc<dyn TokenStore>,
    emails: EmailProducer,
    sessions: Sessions,
    clock: Arc<dyn Clock>,
    hasher: Arc<PasswordHasher>,
    hash_pool: HashPool,
    limiter: RateLimiter,
    pace: Pace,
}

impl AuthService {
    /// The service over the ports it uses: accounts, one-time tokens, the email producer,
    /// sessions (which read profiles cache-aside), rate limits, the password hasher and the clock.
    pub fn new(
        users: Arc<dyn UserStore>,
        tokens: Arc<dyn TokenStore>,
        emails: EmailProducer,
        sessions: Sessions,
        limiter: RateLimiter,
        hasher: PasswordHasher,
        clock: Arc<dyn Clock>,
    ) -> Self {
        Self {
            users,
            tokens,
            emails,
            sessions,
            clock,
            hasher: Arc::new(hasher),
            hash_pool: HashPool::one_at_a_time(),
            limiter,
            pace: Pace::default(),
        }
    }

    /// The same service answering the requests that name an address after `floor` instead of
    /// [`crate::pacing::ANSWER_FLOOR`] (zero: as soon as their work is done, for tests that
    /// are not about timing).
    pub fn with_answer_floor(self, floor: std::time::Duration) -> Self {
        Self {
            pace: Pace::new(floor),
            ..self
        }
    }

    /// The same service with password work bounded by `pool` instead of one hash at a time (as
    /// a Lambda environment, given one event at a time, runs them): a server that takes many
    /// requests at once gives it [`HashPool::per_core`].
    pub fn with_hash_pool(self, pool: HashPool) -> Self {
        Self {
            hash_pool: pool,
            ..self
        }
    }

    /// A place in the password pool, for a request that will hash or check a password. Take
    /// it first, before [`throttle`](Self::throttle) or anything else the request spends: a
    /// request refused as busy (503, `Retry-After`) has then spent no rate-limit budget and no
    /// single-use link, and the client simply sends it again. (Found by the exam-day load
    /// test: busy sign-ins used to count against the student's sign-in limit.)
    pub fn admit_password_work(&self) -> Result<Admission, AuthError> {
        Ok(self.hash_pool.admit()?)
    }

    /// Counts one attempt against each `(limit, subject)` in turn and refuses at the first one
    /// exceeded, with its wait. The limits after it do not count the refused attempt, so list
    /// the narrowest first: an attempt refused by one client's own limit must not spend a budget
    /// that client shares with others (an account's, an address's).
    pub async fn throttle(&self, checks: &[(&Limit, &str)]) -> Result<(), AuthError> {
        for (limit, subject) in checks {
            if let Verdict::Limited { retry_after } = self.limiter.check(limit, subject).await {
                return Err(AuthError::RateLimited(retry_after));
            }
        }
        Ok(())
    }

    /// Whether the mailbox `to` reaches may get one more email now ([`EMAIL_PER_ADDRESS`]),
    /// counted if so. Asked only on a path that mails the address: a request that mails
    /// nothing (an address without an account) spends none of the budget, so no one can use it
    /// up without mailing the address, which its owner sees. Past it the request sends nothing
    /// and is answered as any other (a refusal would tell that the address gets emails here).
    /// A request that then mails nothing after all gives its count back ([`Self::mailed`]).
    async fn mailbox_open(&self, to: &Email) -> bool {
        match self.limiter.check(&EMAIL_PER_ADDRESS, &to.mailbox()).await {
            Verdict::Allowed => true,
            Verdict::Limited { .. } => {
                tracing::info!("the mailbox's emails are spent for now; nothing sent");
                false
            }
        }
    }

    /// `sent`, after giving back the mailbox's count [`Self::mailbox_open`] took if it failed
    /// so that nothing will reach `to` (the link not stored, the job not queued): a user asking
    /// again through an outage must not spend the budget their email needs once it is over. A
    /// job the queue may have taken (`Unsure`: its copy on the lane is sent) keeps its count.
    async fn mailed<T>(&self, to: &Email, sent: Result<T, AuthError>) -> Result<T, AuthError> {
        let nothing_sent = match &sent {
            Ok(_) | Err(AuthError::Queue(EnqueueError::Unsure(_) | EnqueueError::Duplicate)) => {
                false
            }
            Err(_) => true,
        };
        if nothing_sent {
            self.limiter
                .give_back(&EMAIL_PER_ADDRESS, &to.mailbox())
                .await;
        }
        sent
    }

    /// Signs `email` up, answering the same whatever the address (no account enumeration, as
    /// OWASP's authentication cheat sheet asks): the caller learns only that an email is on its
    /// way to the address.
    ///
    /// - No account: creates one pending verification and queues the verification email. If
    ///   the email cannot be queued, the account is removed again so signing up again works.
    /// - An unverified account: anyone can sign up with an address they do not own, so it holds
    ///   its address only until someone signs up with it again. The new sign-up replaces it (a
    ///   new account: the links sent to the old one are void), and an unverified account
    ///   expires ([`oes_domain::user::UNVERIFIED_ACCOUNT_TTL_SECONDS`]).
    /// - A verified account: nothing changes; its owner is mailed a notice
    ///   ([`EmailTemplate::AccountExists`]) instead.
    ///
    /// Each of them mails the address, so each counts against its mailbox's budget; past it,
    /// nothing is written or sent ([`Self::mailbox_open`]).
    ///
    /// The password is hashed first, whatever the address, and what follows answers at the
    /// [`Pace`] floor, so the answer takes as long either way. A write that loses a race with
    /// another sign-up for the address reads it again
    /// (a conflict must not tell that the address was free), a bounded number of times; one
    /// that loses every time writes and sends nothing and is answered as any other sign-up
    /// (a verified address never loses a race, so a refusal would tell that the address is not
    /// verified). Each race it lost, another sign-up won: that one's account holds the address
    /// and its verification email went to the mailbox, so the address's owner is served.
    #[tracing::instrument(skip_all)]
    pub async fn register(
        &self,
        slot: Admission,
        email: Email,
        password: Password,
        name: DisplayName,
    ) -> Result<(), AuthError> {
        let password_hash = self.hash(slot, password).await?;
        self.pace
            .answer("sign_up", self.sign_up(email, name, password_hash))
            .await
    }

    /// The part of a sign-up after the hash: what it does depends on the address.
    async fn sign_up(
        &self,
        email: Email,
        name: DisplayName,
        password_hash: String,
    ) -> Result<(), AuthError> {
        if !self.mailbox_open(&email).await {
            return Ok(());
        }
        let to = email.clone();
        let signed_up = self.sign_up_mailing(email, name, password_hash).await;
        self.mailed(&to, signed_up).await
    }

    /// [`Self::sign_up`] once the mailbox's budget allows it.
    async fn sign_up_mailing(
        &self,
        email: Email,
        name: DisplayName,
        password_hash: String,
    ) -> Result<(), AuthError> {
        let now = self.clock.now();
        let user = User {
            id: UserId::generate(),
            email,
            name,
            password_hash,
            role: Role::Student,
            status: UserStatus::PendingVerification,
            token_version: 0,
            email_version: 0,
            created_at: now,
            updated_at: now,
        };
        for _ in 0..SIGN_UP_WRITE_ATTEMPTS {
            let (account, written) = match self.users.find_by_email(&user.email).await? {
                Some(owner) if owner.status == UserStatus::Active => {
                    tracing::info!(
                        user_id = %owner.id,
                        "sign-up with a verified address: mailing its owner a notice"
                    );
                    let notice = EmailTemplate::AccountExists {
                        name: owner.name.as_str().to_owned(),
                    };
                    return self.enqueue(owner.email, notice).await;
                }
                Some(pending) => {
                    let account = self.signed_up_again(&user);
                    let written = self.users.replace_unverified(&pending, &account).await;
                    (account, written)
                }
                None => (user.clone(), self.users.create(&user).await),
            };
            match written {
                Ok(()) => return self.finish_sign_up(&account).await,
                // Another sign-up or a verification changed the address since it was read.
                Err(StoreError::Conflict(
                    UserConflict::EmailTaken | UserConflict::ConcurrentUpdate,
                )) => {}
                Err(other) => return Err(other.into()),
            }
        }
        tracing::info!("sign-up lost every race for its address; another sign-up holds it");
        Ok(())
    }

    /// The account `user` makes when its address was signed up before and is not verified
    /// yet. The last sign-up replaces the one before, so that someone who signs up first with
    /// another's address does not keep its owner out; but nothing tells which of the two is the
    /// owner's, and the link that works, mailed to the owner, would activate whichever came
    /// last — the other's password, if the other signed up after the owner. So it keeps no
    /// sign-up's password or name: the owner confirms the address, then chooses a password
    /// with a reset link (the verification email says so), and the account is named after the
    /// address until they rename it.
    fn signed_up_again(&self, user: &User) -> User {
        let local_part = user.email.as_str().split('@').next().unwrap_or_default();
        User {
            password_hash: self.hasher.no_password(),
            name: DisplayName::parse(local_part)
                .or_else(|_| DisplayName::parse("New user"))
                .unwrap_or_else(|_| user.name.clone()),
            ..user.clone()
        }
    }

    /// Queues the verification email of the account `user` just made, or removes the account
    /// again if it cannot be queued.
    async fn finish_sign_up(&self, user: &User) -> Result<(), AuthError> {
        if let Err(error) = self.send_verification(user).await {
            if let Err(undo) = self.users.delete(user).await {
                tracing::error!(user_id = %user.id, error = %undo, "could not undo a sign-up");
            }
            return Err(error);
        }
        tracing::info!(user_id = %user.id, "user registered");
        Ok(())
    }

    /// Uses a verification or email-change token. An email-change link moves the account only
    /// if it is still as it was when the link was sent (see
    /// [`oes_domain::ports::LinkedState`]): a password reset, a role change or another email
    /// change since voids it. A verification link only marks the account verified, which
    /// nothing undoes: its expiry voids it, and so does a move of the account to another address
    /// (its answer would name the new one).
    #[tracing::instrument(skip_all)]
    pub async fn verify_email(&self, token: &str) -> Result<UserProfile, AuthError> {
        let stored = self
            .take_token(
                token,
                &[TokenPurpose::VerifyEmail, TokenPurpose::ChangeEmail],
            )
            .await?;
        let answer = self.verify_with(&stored).await;
        if let (Ok(moved), TokenPurpose::ChangeEmail, Some(left)) =
            (&answer, stored.purpose, &stored.account_email)
        {
            self.tell_the_address_left(moved, left).await;
        }
        self.used(&stored, answer).await
    }

    /// Tells `left`, the address `moved` has just left, that the account moved and where to
    /// (masked): if someone who knew the password moved it, its owner learns it there. It greets
    /// no one by name: whoever holds the account chose it, and could write the owner a line
    /// that this is routine. A failure to queue it is logged; the move stands.
    async fn tell_the_address_left(&self, moved: &UserProfile, left: &Email) {
        let template = EmailTemplate::Generic {
            subject: "The email address of your oes account was changed".to_owned(),
            text: format!(
                "Hello,\n\nThe email address of your oes account was changed from this address \
                 to {} at {}. From now on you sign in with the new address, and messages about \
                 the account go there.\n\nIf you did not ask for this, someone who knew your \
                 password has moved your account: ask an administrator to move it back and to \
                 reset its password.",
                masked(&moved.email),
                oes_domain::clock::rfc3339(self.clock.now()),
            ),
        };
        if let Err(error) = self.enqueue(left.clone(), template).await {
            tracing::warn!(user_id = %moved.id, %error, "could not tell the address an account left");
        }
    }

    /// [`verify_email`](Self::verify_email) with the token taken.
    async fn verify_with(&self, stored: &StoredToken) -> Result<UserProfile, AuthError> {
        let now = self.clock.now();
        let user = match (stored.purpose, &stored.new_email, stored.linked_state()) {
            (TokenPurpose::ChangeEmail, Some(new_email), Some(linked)) => {
                self.users
                    .change_email(&stored.user_id, new_email, &linked, now)
                    .await
            }
            (TokenPurpose::VerifyEmail, ..) => {
                self.users
                    .update(&stored.user_id, UserUpdate::Verified, now)
                    .await
            }
            // An email-change token without its addresses (stored before they were recorded),
            // or a purpose not taken above.
            _ => return Err(AuthError::InvalidToken),
        };
        // A write whose answer was lost may have been applied, and the link's next use finds it
        // void: the cached profile goes either way.
        self.invalidate_profile(&stored.user_id).await;
        let user = match user {
            Err(StoreError::NotFound) => return Err(AuthError::InvalidToken),
            other => other?,
        };
        // A verification link sent to an address the account has since left (moved while the
        // link was still good): verifying it changed nothing (a move needs a verified account),
        // and its answer must not tell the old mailbox where the account went.
        if stored.purpose == TokenPurpose::VerifyEmail && user.email_version != stored.email_version
        {
            return Err(AuthError::InvalidToken);
        }
        tracing::info!(user_id = %user.id, purpose = ?stored.purpose, "email verified");
        Ok(user.profile())
    }

    /// Sends a new verification email if `email` belongs to an unverified account (and its
    /// mailbox's budget allows: [`Self::mailbox_open`]). Says nothing either way (the handler always answers 202), not even when the email could not be queued
    /// ([`answered_as_without_account`]), and answers at the [`Pace`] floor.
    #[tracing::instrument(skip_all)]
    pub async fn resend_verification(&self, email: &Email) -> Result<(), AuthError> {
        self.pace
            .answer("resend_verification", async {
                match self.users.find_by_email(email).await? {
                    Some(user) if user.status == UserStatus::PendingVerification => {
                        if !self.mailbox_open(email).await {
                            return Ok(());
                        }
                        let sent = self.send_verification(&user).await;
                        answered_as_without_account(self.mailed(email, sent).await)
                    }
                    _ => Ok(()),
                }
            })
            .await
    }

    /// Checks the credentials and issues an access token and a device token, after the sign-in
    /// limits ([`crate::limits`]). An attempt carrying a valid device token of this account
    /// counts against that device's limit only. Any other attempt counts against the
    /// (account, address) limit and, only if that one lets it through, the account's: guesses
    /// from one address cannot spend the account's budget, and guesses from many addresses,
    /// which can, lock out devices that never signed in, not the owner's.
    #[tracing::instrument(skip_all)]
    pub async fn login(
        &self,
        slot: Admission,
        email: &Email,
        password: String,
        from: SignInFrom<'_>,
    ) -> Result<AccessToken, AuthError> {
        let devices = self.sessions.jwt().devices();
        let device = from
            .device_token
            .and_then(|token| devices.verify(token).ok());
        let account_and_ip = format!("{} {}", from.ip, email.as_str());
        let untrusted = [
            (&LOGIN_PER_ACCOUNT_AND_IP, account_and_ip.as_str()),
            (&LOGIN_PER_ACCOUNT, email.as_str()),
        ];
        // Counted before the account is read, so a refused attempt costs no read. A device's
        // budget is its token's — the device id and the token version it was issued for — so a
        // token a reset left behind (stolen, say) cannot spend the renewed token's.
        match &device {
            Some(claims) => {
                let token = format!("{} {}", claims.did, claims.ver);
                self.throttle(&[(&LOGIN_PER_DEVICE, token.as_str())])
                    .await?;
            }
            None => self.throttle(&untrusted).await?,
        }
        let user = self.users.find_by_email(email).await?;
        let device = match (device, &user) {
            (Some(claims), Some(user)) if claims.is_for(user) => Some(claims),
            // Signed by us, but for another account (or for this one before its last password
            // reset or role change): an untrusted device.
            (Some(_), _) => {
                self.throttle(&untrusted).await?;
                None
            }
            (None, _) => None,
        };
        let stored = user.as_ref().map(|u| u.password_hash.clone());
        let matched = self.verify_password(slot, password, stored).await?;
        // An unverified account answers as a wrong password does: its password may be the one
        // its sign-up gave — anyone's, for an address whose owner never signed up — so telling
        // it apart ("not verified") would tell that the address has no verified account.
        let user = match user {
            Some(user) if matched && user.status == UserStatus::Active => user,
            _ => {
                tracing::info!("login failed");
                oes_domain::metrics::incr(oes_domain::metrics::LOGIN_FAILURES, None);
                return Err(AuthError::InvalidCredentials);
            }
        };
        let now = self.clock.now();
        let device_token = self.device_token(&user, device.as_ref(), now)?;
        Ok(AccessToken {
            access_token: Secret::new(self.sessions.jwt().issue(&user, now)?),
            token_type: "Bearer",
            expires_in: self.sessions.jwt().ttl_seconds(),
            device_token,
        })
    }

    /// The profile behind a bearer token, read through the cache. Refuses tokens of a user who
    /// no longer exists or whose token version moved on (password reset, role change).
    pub async fn authenticate(
        &self,
        bearer: &str,
    ) -> Result<(UserProfile, CacheStatus), AuthError> {
        Ok(self.sessions.authenticate(bearer).await?)
    }

    /// Changes the display name.
    #[tracing::instrument(skip_all, fields(user_id = %id))]
    pub async fn rename(&self, id: &UserId, name: DisplayName) -> Result<UserProfile, AuthError> {
        let user = self
            .users
            .update(id, UserUpdate::Name(name), self.clock.now())
            .await;
        // A write whose answer was lost may have been applied: the cached profile goes either way.
        self.invalidate_profile(id).await;
        let user = match user {
            Err(StoreError::NotFound) => {
                return Err(AuthError::Unauthenticated("the account no longer exists"));
            }
            other => other?,
        };
        Ok(user.profile())
    }

    /// Queues a password reset email if `email` belongs to a verified account; silent otherwise, and
    /// silent too once the account's reset emails are spent ([`RESET_PER_ACCOUNT`]) or when
    /// requests made at once stored their links first, race after race, or when the link could
    /// not be stored or mailed ([`answered_as_without_account`]). Each
    /// reset email carries a new link that voids the one before, so one works at a time: the
    /// last one sent, which stays valid at least until the budget's window ends. So however many
    /// clients ask, the address gets a bounded number of emails, and its owner always holds a
    /// working link (the newest). Answers at the [`Pace`] floor.
    #[tracing::instrument(skip_all)]
    pub async fn request_password_reset(&self, email: &Email) -> Result<(), AuthError> {
        self.pace
            .answer("password_reset", self.reset_by_email(email))
            .await
    }

    async fn reset_by_email(&self, email: &Email) -> Result<(), AuthError> {
        // Only a verified account: one not verified yet has no password its owner could have
        // lost (its verification link, or signing up again, is the way in), and anyone can
        // make one for every tagged variant of a mailbox, each with a reset budget of its own.
        let Some(user) = self
            .users
            .find_by_email(email)
            .await?
            .filter(|user| user.status == UserStatus::Active)
        else {
            return Ok(());
        };
        let verdict = self
            .limiter
            .check(&RESET_PER_ACCOUNT, user.id.as_str())
            .await;
        if let Verdict::Limited { .. } = verdict {
            tracing::info!(user_id = %user.id, "reset emails spent for now; the last one sent works");
            return Ok(());
        }
        answered_as_without_account(
            self.send_token_email(&user, TokenPurpose::PasswordReset, user.email.clone())
                .await,
        )
    }

    /// Uses a reset token to set a new password, if the account is still as it was when the
    /// link was sent (see [`oes_domain::ports::LinkedState`]): a password reset, a role change
    /// or an email change since voids it. Every access token issued before stops working (the
    /// token version moves on), and so does every other reset or email-change link; of two
    /// links confirmed at once, one resets (the write is conditioned on the state the link was
    /// sent in).
    #[tracing::instrument(skip_all)]
    pub async fn confirm_password_reset(
        &self,
        slot: Admission,
        token: &str,
        password: Password,
        device_token: Option<&str>,
    ) -> Result<ResetDone, AuthError> {
        let stored = self
            .take_token(token, &[TokenPurpose::PasswordReset])
            .await?;
        let answer = self.reset_with(slot, &stored, password, device_token).await;
        self.used(&stored, answer).await
    }

    /// [`confirm_password_reset`](Self::confirm_password_reset) with the token taken.
    async fn reset_with(
        &self,
        slot: Admission,
        stored: &StoredToken,
        password: Password,
        device_token: Option<&str>,
    ) -> Result<ResetDone, AuthError> {
        let linked = stored.linked_state().ok_or(AuthError::InvalidToken)?;
        let user = self
            .users
            .get(&stored.user_id)
            .await?
            .ok_or(AuthError::InvalidToken)?;
        // The write checks it again; checked here so that a void link costs no password hash.
        if !linked.holds_for(&user) {
            return Err(AuthError::InvalidToken);
        }
        let hash = self.hash(slot, password).await?;
        let update = UserUpdate::Password { hash, linked };
        let now = self.clock.now();
        let reset = self.users.update(&user.id, update, now).await;
        // As a link's use above: the cached profile goes whatever the write answered.
        self.invalidate_profile(&user.id).await;
        let reset = match reset {
            Err(StoreError::NotFound) => return Err(AuthError::InvalidToken),
            other => other?,
        };
        tracing::info!(user_id = %user.id, "password reset");
        // The device keeps its id if it sent a token of this account (of any version).
        let device = device_token
            .and_then(|token| self.sessions.jwt().devices().verify(token).ok())
            .filter(|claims| claims.sub == reset.id.as_str());
        Ok(ResetDone {
            status: "password_reset",
            device_token: self.device_token(&reset, device.as_ref(), now)?,
        })
    }

    /// Starts moving the account to `new_email`: checks the password, then sends a confirmation
    /// link to the new address. If the address belongs to another account nothing is sent (and
    /// the caller is not told, and what follows the password check answers at the [`Pace`]
    /// floor, so the endpoint cannot be used to probe for accounts); nor when the link could
    /// not be stored or queued ([`answered_as_without_account`]).
    #[tracing::instrument(skip_all, fields(user_id = %id))]
    pub async fn request_email_change(
        &self,
        slot: Admission,
        id: &UserId,
        new_email: Email,
        password: String,
    ) -> Result<(), AuthError> {
        let user = self
            .users
            .get(id)
            .await?
            .ok_or(AuthError::Unauthenticated("the account no longer exists"))?;
        let stored = Some(user.password_hash.clone());
        if !self.verify_password(slot, password, stored).await? {
            return Err(AuthError::InvalidCredentials);
        }
        if new_email == user.email {
            return Err(AuthError::Invalid(oes_domain::user::InvalidInput::new(
                "new_email",
                "is already the address of this account",
            )));
        }
        self.pace
            .answer("email_change", async {
                // An address only an unverified account holds is not taken (as for a sign-up):
                // the move, made from the link sent there, ends that account.
                let holder = self.users.find_by_email(&new_email).await?;
                let taken =
                    holder.is_some_and(|holder| holder.status != UserStatus::PendingVerification);
                if taken || !self.mailbox_open(&new_email).await {
                    // Still a new request for the move: it voids the link asked for before (a
                    // mistyped address's), with a link of its own that is sent to no one.
                    self.void_email_change_links(&user, &new_email).await;
                    tracing::info!(taken, "email change requested; nothing sent");
                    return Ok(());
                }
                // Nothing is ever sent to a taken address, so a failure to send to a free one
                // is answered as that (202): a 503 would tell, during an outage, which
                // addresses have accounts.
                let sent = self
                    .send_token_email(&user, TokenPurpose::ChangeEmail, new_email.clone())
                    .await;
                answered_as_without_account(self.mailed(&new_email, sent).await)
            })
            .await
    }

    /// Voids `user`'s email-change link sent before, with a new one for `to` sent to no one.
    async fn void_email_change_links(&self, user: &User, to: &Email) {
        let (_, stored) = self.new_token(user, TokenPurpose::ChangeEmail, to);
        if let Err(error) = self.tokens.replace(&stored).await {
            tracing::warn!(%error, "could not void the email-change link sent before");
        }
    }

    async fn send_verification(&self, user: &User) -> Result<(), AuthError> {
        self.send_token_email(user, TokenPurpose::VerifyEmail, user.email.clone())
            .await
    }

    /// Stores a new one-time token for `purpose` and queues the email that carries it to `to`
    /// (for an email change, `to` is the new address the token moves the account to).
    async fn send_token_email(
        &self,
        user: &User,
        purpose: TokenPurpose,
        to: Email,
    ) -> Result<(), AuthError> {
        let (token, stored) = self.new_token(user, purpose, &to);
        match purpose {
            // One reset link works at a time, and one email-change link (a change asked for
            // again, to another address or the same, voids the last: a mistyped address's
            // mailbox cannot take the account): a new one voids the last. Outrun, this request
            // sends nothing, answered as any other (a failure would tell that the account
            // exists): each request that won stored a link and mailed it.
            TokenPurpose::PasswordReset | TokenPurpose::ChangeEmail => {
                if self.tokens.replace(&stored).await? == Replaced::Outrun {
                    tracing::info!(user_id = %user.id, ?purpose, "links stored meanwhile; none sent");
                    return Ok(());
                }
            }
            TokenPurpose::VerifyEmail => {
                self.tokens.put(&stored).await?;
            }
        }
        let name = user.name.as_str().to_owned();
        let token = Secret::new(token.expose());
        let template = match purpose {
            TokenPurpose::VerifyEmail => EmailTemplate::Verification {
                name,
                token,
                choose_password: PasswordHasher::has_no_password(&user.password_hash),
            },
            TokenPurpose::PasswordReset => EmailTemplate::PasswordReset { name, token },
            TokenPurpose::ChangeEmail => EmailTemplate::EmailChange { name, token },
        };
        self.enqueue(to, template).await
    }

    /// A new one-time token of `user` for `purpose` sent to `to` (for an email change, the
    /// address it moves the account to), and what the store keeps of it.
    fn new_token(
        &self,
        user: &User,
        purpose: TokenPurpose,
        to: &Email,
    ) -> (OneTimeToken, StoredToken) {
        let (ttl_seconds, new_email) = match purpose {
            TokenPurpose::VerifyEmail => (VERIFY_TOKEN_TTL_SECONDS, None),
            TokenPurpose::PasswordReset => (RESET_TOKEN_TTL_SECONDS, None),
            TokenPurpose::ChangeEmail => (VERIFY_TOKEN_TTL_SECONDS, Some(to.clone())),
        };
        let token = OneTimeToken::generate();
        let stored = StoredToken {
            hash: token.hash(),
            purpose,
            user_id: user.id.clone(),
            new_email,
            token_version: user.token_version,
            account_email: Some(user.email.clone()),
            email_version: user.email_version,
            expires_at: self.clock.now() + ttl_seconds,
        };
        (token, stored)
    }

    async fn take_token(
        &self,
        token: &str,
        purposes: &[TokenPurpose],
    ) -> Result<StoredToken, AuthError> {
        // Tokens we issue are 43 characters; anything far off that is not worth a store call.
        if token.is_empty() || token.len() > 128 {
            return Err(AuthError::InvalidToken);
        }
        let stored = self
            .tokens
            .take(&TokenHash::of(token), purposes)
            .await?
            .ok_or(AuthError::InvalidToken)?;
        if stored.expires_at <= self.clock.now() {
            return Err(AuthError::InvalidToken);
        }
        Ok(stored)
    }

    /// What the use of a taken link answered. A failure that asks the user to try again (the
    /// store unreachable) used nothing: the link is given back first, so the retry finds it
    /// still good. (A use that landed though its answer was lost is void on the retry: each use
    /// is conditioned on the account's state, which it moved on, and verifying again changes
    /// nothing.)
    async fn used<T>(
        &self,
        stored: &StoredToken,
        answer: Result<T, AuthError>,
    ) -> Result<T, AuthError> {
        if let Err(failure) = &answer
            && failure.asks_to_retry()
            && let Err(error) = self.tokens.give_back(stored).await
        {
            tracing::warn!(%error, "could not give a link back after a failed use; it stays used");
        }
        answer
    }

    /// A device token for `user` as it is at `now`: for the device of `claims` (a new device
    /// when `None`).
    fn device_token(
        &self,
        user: &User,
        claims: Option<&DeviceClaims>,
        now: i64,
    ) -> Result<Secret, AuthError> {
        let device_id = claims.map(|claims| claims.did.as_str());
        self.sessions
            .jwt()
            .devices()
            .issue(user, device_id, now)
            .map(Secret::new)
            .map_err(|e| AuthError::Unexpected(e.into()))
    }

    /// Queues `template` to `to` on auth-api's lane, the priority one (every email it sends is
    /// about the account; its role may queue on no other).
    async fn enqueue(&self, to: Email, template: EmailTemplate) -> Result<(), AuthError> {
        let job =
            EmailJob::new(to, template, self.clock.now()).with_priority(PRIORITY_LANE_THRESHOLD);
        self.emails.enqueue(job).await?;
        Ok(())
    }

    /// argon2 is CPU-bound: it runs off the async workers, in the bounded [`HashPool`].
    async fn verify_password(
        &self,
        slot: Admission,
        candidate: String,
        stored: Option<String>,
    ) -> Result<bool, AuthError> {
        let hasher = Arc::clone(&self.hasher);
        Ok(slot
            .run(move |memory| hasher.verify_in(&candidate, stored.as_deref(), memory))
            .await?)
    }

    async fn hash(&self, slot: Admission, password: Password) -> Result<String, AuthError> {
        let hasher = Arc::clone(&self.hasher);
        slot.run(move |memory| hasher.hash_in(&password, memory))
            .await?
            .map_err(AuthError::from)
    }

    async fn invalidate_profile(&self, id: &UserId) {
        self.sessions.invalidate(id).await;
    }
}

/// `email` as a notice shows it to the address an account left: the first character of its
/// local part, then `…`, then the domain (`o…@new.example`).
fn masked(email: &Email) -> String {
    let (local, domain) = email
        .as_str()
        .split_once('@')
        .unwrap_or((email.as_str(), ""));
    let first: String = local.chars().take(1).collect();
    format!("{first}…@{domain}")
}

/// What a request that names an address answers when the address's account could not get its
/// email (the link not stored, the job not queued): what an address without an account gets
/// (for an email change, what an address another account holds gets).
/// A 503 for it alone would tell anyone who asks, while the store or the queue fails, which
/// addresses have accounts. The failure is logged here, and the producer counted a queue's
/// (`EnqueueFailures`); the user, whose email does not come, asks again.
fn answered_as_without_account(sent: Result<(), AuthError>) -> Result<(), AuthError> {
    if let Err(error) = sent {
        tracing::error!(
            error = %error,
            "the account's email could not be sent; answered as an address without an account is"
        );
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A session answered to a client prints neither of its tokens (a `?session` in a log line
    /// would have printed the JWT).
    #[test]
    fn a_sessions_debug_shows_neither_token() {
        let session = AccessToken {
            access_token: Secret::new("eyJhbGciOiJIUzI1NiJ9.e30.c2ln"),
            token_type: "Bearer",
            expires_in: 900,
            device_token: Secret::new("device-s3cr3t"),
        };
        let printed = format!("{session:?}");
        assert!(!printed.contains("eyJ"), "{printed}");
        assert!(!printed.contains("s3cr3t"), "{printed}");
    }
}

//! Customer accounts, wishlists and outgoing email: the example's own data,
//! not the engine's.
//!
//! The engine has no customer store: it knows a customer only as the
//! [`CustomerId`] a cart carries (`Shop::set_customer`) and its orders keep,
//! so order history is `Shop::orders` filtered by that id. Who the customer
//! is (email, name, password hash, wishlist, reset links) lives here, **in
//! memory, behind a mutex: it is lost when the process stops**, even when
//! the engine runs on PostgreSQL. A real shop keeps it in its own tables.
//!
//! Passwords are argon2id hashes (`shop_kit::admin::hash_password`);
//! password-reset links carry a random token whose SHA-256 alone is kept,
//! valid once and for [`RESET_TTL_MINUTES`]. Email goes out through a
//! [`Notifier`]; [`Mailbox`] is the development one that keeps messages in
//! memory for the `/dev/mailbox` page.

use std::collections::{BTreeSet, HashMap};
use std::fmt;
use std::sync::{Mutex, MutexGuard, PoisonError};

use async_trait::async_trait;
use commerce_core::{CustomerId, ProductId, Timestamp};
use sha2::Digest as _;
use shop_kit::admin::{AccountError, generate_password, hash_password, verify_password};

/// How long a password-reset link works.
pub const RESET_TTL_MINUTES: i64 = 30;

/// The longest email address accepted (RFC 5321's path limit).
const MAX_EMAIL: usize = 254;
/// The longest display name.
const MAX_NAME: usize = 80;
/// The most products one wishlist keeps.
const MAX_WISHLIST: usize = 100;

/// An email to send.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Email {
    /// The address.
    pub to: String,
    /// The subject line.
    pub subject: String,
    /// The plain-text body.
    pub body: String,
}

/// An email could not be sent.
#[derive(Debug, thiserror::Error)]
#[error("could not send the email: {message}")]
pub struct NotifyError {
    /// What went wrong.
    pub message: String,
    /// Whether sending again may work.
    pub retryable: bool,
}

/// Sends the shop's email. Object-safe (`Arc<dyn Notifier>`): a shop plugs
/// in SMTP or an email API; development uses [`Mailbox`].
#[async_trait]
pub trait Notifier: Send + Sync + 'static {
    /// Sends `email`, or says why not.
    async fn send(&self, email: Email) -> Result<(), NotifyError>;
}

/// A sent email, as the mailbox keeps it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Sent {
    /// When it was sent (the engine's clock).
    pub at: Timestamp,
    /// The email.
    pub email: Email,
}

/// The development [`Notifier`]: keeps every message in memory (the last
/// [`Mailbox::CAPACITY`]), newest last, for the `/dev/mailbox` page.
#[derive(Default)]
pub struct Mailbox {
    sent: Mutex<Vec<Sent>>,
    clock: Option<commerce_core::Commerce>,
}

impl fmt::Debug for Mailbox {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Mailbox").finish_non_exhaustive()
    }
}

impl Mailbox {
    /// How many messages it keeps.
    pub const CAPACITY: usize = 200;

    /// A mailbox stamping messages with `commerce`'s clock.
    pub fn with_clock(commerce: commerce_core::Commerce) -> Self {
        Self {
            sent: Mutex::new(Vec::new()),
            clock: Some(commerce),
        }
    }

    /// Every message kept, oldest first.
    pub fn messages(&self) -> Vec<Sent> {
        lock(&self.sent).clone()
    }
}

#[async_trait]
impl Notifier for Mailbox {
    async fn send(&self, email: Email) -> Result<(), NotifyError> {
        let at = self
            .clock
            .as_ref()
            .map_or_else(chrono::Utc::now, commerce_core::Commerce::now);
        let mut sent = lock(&self.sent);
        if sent.len() >= Self::CAPACITY {
            sent.remove(0);
        }
        sent.push(Sent { at, email });
        Ok(())
    }
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    // Nothing here leaves the data half-changed on a panic.
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

/// A customer, as the pages see them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Customer {
    /// The id the engine's carts and orders carry.
    pub id: CustomerId,
    /// Their email address (lowercase), which they log in with.
    pub email: String,
    /// What the pages call them.
    pub name: String,
    /// Bumped when the password changes, so older sessions stop working.
    pub generation: u32,
    /// The products they saved for later.
    pub wishlist: BTreeSet<ProductId>,
}

struct Stored {
    customer: Customer,
    hash: String,
}

struct Reset {
    customer: CustomerId,
    expires_at: Timestamp,
}

#[derive(Default)]
struct Inner {
    by_email: HashMap<String, CustomerId>,
    customers: HashMap<CustomerId, Stored>,
    /// Reset links by the SHA-256 of their token.
    resets: HashMap<String, Reset>,
}

/// What an account operation refused.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[non_exhaustive]
pub enum AccountsError {
    /// Not an email address this shop accepts.
    #[error("{0:?} is not an email address")]
    Email(String),
    /// A name that is empty, too long or holds control characters.
    #[error("a name is 1 to 80 characters, without control characters")]
    Name,
    /// The two passwords typed differ.
    #[error("the two passwords differ")]
    PasswordsDiffer,
    /// The password is too weak, or could not be hashed.
    #[error("{0}")]
    Password(String),
    /// Someone signed up with this address already.
    #[error("an account with this email address exists already: log in, or reset its password")]
    Taken,
    /// The reset link is unknown, used or expired.
    #[error("this reset link is not valid: it was used already, or it expired")]
    ResetLink,
    /// No such customer (their session names one that is gone).
    #[error("no such customer")]
    Unknown,
    /// The wishlist is full.
    #[error("a wishlist keeps at most {MAX_WISHLIST} products")]
    WishlistFull,
}

impl From<AccountError> for AccountsError {
    fn from(error: AccountError) -> Self {
        Self::Password(error.to_string())
    }
}

/// A parsed, lowercased email address: one `@`, something either side, a
/// dot in the domain, no spaces or control characters, at most 254 bytes.
pub fn parse_email(input: &str) -> Result<String, AccountsError> {
    let email = input.trim().to_lowercase();
    let valid = email.len() <= MAX_EMAIL
        && !email.chars().any(|c| c.is_whitespace() || c.is_control())
        && email.split_once('@').is_some_and(|(local, domain)| {
            !local.is_empty()
                && !domain.contains('@')
                && domain.contains('.')
                && !domain.starts_with('.')
                && !domain.ends_with('.')
        });
    if valid {
        Ok(email)
    } else {
        Err(AccountsError::Email(input.trim().to_owned()))
    }
}

fn parse_name(input: &str) -> Result<String, AccountsError> {
    let name = input.trim();
    if name.is_empty() || name.chars().count() > MAX_NAME || name.chars().any(char::is_control) {
        return Err(AccountsError::Name);
    }
    Ok(name.to_owned())
}

fn token_digest(token: &str) -> String {
    sha2::Sha256::digest(token.as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// argon2 is slow on purpose: hash off the async workers.
async fn hash(password: String) -> Result<String, AccountsError> {
    tokio::task::spawn_blocking(move || hash_password(&password))
        .await
        .map_err(|e| AccountsError::Password(e.to_string()))?
        .map_err(AccountsError::from)
}

async fn verify(hash: String, password: String) -> bool {
    tokio::task::spawn_blocking(move || verify_password(&hash, &password))
        .await
        .unwrap_or(false)
}

/// The shop's customers, in memory.
pub struct Accounts {
    inner: Mutex<Inner>,
    /// Unknown addresses are checked against this, so a wrong address takes
    /// as long as a wrong password.
    dummy_hash: String,
}

impl fmt::Debug for Accounts {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Accounts").finish_non_exhaustive()
    }
}

impl Accounts {
    /// No customers yet.
    pub fn new() -> Result<Self, AccountsError> {
        Ok(Self {
            inner: Mutex::new(Inner::default()),
            dummy_hash: hash_password(&generate_password())?,
        })
    }

    /// A new account. Refused when the address is taken, the name or
    /// address is not one, the passwords differ or the password has fewer
    /// than 12 characters.
    pub async fn sign_up(
        &self,
        email: &str,
        name: &str,
        password: &str,
        confirm: &str,
    ) -> Result<Customer, AccountsError> {
        let email = parse_email(email)?;
        let name = parse_name(name)?;
        if password != confirm {
            return Err(AccountsError::PasswordsDiffer);
        }
        if lock(&self.inner).by_email.contains_key(&email) {
            return Err(AccountsError::Taken);
        }
        let hash = hash(password.to_owned()).await?;
        let id = CustomerId::parse(format!("cust-{}", uuid::Uuid::new_v4().simple()))
            .map_err(|e| AccountsError::Password(e.to_string()))?;
        let customer = Customer {
            id: id.clone(),
            email: email.clone(),
            name,
            generation: 0,
            wishlist: BTreeSet::new(),
        };
        let mut inner = lock(&self.inner);
        // Checked again under the lock: two sign-ups may race.
        if inner.by_email.contains_key(&email) {
            return Err(AccountsError::Taken);
        }
        inner.by_email.insert(email, id.clone());
        inner.customers.insert(
            id,
            Stored {
                customer: customer.clone(),
                hash,
            },
        );
        Ok(customer)
    }

    /// The customer whose address and password these are.
    pub async fn log_in(&self, email: &str, password: &str) -> Option<Customer> {
        let found = parse_email(email).ok().and_then(|email| {
            let inner = lock(&self.inner);
            let id = inner.by_email.get(&email)?;
            inner
                .customers
                .get(id)
                .map(|s| (s.customer.clone(), s.hash.clone()))
        });
        match found {
            Some((customer, hash)) => verify(hash, password.to_owned()).await.then_some(customer),
            None => {
                verify(self.dummy_hash.clone(), password.to_owned()).await;
                None
            }
        }
    }

    /// Customer `id`.
    pub fn customer(&self, id: &CustomerId) -> Option<Customer> {
        lock(&self.inner)
            .customers
            .get(id)
            .map(|s| s.customer.clone())
    }

    /// A reset link's token for the account of `email`, valid until `now`
    /// plus [`RESET_TTL_MINUTES`]; `None` when there is no such account
    /// (the page says the same either way).
    pub fn start_reset(&self, email: &str, now: Timestamp) -> Option<(Customer, String)> {
        let email = parse_email(email).ok()?;
        let mut inner = lock(&self.inner);
        let id = inner.by_email.get(&email)?.clone();
        let customer = inner.customers.get(&id)?.customer.clone();
        let token = format!(
            "{}{}",
            uuid::Uuid::new_v4().simple(),
            uuid::Uuid::new_v4().simple()
        );
        inner.resets.retain(|_, r| r.expires_at > now);
        inner.resets.insert(
            token_digest(&token),
            Reset {
                customer: id,
                expires_at: now + chrono::Duration::minutes(RESET_TTL_MINUTES),
            },
        );
        Some((customer, token))
    }

    /// Whether `token` is a reset link that still works.
    pub fn reset_is_valid(&self, token: &str, now: Timestamp) -> bool {
        lock(&self.inner)
            .resets
            .get(&token_digest(token))
            .is_some_and(|r| r.expires_at > now)
    }

    /// Sets a new password through reset link `token`, which then stops
    /// working, as do the customer's other links and sessions.
    pub async fn finish_reset(
        &self,
        token: &str,
        password: &str,
        confirm: &str,
        now: Timestamp,
    ) -> Result<Customer, AccountsError> {
        if !self.reset_is_valid(token, now) {
            return Err(AccountsError::ResetLink);
        }
        if password != confirm {
            return Err(AccountsError::PasswordsDiffer);
        }
        let hash = hash(password.to_owned()).await?;
        let mut inner = lock(&self.inner);
        // Taken under the lock: of two uses of one link, one wins.
        let reset = inner
            .resets
            .remove(&token_digest(token))
            .filter(|r| r.expires_at > now)
            .ok_or(AccountsError::ResetLink)?;
        inner.resets.retain(|_, r| r.customer != reset.customer);
        let stored = inner
            .customers
            .get_mut(&reset.customer)
            .ok_or(AccountsError::Unknown)?;
        stored.hash = hash;
        stored.customer.generation = stored.customer.generation.saturating_add(1);
        Ok(stored.customer.clone())
    }

    /// Adds (`true`) or removes `product` from `id`'s wishlist.
    pub fn set_wished(
        &self,
        id: &CustomerId,
        product: ProductId,
        wished: bool,
    ) -> Result<Customer, AccountsError> {
        let mut inner = lock(&self.inner);
        let stored = inner.customers.get_mut(id).ok_or(AccountsError::Unknown)?;
        let list = &mut stored.customer.wishlist;
        if wished {
            if list.len() >= MAX_WISHLIST && !list.contains(&product) {
                return Err(AccountsError::WishlistFull);
            }
            list.insert(product);
        } else {
            list.remove(&product);
        }
        Ok(stored.customer.clone())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const PASSWORD: &str = "correct horse battery";

    fn at(seconds: i64) -> Timestamp {
        chrono::DateTime::from_timestamp(1_767_258_000 + seconds, 0).unwrap_or_default()
    }

    #[test]
    fn email_addresses_are_parsed() {
        assert_eq!(
            parse_email(" Ann@Example.COM "),
            Ok("ann@example.com".into())
        );
        for bad in [
            "",
            "ann",
            "@example.com",
            "ann@",
            "ann@example",
            "a b@c.d",
            "a@b@c.d",
        ] {
            assert!(parse_email(bad).is_err(), "{bad:?}");
        }
    }

    #[tokio::test]
    async fn sign_up_log_in_and_refusals() -> Result<(), AccountsError> {
        let accounts = Accounts::new()?;
        let ann = accounts
            .sign_up("ann@example.com", "Ann", PASSWORD, PASSWORD)
            .await?;
        assert_eq!(
            accounts
                .sign_up("ANN@example.com", "Ann", PASSWORD, PASSWORD)
                .await,
            Err(AccountsError::Taken)
        );
        assert_eq!(
            accounts
                .sign_up("bob@example.com", "Bob", PASSWORD, "other")
                .await,
            Err(AccountsError::PasswordsDiffer)
        );
        assert!(matches!(
            accounts
                .sign_up("bob@example.com", "Bob", "short", "short")
                .await,
            Err(AccountsError::Password(_))
        ));
        assert_eq!(
            accounts.log_in("ann@example.com", PASSWORD).await,
            Some(ann.clone())
        );
        assert_eq!(
            accounts.log_in("ann@example.com", "wrong one!!!").await,
            None
        );
        assert_eq!(accounts.log_in("nobody@example.com", PASSWORD).await, None);
        assert_eq!(accounts.customer(&ann.id), Some(ann));
        Ok(())
    }

    #[tokio::test]
    async fn a_reset_link_works_once_and_not_after_it_expires() -> Result<(), AccountsError> {
        let accounts = Accounts::new()?;
        let ann = accounts
            .sign_up("ann@example.com", "Ann", PASSWORD, PASSWORD)
            .await?;
        assert!(accounts.start_reset("nobody@example.com", at(0)).is_none());
        let (_, token) = accounts
            .start_reset("ann@example.com", at(0))
            .ok_or(AccountsError::Unknown)?;
        let new = "a brand new password";
        let changed = accounts.finish_reset(&token, new, new, at(60)).await?;
        assert_eq!(changed.generation, ann.generation + 1);
        assert_eq!(
            accounts.finish_reset(&token, new, new, at(61)).await,
            Err(AccountsError::ResetLink),
            "used once"
        );
        assert!(accounts.log_in("ann@example.com", new).await.is_some());
        assert!(accounts.log_in("ann@example.com", PASSWORD).await.is_none());

        let (_, late) = accounts
            .start_reset("ann@example.com", at(0))
            .ok_or(AccountsError::Unknown)?;
        assert!(!accounts.reset_is_valid(&late, at(RESET_TTL_MINUTES * 60)));
        assert_eq!(
            accounts
                .finish_reset(&late, new, new, at(RESET_TTL_MINUTES * 60 + 1))
                .await,
            Err(AccountsError::ResetLink),
            "expired"
        );
        Ok(())
    }

    #[tokio::test]
    async fn wishlists_and_the_mailbox() -> Result<(), Box<dyn std::error::Error>> {
        let accounts = Accounts::new()?;
        let ann = accounts
            .sign_up("ann@example.com", "Ann", PASSWORD, PASSWORD)
            .await?;
        let product = ProductId::new();
        assert!(
            accounts
                .set_wished(&ann.id, product, true)?
                .wishlist
                .contains(&product)
        );
        assert!(
            accounts
                .set_wished(&ann.id, product, false)?
                .wishlist
                .is_empty()
        );

        let mailbox = Mailbox::default();
        let notifier: &dyn Notifier = &mailbox;
        notifier
            .send(Email {
                to: "ann@example.com".into(),
                subject: "Hello".into(),
                body: "Hi".into(),
            })
            .await?;
        assert_eq!(mailbox.messages().len(), 1);
        Ok(())
    }
}

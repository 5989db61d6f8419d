//! The stores' error: a conflict named by the port that failed, an absent item, or a store that
//! could not be reached. Conflicts are enum variants, so a typo does not compile and a mapping to
//! HTTP is an exhaustive `match`.

use super::BoxError;

/// A store write failed. `C` is the port's own conflict enum ([`super::UserConflict`],
/// [`super::ExamConflict`], …): the condition that did not hold. Reads can only fail with
/// [`StoreUnavailable`], and their signatures say so.
#[derive(Debug, thiserror::Error)]
pub enum StoreError<C> {
    /// A uniqueness or state condition did not hold (e.g. the email address is taken).
    #[error("conflict: {0}")]
    Conflict(C),
    /// The item does not exist.
    #[error("not found")]
    NotFound,
    /// The store could not be reached or answered with an error.
    #[error(transparent)]
    Unavailable(#[from] StoreUnavailable),
}

/// The store could not be reached or answered with an error: nothing the caller did wrong.
#[derive(Debug, thiserror::Error)]
#[error("store unavailable: {context}")]
pub struct StoreUnavailable {
    /// What we were doing.
    pub context: &'static str,
    /// The underlying error.
    #[source]
    pub source: BoxError,
}

impl StoreUnavailable {
    /// Wraps an infrastructure error with what we were doing.
    pub fn new(context: &'static str, source: impl Into<BoxError>) -> Self {
        Self {
            context,
            source: source.into(),
        }
    }
}

impl<C> StoreError<C> {
    /// Wraps an infrastructure error with what we were doing.
    pub fn unavailable(context: &'static str, source: impl Into<BoxError>) -> Self {
        Self::Unavailable(StoreUnavailable::new(context, source))
    }

    /// The same error with its conflict turned into another port's (for an operation that
    /// spans two ports).
    pub fn map_conflict<D>(self, f: impl FnOnce(C) -> D) -> StoreError<D> {
        match self {
            Self::Conflict(conflict) => StoreError::Conflict(f(conflict)),
            Self::NotFound => StoreError::NotFound,
            Self::Unavailable(unavailable) => StoreError::Unavailable(unavailable),
        }
    }
}

/// Declares a port's conflict enum with `ALL` (every variant, so a test can run each one through
/// every mapping and a new variant cannot be forgotten there) and a `Display` of stable codes.
macro_rules! conflicts {
    (
        $(#[$meta:meta])*
        pub enum $name:ident {
            $( $(#[$vmeta:meta])* $variant:ident => $code:literal ),+ $(,)?
        }
    ) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq)]
        pub enum $name {
            $( $(#[$vmeta])* $variant ),+
        }

        impl $name {
            /// Every variant.
            pub const ALL: &'static [Self] = &[$(Self::$variant),+];

            /// A stable, lower-case code (for logs).
            pub const fn code(self) -> &'static str {
                match self {
                    $( Self::$variant => $code ),+
                }
            }
        }

        impl ::std::fmt::Display for $name {
            fn fmt(&self, f: &mut ::std::fmt::Formatter<'_>) -> ::std::fmt::Result {
                f.write_str(self.code())
            }
        }
    };
}
pub(crate) use conflicts;

//! Paged lists at the edge: `?limit=` and `?cursor=` parsed, and cursors signed. A cursor is a
//! position signed for its list's scope ([`CursorKeys`]): a client can only hand back one this
//! API issued, and only to the list it was issued for; anything else is a 400.

use lambda_http::{Request, RequestExt};
use oes_domain::security::CursorKeys;
use serde::Serialize;
use serde::de::DeserializeOwned;

use super::ApiError;

/// The largest page a list answers.
pub const MAX_PAGE: usize = 100;

/// Page size without `?limit=`.
const DEFAULT_PAGE: usize = 20;

/// Opens and signs the cursors of an API's lists. A list's scope names it (and what it is of:
/// `results:<exam>`); a cursor of one scope is refused by every other.
#[derive(Clone)]
pub struct Cursors(CursorKeys);

impl Cursors {
    /// Cursors under `keys`.
    pub fn new(keys: CursorKeys) -> Self {
        Self(keys)
    }

    /// `?limit=` (1–100, default 20) and the position of `?cursor=`, which must be a cursor this
    /// API issued for `scope`.
    pub fn query<P: DeserializeOwned>(
        &self,
        request: &Request,
        scope: &str,
    ) -> Result<(usize, Option<P>), ApiError> {
        let query = request.query_string_parameters_ref();
        let limit = match query.and_then(|q| q.first("limit")) {
            None => DEFAULT_PAGE,
            Some(raw) => raw
                .parse::<usize>()
                .ok()
                .filter(|n| (1..=MAX_PAGE).contains(n))
                .ok_or_else(|| ApiError::validation("limit: must be a number from 1 to 100"))?,
        };
        let after = query
            .and_then(|q| q.first("cursor"))
            .map(|cursor| self.0.open(scope, cursor))
            .transpose()?;
        Ok((limit, after))
    }

    /// The cursor of `position` in the list `scope` names.
    pub fn sign<P: Serialize>(&self, scope: &str, position: &P) -> String {
        self.0.sign(scope, position)
    }
}

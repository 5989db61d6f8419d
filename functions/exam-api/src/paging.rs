//! Paged lists at the edge: `?limit=` and `?cursor=` parsed, and the answer with one page and the
//! cursor of the next. A cursor is a position signed for its list ([`CursorKeys`]): a client can
//! only hand back one this API issued, and only to the list it was issued for; anything else is a
//! 400.

use lambda_http::{Request, RequestExt};
use oes_domain::exam::ExamId;
use oes_domain::ports::JobState;
use oes_domain::security::CursorKeys;
use oes_domain::user::UserId;
use oes_runtime::http::ApiError;
use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::service::{MAX_PAGE, Page};

/// Page size without `?limit=`.
const DEFAULT_PAGE: usize = 20;

/// A list that pages. Each is a scope of its own: a cursor of one is refused by every other.
#[derive(Debug, Clone, Copy)]
pub enum List<'a> {
    /// `GET /exams`.
    Published,
    /// `GET /exams/{exam_id}/results`.
    Results(&'a ExamId),
    /// `GET /me/attempts`, of this student.
    AttemptsOf(&'a UserId),
    /// `GET /admin/email-jobs`, of this state and kind (`None`: every kind).
    EmailJobs(JobState, Option<&'a str>),
}

impl List<'_> {
    fn scope(self) -> String {
        match self {
            Self::Published => "exams".to_owned(),
            Self::Results(exam) => format!("results:{exam}"),
            Self::AttemptsOf(user) => format!("attempts:{user}"),
            Self::EmailJobs(state, kind) => {
                format!("email-jobs:{}:{}", state.as_str(), kind.unwrap_or("*"))
            }
        }
    }
}

/// Opens and signs the cursors of exam-api's lists.
#[derive(Clone)]
pub struct Cursors(CursorKeys);

impl Cursors {
    /// Cursors under `keys`.
    pub fn new(keys: CursorKeys) -> Self {
        Self(keys)
    }

    /// `?limit=` (1–100, default 20) and the position of `?cursor=`, which must be a cursor this
    /// API issued for `list`.
    pub fn query<P: DeserializeOwned>(
        &self,
        request: &Request,
        list: List<'_>,
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
            .map(|cursor| self.0.open(&list.scope(), cursor))
            .transpose()?;
        Ok((limit, after))
    }

    /// The cursor of `position` in `list`.
    pub fn sign<P: Serialize>(&self, list: List<'_>, position: &P) -> String {
        self.0.sign(&list.scope(), position)
    }

    /// The `next_cursor` of a page: the cursor after its last item, signed for `list`, or `None`
    /// on the last page.
    pub fn next<T, P: Serialize>(
        &self,
        list: List<'_>,
        page: &Page<T>,
        position: impl Fn(&T) -> P,
    ) -> Option<String> {
        page.continues_after()
            .map(|last| self.0.sign(&list.scope(), &position(last)))
    }
}

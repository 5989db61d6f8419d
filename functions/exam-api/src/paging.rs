//! exam-api's paged lists: each a scope of its own for the signed cursors of
//! [`oes_runtime::http::paging`], so a cursor of one is refused by every other.

use lambda_http::Request;
use oes_domain::exam::ExamId;
use oes_domain::user::UserId;
use oes_runtime::http::ApiError;
use oes_runtime::http::paging;
use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::service::Page;

/// A list that pages.
#[derive(Debug, Clone, Copy)]
pub enum List<'a> {
    /// `GET /exams`.
    Published,
    /// `GET /exams/{exam_id}/results`.
    Results(&'a ExamId),
    /// `GET /me/attempts`, of this student.
    AttemptsOf(&'a UserId),
}

impl List<'_> {
    fn scope(self) -> String {
        match self {
            Self::Published => "exams".to_owned(),
            Self::Results(exam) => format!("results:{exam}"),
            Self::AttemptsOf(user) => format!("attempts:{user}"),
        }
    }
}

/// Opens and signs the cursors of exam-api's lists.
#[derive(Clone)]
pub struct Cursors(paging::Cursors);

impl Cursors {
    /// Cursors over the API's cursor keys.
    pub fn new(cursors: paging::Cursors) -> Self {
        Self(cursors)
    }

    /// `?limit=` and the position of `?cursor=`, which must be a cursor issued for `list`.
    pub fn query<P: DeserializeOwned>(
        &self,
        request: &Request,
        list: List<'_>,
    ) -> Result<(usize, Option<P>), ApiError> {
        self.0.query(request, &list.scope())
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

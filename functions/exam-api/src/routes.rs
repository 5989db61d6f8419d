//! The router and the thin handlers: match the route, parse path ids and the body into domain
//! types, call [`ExamService`], map the result.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Instant;

use lambda_http::http::{Method, StatusCode};
use lambda_http::{Body, Request, Response};
use oes_domain::clock::Clock;
use oes_domain::exam::{
    AttemptCursor, AttemptId, ExamCursor, ExamFields, ExamId, ExamRules, QuestionFields,
    QuestionId, ReviewFrom, ReviewPolicy, ReviewShows, parse_description, parse_duration,
    parse_pass_mark, parse_time, parse_title,
};
use oes_domain::security::JwtKeys;
use oes_domain::user::UserProfile;
use oes_runtime::http::paging;
use oes_runtime::http::{
    ApiError, Whole, bearer_token, finish, json, no_content_json, parse_json, request_span,
    route_path, with_cache_status, within_deadline,
};
use oes_runtime::session::Sessions;
use oes_runtime::wiring::ApiAdapters;
use serde::{Deserialize, Deserializer};
use tracing::Instrument;
use utoipa::ToSchema;

use crate::error::ExamError;
use crate::paging::{Cursors, List};
use crate::service::{ExamPatch, ExamService, QuestionPatch};
use crate::views;

/// What exam-api needs, built once at init.
pub struct ExamApi {
    /// Who is calling.
    pub sessions: Sessions,
    /// The cursors of the lists (a key derived from the JWT secret).
    pub cursors: Cursors,
    /// Exams, questions, attempts.
    pub exams: ExamService,
}

impl ExamApi {
    /// exam-api over `adapters`.
    pub fn new(adapters: &ApiAdapters, jwt: JwtKeys, clock: Arc<dyn Clock>) -> Self {
        Self {
            cursors: Cursors::new(paging::Cursors::new(jwt.cursors().clone())),
            sessions: Sessions::new(jwt, adapters.users.clone(), adapters.cache.clone()),
            exams: ExamService::new(
                adapters.exams.clone(),
                adapters.attempts.clone(),
                adapters.cache.clone(),
                adapters.emails.clone(),
                clock,
            ),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Route {
    ListExams,
    CreateExam,
    GetExam,
    PatchExam,
    DeleteExam,
    Publish,
    ListQuestions,
    AddQuestion,
    PatchQuestion,
    DeleteQuestion,
    StartAttempt,
    ExamResults,
    GetAttempt,
    SaveAnswers,
    Submit,
    MyAttempts,
}

/// Every exam route: method, path template, route.
const TABLE: &[(&str, &str, Route)] = &[
    ("GET", "/exams", Route::ListExams),
    ("POST", "/exams", Route::CreateExam),
    ("GET", "/exams/{exam_id}", Route::GetExam),
    ("PATCH", "/exams/{exam_id}", Route::PatchExam),
    ("DELETE", "/exams/{exam_id}", Route::DeleteExam),
    ("POST", "/exams/{exam_id}/publish", Route::Publish),
    ("GET", "/exams/{exam_id}/questions", Route::ListQuestions),
    ("POST", "/exams/{exam_id}/questions", Route::AddQuestion),
    (
        "PATCH",
        "/exams/{exam_id}/questions/{question_id}",
        Route::PatchQuestion,
    ),
    (
        "DELETE",
        "/exams/{exam_id}/questions/{question_id}",
        Route::DeleteQuestion,
    ),
    ("POST", "/exams/{exam_id}/attempts", Route::StartAttempt),
    ("GET", "/exams/{exam_id}/results", Route::ExamResults),
    ("GET", "/attempts/{attempt_id}", Route::GetAttempt),
    ("PUT", "/attempts/{attempt_id}/answers", Route::SaveAnswers),
    ("POST", "/attempts/{attempt_id}/submit", Route::Submit),
    ("GET", "/me/attempts", Route::MyAttempts),
];

/// Every route this function serves, as `(method, path template)`.
pub fn routes() -> impl Iterator<Item = (&'static str, &'static str)> {
    TABLE.iter().map(|(method, path, _)| (*method, *path))
}

/// The ids in a request path, parsed. An id of the wrong shape names nothing: 404.
#[derive(Debug, Default)]
struct PathIds {
    exam: Option<ExamId>,
    question: Option<QuestionId>,
    attempt: Option<AttemptId>,
}

impl PathIds {
    fn exam(&self) -> Result<&ExamId, ApiError> {
        self.exam.as_ref().ok_or_else(ApiError::internal)
    }
    fn question(&self) -> Result<&QuestionId, ApiError> {
        self.question.as_ref().ok_or_else(ApiError::internal)
    }
    fn attempt(&self) -> Result<&AttemptId, ApiError> {
        self.attempt.as_ref().ok_or_else(ApiError::internal)
    }
}

/// Matches `path` against a template; `Some(Err)` when it matches but an id is malformed.
fn match_template(template: &str, path: &str) -> Option<Result<PathIds, ApiError>> {
    let mut ids = PathIds::default();
    let mut well_formed = true;
    let mut wanted = template.split('/');
    let mut given = path.split('/');
    loop {
        match (wanted.next(), given.next()) {
            (None, None) => break,
            (Some(w), Some(g)) if w.starts_with('{') && !g.is_empty() => {
                let parsed = match w {
                    "{exam_id}" => ExamId::parse(g).map(|id| ids.exam = Some(id)),
                    "{question_id}" => QuestionId::parse(g).map(|id| ids.question = Some(id)),
                    "{attempt_id}" => AttemptId::parse(g).map(|id| ids.attempt = Some(id)),
                    _ => return None,
                };
                well_formed &= parsed.is_some();
            }
            (Some(w), Some(g)) if w == g => {}
            _ => return None,
        }
    }
    Some(if well_formed {
        Ok(ids)
    } else {
        Err(ApiError::not_found())
    })
}

/// The route for a method and path: 404 if no template matches, 405 if only the method is
/// wrong.
fn resolve(method: &Method, path: &str) -> Result<(Route, PathIds), ApiError> {
    let mut path_matched = false;
    for (wanted, template, route) in TABLE {
        if let Some(ids) = match_template(template, path) {
            if method.as_str() == *wanted {
                return Ok((*route, ids?));
            }
            path_matched = true;
        }
    }
    Err(if path_matched {
        ApiError::method_not_allowed()
    } else {
        ApiError::not_found()
    })
}

/// The Lambda entry point: routes `request` and logs one line for it. Expected failures are
/// HTTP answers; this never returns `Err`.
pub async fn handle(api: &ExamApi, request: Request) -> Result<Response<Body>, lambda_http::Error> {
    let started = Instant::now();
    let path = route_path(&request);
    let span = request_span(&request);
    let result = within_deadline(&request, route(api, &request, path))
        .instrument(span.clone())
        .await;
    Ok(span.in_scope(|| finish(&request, started, result)))
}

async fn route(api: &ExamApi, request: &Request, path: &str) -> Result<Response<Body>, ApiError> {
    // Every route needs a caller, so the token is checked first: without one, every path and
    // method answers 401 alike. That check reads nothing; the caller's
    // profile is read next — on the hot reads while the route reads what it shows (one round
    // trip to the cache instead of one after another), on the others before anything else.
    let claims = api
        .sessions
        .verify(bearer_token(request)?)
        .map_err(ExamError::from)?;
    let (route, ids) = resolve(request.method(), path)?;
    let pending_caller = async {
        let (caller, _) = api
            .sessions
            .caller(&claims)
            .await
            .map_err(ExamError::from)?;
        Ok::<_, ExamError>(caller)
    };
    match route {
        Route::GetExam => get_exam(&api.exams, pending_caller, &ids).await,
        Route::ListQuestions => list_questions(&api.exams, pending_caller, &ids).await,
        Route::GetAttempt => get_attempt(&api.exams, pending_caller, &ids).await,
        route => dispatch(api, request, route, &ids, &pending_caller.await?).await,
    }
}

/// `GET /exams/{id}`: the outline, read while `caller` is resolved.
async fn get_exam(
    service: &ExamService,
    caller: impl Future<Output = Result<UserProfile, ExamError>>,
    ids: &PathIds,
) -> Result<Response<Body>, ApiError> {
    let (outline, status) = service.exam(caller, ids.exam()?).await?;
    Ok(with_cache_status(
        json(StatusCode::OK, &views::exam_outline(&outline)),
        status,
    ))
}

/// `GET /exams/{id}/questions`: read while `caller` is resolved.
async fn list_questions(
    service: &ExamService,
    caller: impl Future<Output = Result<UserProfile, ExamError>>,
    ids: &PathIds,
) -> Result<Response<Body>, ApiError> {
    let (questions, status) = service.questions(caller, ids.exam()?).await?;
    let body = views::QuestionList {
        questions: questions.iter().map(views::question).collect(),
    };
    Ok(with_cache_status(json(StatusCode::OK, &body), status))
}

/// `GET /attempts/{id}`: the attempt read while `caller` is resolved, then its paper.
async fn get_attempt(
    service: &ExamService,
    caller: impl Future<Output = Result<UserProfile, ExamError>>,
    ids: &PathIds,
) -> Result<Response<Body>, ApiError> {
    let (attempt, status) = service.attempt(caller, ids.attempt()?).await?;
    Ok(with_cache_status(
        json(StatusCode::OK, &views::attempt_view(attempt)),
        status,
    ))
}

/// Every route, for a caller already known.
async fn dispatch(
    api: &ExamApi,
    request: &Request,
    route: Route,
    ids: &PathIds,
    caller: &UserProfile,
) -> Result<Response<Body>, ApiError> {
    let service = &api.exams;
    let known = || std::future::ready(Ok(caller.clone()));
    match route {
        Route::ListExams => {
            let list = List::Published;
            let (limit, after) = api.cursors.query(request, list)?;
            let (page, status) = service.list_published(limit, after.as_ref()).await?;
            let body = views::ExamList {
                exams: page.items.iter().map(views::exam).collect(),
                next_cursor: api.cursors.next(list, &page, ExamCursor::after),
            };
            Ok(with_cache_status(json(StatusCode::OK, &body), status))
        }
        Route::CreateExam => {
            may_author(caller)?;
            create_exam(service, caller, request).await
        }
        Route::GetExam => get_exam(service, known(), ids).await,
        Route::PatchExam => {
            may_author(caller)?;
            let patch = exam_patch(parse_json(request)?)?;
            let exam = service.update_exam(caller, ids.exam()?, patch).await?;
            Ok(json(StatusCode::OK, &views::exam(&exam)))
        }
        Route::DeleteExam => {
            service.delete_exam(caller, ids.exam()?).await?;
            Ok(no_content_json(StatusCode::OK, "deleted"))
        }
        Route::Publish => {
            let exam = service.publish(caller, ids.exam()?).await?;
            Ok(json(StatusCode::OK, &views::exam(&exam)))
        }
        Route::ListQuestions => list_questions(service, known(), ids).await,
        Route::AddQuestion => {
            may_author(caller)?;
            let body: QuestionBody = parse_json(request)?;
            let fields = QuestionFields::parse(
                &body.text,
                &body.options,
                body.correct_option.0,
                body.points.0,
            )?;
            let question = service.add_question(caller, ids.exam()?, fields).await?;
            Ok(json(StatusCode::CREATED, &views::question(&question)))
        }
        Route::PatchQuestion => {
            may_author(caller)?;
            let body: QuestionPatchBody = parse_json(request)?;
            let patch = QuestionPatch {
                text: body.text,
                options: body.options,
                correct_option: body.correct_option.map(u64::from),
                points: body.points.map(u64::from),
            };
            let question = service
                .update_question(caller, ids.exam()?, ids.question()?, patch)
                .await?;
            Ok(json(StatusCode::OK, &views::question(&question)))
        }
        Route::DeleteQuestion => {
            service
                .delete_question(caller, ids.exam()?, ids.question()?)
                .await?;
            Ok(no_content_json(StatusCode::OK, "deleted"))
        }
        Route::StartAttempt => {
            let attempt = service.start_attempt(caller, ids.exam()?).await?;
            Ok(json(StatusCode::CREATED, &views::attempt_view(attempt)))
        }
        Route::ExamResults => {
            may_author(caller)?;
            let list = List::Results(ids.exam()?);
            let (limit, after) = api.cursors.query(request, list)?;
            let page = service
                .results(caller, ids.exam()?, limit, after.as_ref())
                .await?;
            let body = views::ResultList {
                results: page.items.iter().map(views::summary).collect(),
                next_cursor: api.cursors.next(list, &page, AttemptCursor::after),
            };
            Ok(json(StatusCode::OK, &body))
        }
        Route::GetAttempt => get_attempt(service, known(), ids).await,
        Route::SaveAnswers => {
            let body: AnswersBody = parse_json(request)?;
            let answers = body.answers.into_iter().map(|(q, o)| (q, o.0)).collect();
            let attempt = service
                .save_answers(caller, ids.attempt()?, &answers)
                .await?;
            Ok(json(StatusCode::OK, &views::attempt(&attempt)))
        }
        Route::Submit => {
            let attempt = service.submit(caller, ids.attempt()?).await?;
            Ok(json(StatusCode::OK, &views::attempt_view(attempt)))
        }
        Route::MyAttempts => {
            let list = List::AttemptsOf(&caller.id);
            let (limit, after) = api.cursors.query(request, list)?;
            let (page, status) = service.my_attempts(caller, limit, after.as_ref()).await?;
            let body = views::AttemptList {
                attempts: page.items.iter().map(views::summary).collect(),
                next_cursor: api.cursors.next(list, &page, AttemptCursor::after),
            };
            Ok(with_cache_status(json(StatusCode::OK, &body), status))
        }
    }
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct CreateExamBody {
    #[schema(schema_with = crate::openapi::title)]
    title: String,
    #[serde(default)]
    #[schema(schema_with = crate::openapi::description)]
    description: String,
    /// Minutes an attempt may last.
    #[schema(value_type = u64, minimum = 1, maximum = 1440)]
    duration_minutes: Whole,
    #[schema(value_type = u64, minimum = 0, maximum = 100)]
    pass_mark_percent: Whole,
    /// RFC 3339; before it no attempt starts.
    #[schema(format = DateTime)]
    opens_at: Option<String>,
    /// RFC 3339, after `opens_at`; from it no attempt starts.
    #[schema(format = DateTime)]
    closes_at: Option<String>,
    /// Attempts each student may start (default 1).
    #[schema(value_type = Option<u64>, minimum = 1, maximum = 100)]
    max_attempts: Option<Whole>,
    review: Option<ReviewBody>,
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct ExamPatchBody {
    #[schema(schema_with = crate::openapi::title)]
    title: Option<String>,
    #[schema(schema_with = crate::openapi::description)]
    description: Option<String>,
    #[schema(value_type = Option<u64>, minimum = 1, maximum = 1440)]
    duration_minutes: Option<Whole>,
    #[schema(value_type = Option<u64>, minimum = 0, maximum = 100)]
    pass_mark_percent: Option<Whole>,
    /// RFC 3339; `null` removes the opening.
    #[serde(default, deserialize_with = "nullable")]
    #[schema(format = DateTime)]
    opens_at: Option<Option<String>>,
    /// RFC 3339; `null` removes the close.
    #[serde(default, deserialize_with = "nullable")]
    #[schema(format = DateTime)]
    closes_at: Option<Option<String>>,
    #[schema(value_type = Option<u64>, minimum = 1, maximum = 100)]
    max_attempts: Option<Whole>,
    review: Option<ReviewBody>,
}

// The `review` a request gives: `ReviewPolicy`, refusing a field it does not know as the body
// around it does (the stored policy reads past one, as stored records do).
/// What a finished attempt shows its student, and from when (`from: close` needs the exam's
/// `closes_at`).
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct ReviewBody {
    /// The score, or also which answers were right.
    shows: ReviewShows,
    /// From submission, or from the exam's close.
    from: ReviewFrom,
}

impl From<ReviewBody> for ReviewPolicy {
    fn from(ReviewBody { shows, from }: ReviewBody) -> Self {
        Self { shows, from }
    }
}

/// A field that may be `null`: `Some(None)` then, and `None` (by default) when absent.
fn nullable<'de, D: Deserializer<'de>, T: Deserialize<'de>>(
    field: D,
) -> Result<Option<Option<T>>, D::Error> {
    Option::<T>::deserialize(field).map(Some)
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct QuestionBody {
    #[schema(schema_with = crate::openapi::question_text)]
    text: String,
    #[schema(schema_with = crate::openapi::options)]
    options: Vec<String>,
    /// Index into `options`.
    #[schema(value_type = u64, minimum = 0, maximum = 9)]
    correct_option: Whole,
    #[schema(value_type = u64, minimum = 1, maximum = 1000)]
    points: Whole,
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct QuestionPatchBody {
    #[schema(schema_with = crate::openapi::question_text)]
    text: Option<String>,
    #[schema(schema_with = crate::openapi::options)]
    options: Option<Vec<String>>,
    #[schema(value_type = Option<u64>, minimum = 0, maximum = 9)]
    correct_option: Option<Whole>,
    #[schema(value_type = Option<u64>, minimum = 1, maximum = 1000)]
    points: Option<Whole>,
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct AnswersBody {
    /// Question id → the index of the chosen option.
    #[schema(value_type = BTreeMap<String, u64>)]
    answers: BTreeMap<String, Whole>,
}

/// 403 for a caller who may not author exams: checked before a route reads its body or query,
/// so a wrong role is 403 whatever was sent (the service checks it again).
fn may_author(caller: &UserProfile) -> Result<(), ApiError> {
    crate::access::may_author(caller).map_err(ApiError::from)
}

async fn create_exam(
    service: &ExamService,
    caller: &UserProfile,
    request: &Request,
) -> Result<Response<Body>, ApiError> {
    let body: CreateExamBody = parse_json(request)?;
    let fields = ExamFields {
        title: parse_title(&body.title)?,
        description: parse_description(&body.description)?,
        duration_minutes: parse_duration(body.duration_minutes.0)?,
        pass_mark_percent: parse_pass_mark(body.pass_mark_percent.0)?,
    };
    let defaults = ExamRules::default();
    let rules = ExamRules {
        opens_at: time(body.opens_at, "opens_at")?,
        closes_at: time(body.closes_at, "closes_at")?,
        max_attempts: body.max_attempts.map_or(defaults.max_attempts, attempts),
        review: body.review.map_or(defaults.review, ReviewPolicy::from),
    };
    let exam = service.create_exam(caller, fields, rules).await?;
    Ok(json(StatusCode::CREATED, &views::exam(&exam)))
}

fn exam_patch(body: ExamPatchBody) -> Result<ExamPatch, ApiError> {
    let patch = ExamPatch {
        title: body.title.as_deref().map(parse_title).transpose()?,
        description: body
            .description
            .as_deref()
            .map(parse_description)
            .transpose()?,
        duration_minutes: body
            .duration_minutes
            .map(|m| parse_duration(m.0))
            .transpose()?,
        pass_mark_percent: body
            .pass_mark_percent
            .map(|p| parse_pass_mark(p.0))
            .transpose()?,
        opens_at: body.opens_at.map(|t| time(t, "opens_at")).transpose()?,
        closes_at: body.closes_at.map(|t| time(t, "closes_at")).transpose()?,
        max_attempts: body.max_attempts.map(attempts),
        review: body.review.map(ReviewPolicy::from),
    };
    if patch == ExamPatch::default() {
        return Err(ApiError::validation(
            "give at least one of title, description, duration_minutes, pass_mark_percent, \
             opens_at, closes_at, max_attempts, review",
        ));
    }
    Ok(patch)
}

/// An optional RFC 3339 time of `field`, as epoch seconds.
fn time(raw: Option<String>, field: &'static str) -> Result<Option<i64>, ApiError> {
    Ok(raw.map(|t| parse_time(&t, field)).transpose()?)
}

/// A number of attempts (checked with the other rules: [`ExamRules::validated`]).
fn attempts(count: Whole) -> u32 {
    u32::try_from(count.0).unwrap_or(u32::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn routes_resolve_with_their_ids_and_tell_404_from_405() {
        let exam = ExamId::generate();
        let question = QuestionId::generate();
        let path = format!("/exams/{exam}/questions/{question}");
        let (route, ids) = resolve(&Method::PATCH, &path).expect("resolves");
        assert_eq!(route, Route::PatchQuestion);
        assert_eq!(ids.exam.as_ref(), Some(&exam));
        assert_eq!(ids.question.as_ref(), Some(&question));

        let status = |method: Method, path: &str| resolve(&method, path).err().map(|e| e.status);
        assert_eq!(
            status(Method::PUT, &path),
            Some(StatusCode::METHOD_NOT_ALLOWED)
        );
        assert_eq!(
            status(Method::GET, "/exams/nope"),
            Some(StatusCode::NOT_FOUND)
        );
        assert_eq!(
            status(Method::GET, "/exams//questions"),
            Some(StatusCode::NOT_FOUND)
        );
        assert_eq!(status(Method::GET, "/nowhere"), Some(StatusCode::NOT_FOUND));
        assert_eq!(
            status(
                Method::GET,
                &format!("/exams/{exam}/questions/{question}/x")
            ),
            Some(StatusCode::NOT_FOUND)
        );
        assert_eq!(
            resolve(&Method::GET, "/me/attempts").map(|r| r.0).ok(),
            Some(Route::MyAttempts)
        );
    }
}

//! Every cache key, built in one place.

use std::fmt;
use std::sync::Arc;

use crate::exam::{AttemptId, ExamId};
use crate::user::UserId;

/// A family of cached data. Each has its own TTL and is the `Cache` dimension of the metrics.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum CacheKind {
    /// One exam (`GET /exams/{id}`); the old system's `EXAM`.
    Exam,
    /// An exam's questions with their answers (`EXAM_QUESTIONS`, which also replaces `QUESTION`).
    ExamQuestions,
    /// A user's profile (`USER_PROFILE`).
    UserProfile,
    /// One attempt and its result (`EXAM_RESULT`).
    ExamResult,
    /// The first page of a user's attempts, one field per page size (`USER_EXAMS`).
    UserExams,
    /// The first page of the published exams, one field per page size (`ALL_EXAMS`).
    ExamList,
}

impl CacheKind {
    /// Every kind.
    pub const ALL: [Self; 6] = [
        Self::Exam,
        Self::ExamQuestions,
        Self::UserProfile,
        Self::ExamResult,
        Self::UserExams,
        Self::ExamList,
    ];

    /// The name in keys and in the metric dimension.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Exam => "exam",
            Self::ExamQuestions => "exam_questions",
            Self::UserProfile => "user_profile",
            Self::ExamResult => "exam_result",
            Self::UserExams => "user_exams",
            Self::ExamList => "exam_list",
        }
    }
}

impl fmt::Display for CacheKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One cached value: an entry (`exam:<id>`) and a field of it (`v`, or one page of a list).
/// Built only by [`CacheKeys`]; the namespace version is added when it is used.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct CacheKey {
    kind: CacheKind,
    entry: String,
    field: String,
}

impl CacheKey {
    fn single(kind: CacheKind, id: impl fmt::Display) -> Self {
        Self {
            kind,
            entry: format!("{kind}:{id}"),
            field: VALUE_FIELD.to_owned(),
        }
    }

    /// Its family.
    pub fn kind(&self) -> CacheKind {
        self.kind
    }
}

/// The field of a single-valued entry (`g` holds the generation).
const VALUE_FIELD: &str = "v";

/// The field of the first page of `limit` items of a list.
fn page_field(limit: usize) -> String {
    format!("p:{limit}")
}

/// Where a [`CacheKey`] lives in Redis, in one namespace version.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Location {
    /// `<prefix>:v<N>:{<entry>}`: the braces are a Redis Cluster hash tag, so the entry and its
    /// locks share a slot.
    pub key: String,
    /// The field within the entry.
    pub field: String,
    /// `<key>:lock:<field>`: the stampede lock of this field.
    pub lock: String,
}

/// Builds every cache key under a prefix (`oes`, or one per test).
#[derive(Debug, Clone)]
pub struct CacheKeys {
    prefix: Arc<str>,
}

impl CacheKeys {
    /// Keys under `prefix`. A prefix holds no `{` or `}` (config checks `OES_CACHE_PREFIX`).
    pub fn new(prefix: &str) -> Self {
        Self {
            prefix: prefix.into(),
        }
    }

    /// One exam (`GET /exams/{id}`).
    pub fn exam(&self, id: &ExamId) -> CacheKey {
        CacheKey::single(CacheKind::Exam, id)
    }

    /// An exam's questions, cached with their answers (the API strips them for students).
    pub fn exam_questions(&self, id: &ExamId) -> CacheKey {
        CacheKey::single(CacheKind::ExamQuestions, id)
    }

    /// A user's profile (sessions, `GET /auth/me`).
    pub fn user_profile(&self, id: &UserId) -> CacheKey {
        CacheKey::single(CacheKind::UserProfile, id)
    }

    /// One attempt and its result (`GET /attempts/{id}`).
    pub fn exam_result(&self, id: &AttemptId) -> CacheKey {
        CacheKey::single(CacheKind::ExamResult, id)
    }

    /// A user's attempts (`GET /me/attempts`), for invalidation: every cached page of them.
    pub fn user_exams(&self, id: &UserId) -> CacheKey {
        CacheKey::single(CacheKind::UserExams, id)
    }

    /// The first page of `limit` of a user's attempts (`GET /me/attempts?limit=`): a field of
    /// [`Self::user_exams`]' entry, so invalidating it drops every page size at once.
    pub fn user_exams_page(&self, id: &UserId, limit: usize) -> CacheKey {
        CacheKey {
            field: page_field(limit),
            ..self.user_exams(id)
        }
    }

    /// The first page of `limit` of the published exams (`GET /exams?limit=`). All page sizes
    /// are fields of one entry, so invalidating the list drops them all at once. Pages after the
    /// first (`?cursor=`) have no key: they are never cached, so no client can add fields.
    pub fn exam_list_page(&self, limit: usize) -> CacheKey {
        CacheKey {
            field: page_field(limit),
            ..self.exam_list()
        }
    }

    /// The whole published list, for invalidation.
    pub(crate) fn exam_list(&self) -> CacheKey {
        CacheKey {
            kind: CacheKind::ExamList,
            entry: CacheKind::ExamList.as_str().to_owned(),
            field: String::new(),
        }
    }

    /// The counter holding the namespace version (`<prefix>:version`).
    pub(crate) fn version_key(&self) -> String {
        format!("{}:version", self.prefix)
    }

    /// Where `key` lives in namespace `version`.
    pub(crate) fn locate(&self, key: &CacheKey, version: u64) -> Location {
        let entry = format!("{}:v{version}:{{{}}}", self.prefix, key.entry);
        Location {
            lock: format!("{entry}:lock:{}", key.field),
            key: entry,
            field: key.field.clone(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entries_are_versioned_and_hash_tagged_with_their_lock() {
        let keys = CacheKeys::new("oes");
        let id = ExamId::from_trusted("e1");
        let at = keys.locate(&keys.exam(&id), 3);
        assert_eq!(at.key, "oes:v3:{exam:e1}");
        assert_eq!(at.field, "v");
        assert_eq!(at.lock, "oes:v3:{exam:e1}:lock:v");
        assert_eq!(keys.version_key(), "oes:version");
    }

    #[test]
    fn each_kind_of_one_id_has_its_own_entry() {
        let keys = CacheKeys::new("oes");
        let user = UserId::from_trusted("same");
        let exam = ExamId::from_trusted("same");
        let attempt = AttemptId::from_trusted("same");
        let all = [
            keys.exam(&exam),
            keys.exam_questions(&exam),
            keys.user_profile(&user),
            keys.exam_result(&attempt),
            keys.user_exams(&user),
            keys.exam_list_page(20),
        ];
        let mut entries: Vec<_> = all.iter().map(|k| keys.locate(k, 0).key).collect();
        entries.sort();
        entries.dedup();
        assert_eq!(entries.len(), all.len());
        let kinds: Vec<_> = all.iter().map(CacheKey::kind).collect();
        assert_eq!(kinds, CacheKind::ALL);
    }

    #[test]
    fn every_page_size_of_a_list_is_a_field_of_its_one_entry() {
        let keys = CacheKeys::new("oes");
        let user = UserId::from_trusted("u1");
        for (pages, entry) in [
            (
                [keys.exam_list_page(20), keys.exam_list_page(50)],
                keys.exam_list(),
            ),
            (
                [
                    keys.user_exams_page(&user, 20),
                    keys.user_exams_page(&user, 50),
                ],
                keys.user_exams(&user),
            ),
        ] {
            let located: Vec<_> = pages.iter().map(|k| keys.locate(k, 1)).collect();
            let entry = keys.locate(&entry, 1);
            assert!(located.iter().all(|at| at.key == entry.key));
            let mut fields: Vec<_> = located.iter().map(|at| at.field.as_str()).collect();
            fields.push(&entry.field);
            fields.sort_unstable();
            fields.dedup();
            assert_eq!(fields.len(), 3, "distinct pages, distinct fields");
            assert!(!fields.contains(&"g"), "no page overwrites the generation");
        }
    }
}

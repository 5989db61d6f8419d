//! An exam's rules for sitting it, set by its owner: when it is open for attempts (its window),
//! how many attempts each student may start, and what a finished attempt shows its student, and
//! from when.
//!
//! An attempt keeps what it needs of them from when it started, as it keeps its paper: its
//! deadline, which never passes the window's close, and its [`AttemptReview`].

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::{Attempt, QuestionId, limits};
use crate::user::InvalidInput;

/// What a finished attempt shows its student.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ReviewShows {
    /// The result only: score, percent, passed, how many answers were right.
    #[default]
    Score,
    /// The result, and which of the student's answers were right (never the right option).
    Answers,
}

/// From when a finished attempt shows it.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ReviewFrom {
    /// As soon as the attempt is submitted.
    #[default]
    Submit,
    /// Once the exam closes (its `closes_at`): no one who sat it learns anything another
    /// student could still use.
    Close,
}

/// What a finished attempt shows its student, and from when (by default the score, once
/// submitted). The exam's owner and admins always see everything.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReviewPolicy {
    /// The score, or also which answers were right.
    pub shows: ReviewShows,
    /// From submission, or from the exam's close.
    pub from: ReviewFrom,
}

/// An exam's rules for sitting it; [`ExamRules::validated`] checks them as a whole.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct ExamRules {
    /// Epoch seconds before which no attempt starts (`None`: once published).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub opens_at: Option<i64>,
    /// Epoch seconds from which no attempt starts; every attempt's deadline is at the latest
    /// this (`None`: never closes).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub closes_at: Option<i64>,
    /// Attempts each student may start, submitted or not (1–100).
    pub max_attempts: u32,
    /// What a finished attempt shows its student.
    pub review: ReviewPolicy,
}

impl Default for ExamRules {
    /// Always open, one attempt, the score once submitted.
    fn default() -> Self {
        Self {
            opens_at: None,
            closes_at: None,
            max_attempts: 1,
            review: ReviewPolicy::default(),
        }
    }
}

/// Where a time falls in an exam's window.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Window {
    /// Before `opens_at`.
    NotOpen,
    /// Attempts can start.
    Open,
    /// At or after `closes_at`.
    Closed,
}

impl ExamRules {
    /// The rules if they hold together: 1–100 attempts, a close after the opening, and a
    /// close to show results from if they are shown from the close.
    pub fn validated(self) -> Result<Self, InvalidInput> {
        if !(1..=limits::MAX_ATTEMPTS).contains(&self.max_attempts) {
            return Err(InvalidInput::new("max_attempts", "must be from 1 to 100"));
        }
        if let (Some(opens), Some(closes)) = (self.opens_at, self.closes_at)
            && closes <= opens
        {
            return Err(InvalidInput::new("closes_at", "must be after opens_at"));
        }
        if self.review.from == ReviewFrom::Close && self.closes_at.is_none() {
            return Err(InvalidInput::new(
                "review",
                "\"from\": \"close\" needs the exam's closes_at",
            ));
        }
        Ok(self)
    }

    /// Where `now` falls in the window.
    pub fn window_at(&self, now: i64) -> Window {
        if self.opens_at.is_some_and(|opens| now < opens) {
            Window::NotOpen
        } else if self.closes_at.is_some_and(|closes| now >= closes) {
            Window::Closed
        } else {
            Window::Open
        }
    }

    /// The deadline of an attempt of `duration_minutes` started at `started_at`: never past the
    /// close.
    pub fn deadline(&self, started_at: i64, duration_minutes: u32) -> i64 {
        let full = started_at + i64::from(duration_minutes) * 60;
        self.closes_at.map_or(full, |closes| full.min(closes))
    }

    /// The review of an attempt started under these rules.
    pub fn attempt_review(&self) -> AttemptReview {
        AttemptReview {
            shows: self.review.shows,
            from: match self.review.from {
                ReviewFrom::Submit => None,
                ReviewFrom::Close => self.closes_at,
            },
        }
    }
}

/// What a finished attempt shows its student, and from when: its exam's [`ReviewPolicy`] when
/// it started, with the close as a time. (Attempts stored before it existed show the score.)
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct AttemptReview {
    /// The score, or also which answers were right.
    pub shows: ReviewShows,
    /// Epoch seconds from which it is shown (`None`: from submission).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub from: Option<i64>,
}

impl AttemptReview {
    /// What a submitted attempt shows its student at `now`: nothing (`None`) before
    /// [`Self::from`].
    pub fn shown_at(&self, now: i64) -> Option<ReviewShows> {
        match self.from {
            Some(from) if now < from => None,
            _ => Some(self.shows),
        }
    }
}

impl Attempt {
    /// For each answered question on the paper, whether the saved answer is right.
    pub fn marks(&self) -> BTreeMap<QuestionId, bool> {
        self.paper
            .iter()
            .filter_map(|item| {
                let chosen = self.answers.get(&item.question_id)?;
                Some((item.question_id.clone(), *chosen == item.correct_option))
            })
            .collect()
    }
}

/// Parses an RFC 3339 time (`2026-11-22T10:00:00Z`, as the API writes times) into epoch
/// seconds (a fraction of a second is dropped).
pub fn parse_time(raw: &str, field: &'static str) -> Result<i64, InvalidInput> {
    let invalid =
        || InvalidInput::new(field, "must be an RFC 3339 time, e.g. 2026-11-22T10:00:00Z");
    let time =
        time::OffsetDateTime::parse(raw.trim(), &time::format_description::well_known::Rfc3339)
            .map_err(|_| invalid())?;
    // Shown back in UTC (`clock::rfc3339`), whose year RFC 3339 writes in four digits: an offset
    // that moves it out of 0000–9999 ("0000-01-01T00:00:00+01:00") would be shown as "".
    match time.checked_to_offset(time::UtcOffset::UTC) {
        Some(utc) if (0..=9999).contains(&utc.year()) => Ok(utc.unix_timestamp()),
        _ => Err(invalid()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rules(opens_at: Option<i64>, closes_at: Option<i64>) -> ExamRules {
        ExamRules {
            opens_at,
            closes_at,
            ..ExamRules::default()
        }
    }

    #[test]
    fn the_rules_must_hold_together() {
        assert!(ExamRules::default().validated().is_ok());
        assert!(rules(Some(10), Some(20)).validated().is_ok());
        assert!(rules(Some(20), Some(20)).validated().is_err());
        assert!(rules(Some(30), Some(20)).validated().is_err());
        for max_attempts in [0, 101] {
            let bad = ExamRules {
                max_attempts,
                ..ExamRules::default()
            };
            assert!(bad.validated().is_err(), "{max_attempts}");
        }
        let from_close = ReviewPolicy {
            shows: ReviewShows::Score,
            from: ReviewFrom::Close,
        };
        let without_close = ExamRules {
            review: from_close,
            ..rules(None, None)
        };
        assert!(without_close.validated().is_err());
        let with_close = ExamRules {
            review: from_close,
            ..rules(None, Some(5))
        };
        assert!(with_close.validated().is_ok());
    }

    #[test]
    fn the_window_opens_at_its_opening_and_closes_at_its_close() {
        let window = rules(Some(10), Some(20));
        assert_eq!(window.window_at(9), Window::NotOpen);
        assert_eq!(window.window_at(10), Window::Open);
        assert_eq!(window.window_at(19), Window::Open);
        assert_eq!(window.window_at(20), Window::Closed);
        assert_eq!(ExamRules::default().window_at(i64::MIN), Window::Open);
    }

    #[test]
    fn a_deadline_never_passes_the_close() {
        assert_eq!(rules(None, None).deadline(100, 1), 160);
        assert_eq!(rules(None, Some(130)).deadline(100, 1), 130);
        assert_eq!(rules(None, Some(500)).deadline(100, 1), 160);
    }

    #[test]
    fn a_review_from_the_close_shows_nothing_before_it() {
        let open_book = AttemptReview::default();
        assert_eq!(open_book.shown_at(0), Some(ReviewShows::Score));
        let at_close = ExamRules {
            review: ReviewPolicy {
                shows: ReviewShows::Answers,
                from: ReviewFrom::Close,
            },
            ..rules(None, Some(50))
        }
        .attempt_review();
        assert_eq!(at_close.from, Some(50));
        assert_eq!(at_close.shown_at(49), None);
        assert_eq!(at_close.shown_at(50), Some(ReviewShows::Answers));
    }

    #[test]
    fn times_are_rfc_3339() {
        assert_eq!(parse_time("1970-01-01T00:01:40Z", "opens_at"), Ok(100));
        assert_eq!(parse_time("1970-01-01T01:01:40+01:00", "opens_at"), Ok(100));
        assert_eq!(parse_time("1970-01-01T00:01:40.9Z", "opens_at"), Ok(100));
        for bad in ["", "100", "1970-01-01", "tomorrow", "1970-13-01T00:00:00Z"] {
            assert!(parse_time(bad, "opens_at").is_err(), "{bad}");
        }
    }

    #[test]
    fn a_time_is_taken_only_if_it_can_be_shown_in_utc() {
        // Both are RFC 3339 as written, but in UTC their year is -1 and 10000, which RFC 3339
        // cannot write: taken, they were shown as "".
        for outside in ["0000-01-01T00:00:00+01:00", "9999-12-31T23:30:00-01:00"] {
            assert!(parse_time(outside, "opens_at").is_err(), "{outside}");
        }
        for edge in ["0000-01-01T00:00:00Z", "9999-12-31T23:59:59Z"] {
            let seconds = parse_time(edge, "opens_at").expect(edge);
            assert_eq!(crate::clock::rfc3339(seconds), edge);
        }
    }
}

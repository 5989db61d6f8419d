//! The result emails: the admin API's counts and queue depths while they flow, the job records
//! once they have (each matched to the run's exam by its subject), the embedded mode's outbox,
//! and the exactly-once check against each.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use reqwest::Method;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::api::{Client, Phase, query_escape};
use crate::exam_day::expect_ok;

/// The job kind of a result email.
pub const KIND: &str = "exam_result";

/// `GET /admin/email-jobs/counts?kind=exam_result`, summed into what the drain needs.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct JobCounts {
    /// Not finished yet: `queued`, `sending` (stalled included), `retrying`.
    pub pending: u64,
    /// `sent`.
    pub sent: u64,
    /// Given up: `failed`, `dead`.
    pub failed: u64,
    /// Every count exact (under the API's budget).
    pub exact: bool,
}

impl JobCounts {
    /// Every job, whatever its state.
    pub fn total(&self) -> u64 {
        self.pending + self.sent + self.failed
    }
}

/// Reads the counts of result-email jobs.
pub async fn counts(admin: &Client, phase: Phase) -> Result<JobCounts, String> {
    let answer = admin
        .call(
            phase,
            "GET /admin/email-jobs/counts",
            Method::GET,
            &format!("/admin/email-jobs/counts?kind={KIND}"),
            None,
        )
        .await
        .map_err(|e| format!("GET /admin/email-jobs/counts {e}"))?;
    if !answer.is_success() {
        return Err(format!(
            "GET /admin/email-jobs/counts {}",
            answer.describe()
        ));
    }
    let mut counts = JobCounts {
        exact: true,
        ..JobCounts::default()
    };
    for entry in answer
        .body
        .get("counts")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        let count = entry.get("count").and_then(Value::as_u64).unwrap_or(0);
        counts.exact &= entry.get("exact").and_then(Value::as_bool).unwrap_or(false);
        match entry.get("status").and_then(Value::as_str) {
            Some("sent") => counts.sent += count,
            Some("failed" | "dead") => counts.failed += count,
            // `stalled` is counted within `sending` already.
            Some("queued" | "sending" | "retrying") => counts.pending += count,
            _ => {}
        }
    }
    Ok(counts)
}

/// Messages on the queues (`GET /admin/queues`): each lane's, then the dead-letter queue's,
/// visible + in flight + delayed.
pub async fn queue_depths(admin: &Client, phase: Phase) -> Result<Vec<(String, i64)>, String> {
    Ok(depths(&queues(admin, phase).await?, |_| true))
}

/// Messages on the lanes, the dead-letter queue left out: while there are any, a copy of a
/// job may still be sent.
pub async fn on_the_lanes(admin: &Client, phase: Phase) -> Result<i64, String> {
    let lanes = depths(&queues(admin, phase).await?, |queue| {
        // A lane says whether it is paused; the dead-letter queue does not.
        queue.get("paused").is_some()
    });
    Ok(lanes.iter().map(|(_, depth)| depth).sum())
}

async fn queues(admin: &Client, phase: Phase) -> Result<Value, String> {
    let answer = admin
        .call(
            phase,
            "GET /admin/queues",
            Method::GET,
            "/admin/queues",
            None,
        )
        .await
        .map_err(|e| format!("GET /admin/queues {e}"))?;
    if !answer.is_success() {
        return Err(format!("GET /admin/queues {}", answer.describe()));
    }
    Ok(answer.body)
}

/// Each queue `keep` keeps of a `GET /admin/queues` answer, by name: visible + in flight +
/// delayed.
fn depths(body: &Value, keep: impl Fn(&Value) -> bool) -> Vec<(String, i64)> {
    let queues = body
        .get("queues")
        .and_then(Value::as_array)
        .into_iter()
        .flatten();
    queues
        .filter(|q| keep(q))
        .map(|q| {
            let n = |field: &str| q.get(field).and_then(Value::as_i64).unwrap_or(0);
            let name = q.get("queue").and_then(Value::as_str).unwrap_or("?");
            (
                name.to_owned(),
                n("visible") + n("in_flight") + n("delayed"),
            )
        })
        .collect()
}

/// A sent job's record, as a listing shows it; the job's own record
/// (`GET /admin/email-jobs/{job_id}`: [`own_records`]) adds its subject and history.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
pub struct SentRecord {
    /// The job id.
    pub job_id: String,
    /// The recipient.
    pub recipient: String,
    /// When the job was queued (epoch seconds).
    pub created_at: i64,
    /// Its last change: for a sent job, when it was sent (epoch seconds).
    pub updated_at: i64,
    /// The mailer's message id (the `.eml` file's name in the embedded mode).
    #[serde(default)]
    pub ses_message_id: Option<String>,
    /// The email's subject (a result email's names its exam). Not in listings.
    #[serde(default)]
    pub subject: Option<String>,
    /// What happened to the job, oldest first (its last 20 events). Not in listings.
    #[serde(default)]
    pub history: Vec<JobEvent>,
}

/// One event of a job's history.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
pub struct JobEvent {
    /// What happened (`sending`, `sent`, `retrying`, …).
    pub event: String,
    /// The mailer's message id, for `sent`.
    #[serde(default)]
    pub ses_message_id: Option<String>,
}

impl SentRecord {
    /// The emails the mailer accepted for the job, as its own record tells: one for each
    /// message id its history records as sent (an id recorded twice, its write made again, is
    /// one email), and at least the one it holds. A send older than the history's last 20
    /// events is not seen.
    pub fn sends(&self) -> usize {
        let mut ids: BTreeSet<&str> = self
            .history
            .iter()
            .filter(|e| e.event == "sent")
            .filter_map(|e| e.ses_message_id.as_deref())
            .collect();
        ids.extend(self.ses_message_id.as_deref());
        ids.len()
    }
}

/// The most pages [`sent_records`] reads (of 100 records).
const MAX_PAGES: usize = 10_000;

/// The `sent` result-email records sent at `since` (epoch seconds) or later
/// (`GET /admin/email-jobs?status=sent&kind=exam_result`, newest change first, paged until the
/// records are older), at most [`MAX_PAGES`] pages of 100. A store that keeps many sent jobs
/// is read only as far back as `since`.
pub async fn sent_records(
    admin: &Client,
    phase: Phase,
    since: i64,
) -> Result<Vec<SentRecord>, String> {
    let mut records = Vec::new();
    let mut cursor: Option<String> = None;
    for _ in 0..MAX_PAGES {
        let mut path = format!("/admin/email-jobs?status=sent&kind={KIND}&limit=100");
        if let Some(cursor) = &cursor {
            path.push_str("&cursor=");
            path.push_str(&query_escape(cursor));
        }
        let answer = admin
            .call(phase, "GET /admin/email-jobs", Method::GET, &path, None)
            .await
            .map_err(|e| format!("GET /admin/email-jobs {e}"))?;
        if !answer.is_success() {
            return Err(format!("GET /admin/email-jobs {}", answer.describe()));
        }
        let jobs = answer.body.get("jobs").cloned().unwrap_or(Value::Null);
        let page: Vec<SentRecord> = serde_json::from_value(jobs)
            .map_err(|e| format!("GET /admin/email-jobs: unexpected listing: {e}"))?;
        let older = page.iter().any(|record| record.updated_at < since);
        records.extend(page.into_iter().filter(|record| record.updated_at >= since));
        cursor = answer.str("/next_cursor").map(str::to_owned);
        if cursor.is_none() || older {
            return Ok(records);
        }
    }
    Err(format!(
        "GET /admin/email-jobs: more than {MAX_PAGES} pages of sent result emails"
    ))
}

/// Whether the result emails of a run that expects `expected` are all sent, as far as the sent
/// count tells: while the counts before and now are exact, the sent count grew by `expected`.
/// Past the counts' budget (a store keeping more sent jobs than a count reads) the count stops
/// growing, and only `ours`, this run's own sent records, can tell.
pub fn sent_enough(before: &JobCounts, now: &JobCounts, expected: u64, ours: Option<u64>) -> bool {
    if before.exact && now.exact {
        now.sent >= before.sent + expected
    } else {
        ours.is_some_and(|ours| ours >= expected)
    }
}

/// The records that may be this run's: those of `students` not among the `earlier` jobs
/// (listed before the exam day). An earlier exam's email still on its way then passes too:
/// only the subject tells ([`of_exam`]).
pub fn of_run<'a>(
    records: &'a [SentRecord],
    students: &'a BTreeSet<String>,
    earlier: &'a BTreeSet<String>,
) -> impl Iterator<Item = &'a SentRecord> {
    records
        .iter()
        .filter(move |r| !earlier.contains(&r.job_id) && students.contains(&r.recipient))
}

/// Reads the own record (`GET /admin/email-jobs/{job_id}`) of each of `records` not in `known`
/// yet into `known`, by job id.
pub async fn own_records<'a>(
    admin: &Client,
    phase: Phase,
    records: impl IntoIterator<Item = &'a SentRecord>,
    known: &mut BTreeMap<String, SentRecord>,
) -> Result<(), String> {
    for record in records {
        if known.contains_key(&record.job_id) {
            continue;
        }
        let path = format!("/admin/email-jobs/{}", query_escape(&record.job_id));
        let route = "GET /admin/email-jobs/{id}";
        let answer = expect_ok(admin, phase, route, Method::GET, &path, None).await?;
        let own: SentRecord = serde_json::from_value(answer.body)
            .map_err(|e| format!("GET /admin/email-jobs/{{id}}: unexpected record: {e}"))?;
        known.insert(own.job_id.clone(), own);
    }
    Ok(())
}

/// Those of own `records` whose subject is `subject` (`Your result for <title>`, a title the
/// run made up): the result emails of this run's exam, whatever other exam its students sat.
pub fn of_exam<'a>(
    records: impl IntoIterator<Item = &'a SentRecord>,
    subject: &'a str,
) -> impl Iterator<Item = &'a SentRecord> {
    records
        .into_iter()
        .filter(move |r| r.subject.as_deref() == Some(subject))
}

/// The exactly-once check of the job records: each student of `expected` (one per submitted
/// attempt) has exactly one result email of this run's exam, the records being this exam's
/// ([`of_exam`]). A record whose history shows two sends counts as two emails.
pub fn records_check<'a>(
    expected: &[String],
    records: impl IntoIterator<Item = &'a SentRecord>,
) -> OnceCheck {
    let seen: Vec<&String> = records
        .into_iter()
        .flat_map(|r| std::iter::repeat_n(&r.recipient, r.sends()))
        .collect();
    exactly_once(expected, seen)
}

/// The result emails of the outbox folder `dir` (the embedded mode's mailer), each as
/// [`outbox_key`] of the attempt it links to and the address it went to: each `.eml` whose
/// subject is `subject` links to `/attempts/<id>`.
pub fn outbox_attempts(dir: &Path, subject: &str) -> std::io::Result<Vec<String>> {
    let mut attempts = Vec::new();
    for entry in std::fs::read_dir(dir)? {
        let path = entry?.path();
        if path.extension().and_then(|e| e.to_str()) != Some("eml") {
            continue;
        }
        let text = std::fs::read_to_string(&path)?;
        if let Some(attempt) = result_email_attempt(&text, subject) {
            attempts.push(attempt);
        }
    }
    Ok(attempts)
}

/// The key of a result email for `attempt` sent to `to`: the outbox check expects one per
/// submitted attempt, to its own student (an email for an attempt sent to another student is
/// one missing and one unexpected).
pub fn outbox_key(attempt: &str, to: &str) -> String {
    format!("{attempt} to {to}")
}

/// The [`outbox_key`] of a result email with `subject`: the attempt it links to
/// (`…/attempts/<id>` in its text part) and its `To:` address.
pub fn result_email_attempt(eml: &str, subject: &str) -> Option<String> {
    let headers = eml.split("\r\n\r\n").next().unwrap_or("");
    let matches = headers
        .lines()
        .any(|line| line.strip_prefix("Subject: ") == Some(subject));
    if !matches {
        return None;
    }
    let to = headers.lines().find_map(|line| line.strip_prefix("To: "))?;
    attempt_in(eml).map(|id| outbox_key(&id, to))
}

/// The attempt id a result email's text links to (`…/attempts/<id>`).
fn attempt_in(text: &str) -> Option<String> {
    let (_, after) = text.split_once("/attempts/")?;
    let id: String = after
        .chars()
        .take_while(|c| c.is_ascii_alphanumeric() || *c == '-' || *c == '_')
        .collect();
    (!id.is_empty()).then_some(id)
}

/// The result emails with `subject` among the messages the AWS emulator's SES accepted (moto's
/// `/moto-api/data.json`: `ses.Message[]`, each with `subject`, `body` and
/// `destinations.ToAddresses`), each as [`outbox_key`]: the mail itself, counted once per
/// message SES took — which the job records cannot show for a send whose answer was lost.
pub fn ses_attempts(data: &serde_json::Value, subject: &str) -> Vec<String> {
    let messages = data["ses"]["Message"]
        .as_array()
        .map_or(&[][..], Vec::as_slice);
    messages
        .iter()
        .filter(|m| m["subject"] == subject)
        .flat_map(|m| {
            let id = m["body"].as_str().and_then(attempt_in);
            let to = m["destinations"]["ToAddresses"].as_array();
            id.zip(to).into_iter().flat_map(|(id, to)| {
                to.iter()
                    .filter_map(serde_json::Value::as_str)
                    .map(move |to| outbox_key(&id, to))
            })
        })
        .collect()
}

/// The exactly-once check: each expected key seen once.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct OnceCheck {
    /// Keys expected (one per submitted attempt).
    pub expected: usize,
    /// Expected keys seen exactly once.
    pub once: usize,
    /// Expected keys never seen: emails lost (or not sent yet).
    pub missing: Vec<String>,
    /// Keys seen more than once, with how often: emails sent twice.
    pub duplicated: BTreeMap<String, usize>,
    /// Keys seen that were not expected (an email for an attempt never submitted).
    pub unexpected: Vec<String>,
}

impl OnceCheck {
    /// Every expected key exactly once, nothing else.
    pub fn passed(&self) -> bool {
        self.once == self.expected
            && self.missing.is_empty()
            && self.duplicated.is_empty()
            && self.unexpected.is_empty()
    }
}

/// Compares the keys `seen` (one per email) with those `expected` (one per submitted attempt).
pub fn exactly_once<'a>(
    expected: impl IntoIterator<Item = &'a String>,
    seen: impl IntoIterator<Item = &'a String>,
) -> OnceCheck {
    let expected: BTreeSet<&String> = expected.into_iter().collect();
    let mut times: BTreeMap<&String, usize> = BTreeMap::new();
    for key in seen {
        *times.entry(key).or_default() += 1;
    }
    let mut check = OnceCheck {
        expected: expected.len(),
        ..OnceCheck::default()
    };
    for key in &expected {
        match times.get(key) {
            None => check.missing.push((*key).clone()),
            Some(1) => check.once += 1,
            Some(&n) => {
                check.duplicated.insert((*key).clone(), n);
            }
        }
    }
    for (key, n) in times {
        if !expected.contains(key) {
            check.unexpected.push(key.clone());
            if n > 1 {
                check.duplicated.insert(key.clone(), n);
            }
        }
    }
    check
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_lanes_depth_leaves_the_dead_letter_queue_out() {
        let body = serde_json::json!({"queues": [
            {"queue": "priority", "paused": false, "visible": 1, "in_flight": 2, "delayed": 0},
            {"queue": "bulk", "paused": true, "visible": 0, "in_flight": 0, "delayed": 4},
            {"queue": "dead-letter", "visible": 9, "in_flight": 0, "delayed": 0},
        ]});
        let lanes: i64 = depths(&body, |q| q.get("paused").is_some())
            .iter()
            .map(|(_, d)| d)
            .sum();
        assert_eq!(lanes, 7);
        assert_eq!(depths(&body, |_| true).len(), 3);
    }

    #[test]
    fn past_the_counts_budget_only_the_runs_own_records_tell_that_its_emails_are_sent() {
        let counts = |sent, exact| JobCounts {
            sent,
            exact,
            ..JobCounts::default()
        };
        // Exact counts: the sent count grew by the run's.
        assert!(sent_enough(&counts(40, true), &counts(70, true), 30, None));
        assert!(!sent_enough(&counts(40, true), &counts(69, true), 30, None));
        // A store with more sent jobs than a count reads: the count stays at its budget.
        let (before, now) = (counts(10_000, false), counts(10_000, false));
        assert!(sent_enough(&before, &now, 300, Some(300)));
        assert!(!sent_enough(&before, &now, 300, Some(299)));
        assert!(!sent_enough(&before, &now, 300, None));
        // Past the budget only after the run began.
        assert!(sent_enough(
            &counts(9_900, true),
            &counts(10_000, false),
            300,
            Some(300)
        ));
    }

    fn keys(list: &[&str]) -> Vec<String> {
        list.iter().map(|s| (*s).to_owned()).collect()
    }

    #[test]
    fn exactly_once_passes_only_when_each_key_is_seen_once() {
        let expected = keys(&["a", "b", "c"]);
        let clean = exactly_once(&expected, &keys(&["c", "a", "b"]));
        assert!(clean.passed(), "{clean:?}");
        assert_eq!(clean.once, 3);

        let lost = exactly_once(&expected, &keys(&["a", "b"]));
        assert!(!lost.passed());
        assert_eq!(lost.missing, keys(&["c"]));

        let twice = exactly_once(&expected, &keys(&["a", "b", "c", "b"]));
        assert!(!twice.passed());
        assert_eq!(twice.duplicated.get("b"), Some(&2));
        assert_eq!(twice.once, 2);

        let stray = exactly_once(&expected, &keys(&["a", "b", "c", "z"]));
        assert!(!stray.passed());
        assert_eq!(stray.unexpected, keys(&["z"]));

        // Nothing expected, nothing seen: passes (the run's own check that every student
        // submitted keeps an empty class from passing).
        assert!(exactly_once(&Vec::new(), &Vec::new()).passed());
    }

    /// A sent record, as its own record shows it: sent once with `ses-<job id>`.
    fn sent(job_id: &str, recipient: &str, subject: &str) -> SentRecord {
        let ses_message_id = format!("ses-{job_id}");
        SentRecord {
            job_id: job_id.to_owned(),
            recipient: recipient.to_owned(),
            created_at: 1000,
            updated_at: 1001,
            ses_message_id: Some(ses_message_id.clone()),
            subject: Some(subject.to_owned()),
            history: vec![event("sending", None), event("sent", Some(&ses_message_id))],
        }
    }

    fn event(event: &str, ses_message_id: Option<&str>) -> JobEvent {
        JobEvent {
            event: event.to_owned(),
            ses_message_id: ses_message_id.map(str::to_owned),
        }
    }

    const OURS: &str = "Your result for Load 2";

    #[test]
    fn records_of_other_runs_and_other_people_do_not_count() {
        let students: BTreeSet<String> = keys(&["s1@x.org", "s2@x.org"]).into_iter().collect();
        // Listed before the exam day: an earlier run's.
        let earlier: BTreeSet<String> = keys(&["j0"]).into_iter().collect();
        let listed = vec![
            sent("j0", "s1@x.org", "Your result for Load 1"),
            sent("j1", "s1@x.org", OURS),
            sent("j2", "s2@x.org", OURS),
            // Someone outside the class.
            sent("j3", "other@x.org", OURS),
            // An earlier run's, still on its way when this one began: sent during it.
            sent("j4", "s2@x.org", "Your result for Load 1"),
        ];
        let ours: Vec<&str> = of_exam(of_run(&listed, &students, &earlier), OURS)
            .map(|r| r.job_id.as_str())
            .collect();
        assert_eq!(ours, ["j1", "j2"]);
        let check = records_check(
            &keys(&["s1@x.org", "s2@x.org"]),
            of_exam(of_run(&listed, &students, &earlier), OURS),
        );
        assert!(check.passed(), "{check:?}");
    }

    #[test]
    fn an_earlier_exams_email_does_not_stand_in_for_one_of_this_exam() {
        // s1's email of this exam was lost; the email of the exam s1 sat before was sent
        // during this run.
        let records = vec![
            sent("j1", "s1@x.org", "Your result for Load 1"),
            sent("j2", "s2@x.org", OURS),
        ];
        let check = records_check(&keys(&["s1@x.org", "s2@x.org"]), of_exam(&records, OURS));
        assert!(!check.passed(), "{check:?}");
        assert_eq!(check.missing, keys(&["s1@x.org"]));
    }

    #[test]
    fn a_record_whose_history_shows_two_sends_is_an_email_sent_twice() {
        let mut twice = sent("j1", "s1@x.org", OURS);
        // Sent, its record not written; sent again after the lease, recorded.
        twice.history = vec![
            event("sending", None),
            event("sent", Some("ses-first")),
            event("sending", None),
            event("sent", Some("ses-j1")),
        ];
        let records = vec![twice.clone(), sent("j2", "s2@x.org", OURS)];
        let check = records_check(&keys(&["s1@x.org", "s2@x.org"]), &records);
        assert!(!check.passed(), "{check:?}");
        assert_eq!(check.duplicated.get("s1@x.org"), Some(&2));
        // One send whose record was written twice (its write made again) is one email.
        twice.history[1].ses_message_id = Some("ses-j1".into());
        assert_eq!(twice.sends(), 1);
        // A record whose history has aged out still holds its own send.
        twice.history.clear();
        assert_eq!(twice.sends(), 1);
    }

    #[test]
    fn result_emails_are_read_from_the_emulators_ses_messages() {
        let data = serde_json::json!({"ses": {"Message": [
            {"subject": "Your result for Load 1", "body": "<a href=\"http://x/attempts/a-1\">",
             "destinations": {"ToAddresses": ["s1@x.org"]}},
            {"subject": "Your result for Load 1", "body": "http://x/attempts/a-1",
             "destinations": {"ToAddresses": ["s1@x.org"]}},
            {"subject": "Reset your password", "body": "http://x/attempts/a-2",
             "destinations": {"ToAddresses": ["s2@x.org"]}},
            {"subject": "Your result for Load 1", "body": "no link",
             "destinations": {"ToAddresses": ["s3@x.org"]}},
        ]}});
        let key = outbox_key("a-1", "s1@x.org");
        assert_eq!(
            ses_attempts(&data, "Your result for Load 1"),
            [key.clone(), key],
            "each message SES took counts, a copy sent twice twice"
        );
        assert!(ses_attempts(&serde_json::json!({}), "x").is_empty());
    }

    #[test]
    fn result_emails_are_read_from_their_eml() {
        let eml = "From: noreply@oes.local\r\nTo: s1@x.org\r\nSubject: Your result for Load 1\r\n\
                   Message-ID: <m@oes.local>\r\n\r\n--b\r\n\r\nYour attempt has been graded.\r\n\
                   http://127.0.0.1:3000/attempts/0190-abc_D\r\n--b--\r\n";
        assert_eq!(
            result_email_attempt(eml, "Your result for Load 1"),
            Some(outbox_key("0190-abc_D", "s1@x.org"))
        );
        let no_to = eml.replace("To: s1@x.org\r\n", "");
        assert_eq!(result_email_attempt(&no_to, "Your result for Load 1"), None);
        assert_eq!(result_email_attempt(eml, "Your result for Load 2"), None);
        let no_link = eml.replace("/attempts/", "/nothing/");
        assert_eq!(
            result_email_attempt(&no_link, "Your result for Load 1"),
            None
        );
    }
}

//! The operator console in a real browser ([`crate::browser`]): the embedded mode's worker
//! writes each email it sends to an outbox folder — so "retried, then sent" is a real send.
//! `OES_CONSOLE_SCREENSHOT=docs/console.png` saves the console as the README shows it.

use std::collections::BTreeMap;
use std::path::Path;
use std::time::{Duration, Instant};

use fantoccini::{Client, Locator};
use oes_domain::clock::{Clock, SystemClock};
use oes_domain::email::{EmailJob, EmailTemplate};
use oes_domain::ports::{JobLedger, NewMessage, Outcome, QueueName};
use oes_domain::user::Email;
use oes_local::Functions;
use serde_json::json;

use crate::browser::{DEMO_PASSWORD as PASSWORD, Driver, PATIENCE, click, local, shows, text};

/// A job that ran out of attempts and sits on the dead-letter queue, as the worker leaves one.
async fn dead_job(functions: &Functions, to: &str) -> String {
    let admin = &functions.admin.admin;
    let now = SystemClock.now();
    let template = EmailTemplate::Generic {
        subject: "Your exam timetable".into(),
        text: "The timetable is out.".into(),
    };
    let job = EmailJob::new(Email::parse(to).expect("valid"), template, now);
    let ledger: &dyn JobLedger = admin.jobs.as_ref();
    ledger.record_queued(&job, now).await.expect("recorded");
    let reason = "attempts exhausted: Throttling: Maximum sending rate exceeded";
    ledger
        .finish(
            &job.job_id,
            Outcome::Dead {
                reason: reason.into(),
            },
            now,
        )
        .await
        .expect("dead");
    let letter = NewMessage {
        body: job.encode(),
        attributes: BTreeMap::from([
            ("reason".to_owned(), reason.to_owned()),
            ("source_queue".to_owned(), "oes-local-email-bulk".to_owned()),
        ]),
        ..NewMessage::default()
    };
    admin
        .queues
        .queues()
        .send(QueueName::DeadLetter, &letter)
        .await
        .expect("on the dead-letter queue");
    job.job_id
}

/// The emails written to the outbox for `to`.
fn mail_to(outbox: &Path, to: &str) -> usize {
    std::fs::read_dir(outbox).map_or(0, |entries| {
        entries
            .filter_map(Result::ok)
            .filter(|entry| {
                std::fs::read_to_string(entry.path())
                    .unwrap_or_default()
                    .contains(&format!("To: {to}\r\n"))
            })
            .count()
    })
}

async fn sign_in(browser: &Client, email: &str) {
    for (id, value) in [("email", email), ("password", PASSWORD)] {
        let field = browser.find(Locator::Id(id)).await.expect("the form");
        field.clear().await.expect("cleared");
        field.send_keys(value).await.expect("typed");
    }
    click(browser, "#sign-in-button").await;
}

/// A browser on `local`'s console, signed in as the demo admin.
async fn signed_in_console(driver: &Driver, local: &crate::browser::Local) -> Client {
    let browser = driver.browser().await;
    browser
        .goto(&format!("{}/admin/", local.base))
        .await
        .expect("the page loads");
    sign_in(&browser, "admin@example.com").await;
    browser
}

async fn register(base: &str, email: &str) {
    let body = json!({"email": email, "password": "correct horse", "name": "Ada"});
    let response = reqwest::Client::new()
        .post(format!("{base}/auth/register"))
        .json(&body)
        .send()
        .await
        .expect("oes-local answers");
    assert_eq!(response.status().as_u16(), 202, "register {email}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_operator_works_the_pipeline_from_the_console_in_a_real_browser() {
    let driver = Driver::start();
    let local = local().await;
    let job_id = dead_job(&local.functions, "dead@example.com").await;
    // Signed in as the admin, the console shows the queues and the counts.
    let browser = signed_in_console(&driver, &local).await;
    shows(
        &browser,
        r#"tr[data-queue="dead-letter"] td.waiting"#,
        "the letter on the DLQ",
        |t| t == "1",
    )
    .await;
    shows(
        &browser,
        r#"tr[data-queue="priority"] td.state"#,
        "the lane's state",
        |t| t == "running",
    )
    .await;
    shows(
        &browser,
        r#"button[data-status="dead"]"#,
        "the dead count",
        |t| t == "dead 1",
    )
    .await;

    // The counts read the job index (thousands of read units with many jobs): a page left open
    // asks for them every fifth poll, not at every one (every 2 s).
    let counts_asked = || async {
        let script = "return performance.getEntriesByType('resource')\
            .filter(e => e.name.includes('/admin/email-jobs/counts')).length;";
        let asked = browser
            .execute(script, vec![])
            .await
            .expect("the script runs");
        asked.as_u64().expect("a count")
    };
    let before = counts_asked().await;
    tokio::time::sleep(Duration::from_secs(10)).await;
    let asked = counts_asked().await - before;
    assert!(
        asked <= 2,
        "the counts were asked for {asked} times in 10 s"
    );

    // The dead job, opened from its letter: its record, its reason, then retried and sent.
    let letter = shows(&browser, "#dlq tbody", "the letter", |t| {
        t.contains(&job_id[..8]) && t.contains("attempts exhausted: Throttling")
    })
    .await;
    assert!(letter.contains("oes-local-email-bulk"), "{letter}");
    click(&browser, "#dlq tbody button").await;
    shows(
        &browser,
        r#"#job-record dd[data-field="status"]"#,
        "the dead job",
        |t| t == "dead",
    )
    .await;
    assert_eq!(text(&browser, "#job-id").await, job_id);
    let record = text(&browser, "#job-record").await;
    assert!(
        record.contains("dead@example.com") && record.contains("attempts exhausted"),
        "{record}"
    );
    assert_eq!(
        text(&browser, r#"#job-record dd[data-field="subject"]"#).await,
        "Your exam timetable",
        "the detail shows the rendered subject"
    );
    click(&browser, "#job-retry").await;
    click(&browser, "#confirm-ok").await;
    shows(
        &browser,
        r#"#job-record dd[data-field="status"]"#,
        "the retried job",
        |t| t == "sent",
    )
    .await;
    assert_eq!(mail_to(&local.outbox, "dead@example.com"), 1, "sent once");
    shows(&browser, "#job-history tbody", "the attempts", |t| {
        t.contains("sent")
    })
    .await;

    // A paused lane keeps what is enqueued (nothing sent); resumed, it drains.
    click(&browser, r#"tr[data-queue="priority"] button.lane-pause"#).await;
    // A pause stops a lane's emails for everyone: the console asks first.
    click(&browser, "#confirm-ok").await;
    shows(
        &browser,
        r#"tr[data-queue="priority"] td.state"#,
        "the paused lane",
        |t| t == "paused",
    )
    .await;
    // A pause stops the next receive: the long poll under way (up to 1 s in oes-local) ends
    // first, as a disabled mapping finishes the poll in hand.
    tokio::time::sleep(Duration::from_millis(2500)).await;
    let waiting = ["grace@example.com", "alan@example.com"];
    for email in waiting {
        register(&local.base, email).await;
    }
    shows(
        &browser,
        r#"tr[data-queue="priority"] td.waiting"#,
        "the paused lane's backlog",
        |t| t == "2",
    )
    .await;
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert_eq!(
        text(&browser, r#"tr[data-queue="priority"] td.waiting"#).await,
        "2",
        "nothing received while paused"
    );
    for email in waiting {
        assert_eq!(
            mail_to(&local.outbox, email),
            0,
            "{email}: sent while paused"
        );
    }
    click(&browser, r#"tr[data-queue="priority"] button.lane-resume"#).await;
    shows(
        &browser,
        r#"tr[data-queue="priority"] td.state"#,
        "the resumed lane",
        |t| t == "running",
    )
    .await;
    shows(
        &browser,
        r#"tr[data-queue="priority"] td.waiting"#,
        "the drained lane",
        |t| t == "0",
    )
    .await;
    let deadline = Instant::now() + PATIENCE;
    while waiting
        .iter()
        .any(|email| mail_to(&local.outbox, email) == 0)
    {
        assert!(Instant::now() < deadline, "the resumed lane sent nothing");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    if let Some(path) = std::env::var_os("OES_CONSOLE_SCREENSHOT") {
        browser
            .execute("window.scrollTo(0, 0)", vec![])
            .await
            .expect("scrolled");
        let png = browser.screenshot().await.expect("a screenshot");
        std::fs::write(&path, png).expect("screenshot written");
    }
    let url = browser.current_url().await.expect("url");
    assert_eq!(url.path(), "/admin/", "no token in the URL");
    assert!(url.query().is_none() && url.fragment().is_none(), "{url}");

    // Signed out, nothing the session read stays in the page.
    click(&browser, "#sign-out").await;
    let left = browser
        .execute(
            "return document.body.textContent.includes('dead@example.com')",
            vec![],
        )
        .await
        .expect("script");
    assert_eq!(
        left,
        json!(false),
        "a recipient stays in the page after sign-out"
    );

    // The admin's device token is kept for this account and sent with its next sign-in, so
    // guesses at the password from elsewhere (which spend the account's budget) do not lock
    // the console out.
    let kept = browser
        .execute(
            "return localStorage.getItem('oes-console-device:admin@example.com') !== null",
            vec![],
        )
        .await
        .expect("script");
    assert_eq!(kept, json!(true), "the device token is kept");
    let watch = r"
        const real = window.fetch;
        window.loginBodies = [];
        window.fetch = (path, init) => {
          if (String(path).includes('/auth/login')) window.loginBodies.push(JSON.parse(init.body));
          return real(path, init);
        };";
    browser.execute(watch, vec![]).await.expect("script");
    sign_in(&browser, "admin@example.com").await;
    shows(&browser, "#who-email", "signed in again", |t| {
        t == "admin@example.com"
    })
    .await;
    let sent = browser
        .execute(
            "return window.loginBodies.map(b => typeof b.device_token)",
            vec![],
        )
        .await
        .expect("script");
    assert_eq!(sent, json!(["string"]), "the sign-in sent the device token");

    // A student's token is refused: the sign-in form is all they get.
    click(&browser, "#sign-out").await;
    sign_in(&browser, "student@example.com").await;
    shows(&browser, "#sign-in-error", "the student refused", |t| {
        t.contains("not an admin")
    })
    .await;
    assert!(
        !browser
            .find(Locator::Id("console"))
            .await
            .expect("in the page")
            .is_displayed()
            .await
            .expect("displayed?"),
        "a student sees no console"
    );
    let kept = browser
        .execute("return sessionStorage.length", vec![])
        .await
        .expect("script");
    assert_eq!(kept, json!(0), "the refused token is not kept");
    let _ = browser.close().await;
}

/// A purge while the store fails (a slow one runs each step out of its time): every step
/// answers 202, letters left, none purged. The console used to walk on, step after step, for as
/// long as the page stayed open, with no way to stop it; it stops by itself after three steps
/// that changed nothing, says why, and offers "Stop" meanwhile as a redrive does. The page's
/// `fetch` of the purge route is answered by the test (the server's steps are the admin API's
/// tests' business).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_purge_that_makes_no_progress_stops_by_itself_and_can_be_stopped() {
    let driver = Driver::start();
    let local = local().await;
    dead_job(&local.functions, "stuck@example.com").await;
    let browser = signed_in_console(&driver, &local).await;
    shows(&browser, "#dlq tbody", "the letter", |t| {
        t.contains("attempts exhausted")
    })
    .await;
    let stalled = r"
        const real = window.fetch;
        window.purgeSteps = 0;
        window.fetch = (path, init) => {
          if (String(path).includes('/admin/dlq/purge')) {
            window.purgeSteps += 1;
            const body = JSON.stringify({ purged: 0, marked: [], skipped: 0, failed: 1, done: false,
              next: 'POST /admin/dlq/purge again' });
            return new Promise((resolve) => setTimeout(() => resolve(new Response(body,
              { status: 202, headers: { 'content-type': 'application/json' } })), 50));
          }
          return real(path, init);
        };";
    browser
        .execute(stalled, vec![])
        .await
        .expect("the script runs");
    click(&browser, "#dlq-purge").await;
    click(&browser, "#confirm-ok").await;
    let said = shows(&browser, "#redrive-progress", "the stalled purge", |t| {
        t.contains("no progress")
    })
    .await;
    assert!(said.contains("could not be recorded"), "{said}");
    let steps = browser
        .execute("return window.purgeSteps", vec![])
        .await
        .expect("the script runs");
    assert_eq!(
        steps,
        json!(3),
        "three steps that changed nothing, then it stopped"
    );
    tokio::time::sleep(Duration::from_millis(500)).await;
    let later = browser
        .execute("return window.purgeSteps", vec![])
        .await
        .expect("the script runs");
    assert_eq!(later, json!(3), "and it stays stopped");
    // The walk lists the dead-letter queue again at its end (a long poll), then the button goes.
    let deadline = Instant::now() + PATIENCE;
    while browser
        .find(Locator::Id("redrive-stop"))
        .await
        .expect("in the page")
        .is_displayed()
        .await
        .expect("displayed?")
    {
        assert!(
            Instant::now() < deadline,
            "the stop button stays once the walk has ended"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let _ = browser.close().await;
}

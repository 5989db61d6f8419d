//! The emailed link's confirmation page in a real browser ([`crate::browser`]): opening the link
//! confirms nothing (mail scanners and link previews open links too); the page's button does,
//! and the page says what happened.

use std::path::Path;
use std::time::{Duration, Instant};

use serde_json::json;

use crate::browser::{Driver, PATIENCE, click, local, shows};

const EMAIL: &str = "grace@example.com";
const PASSWORD: &str = "correct horse battery";

/// The verification link mailed to `to`, once the worker has written it to the outbox.
async fn link_to(outbox: &Path, base: &str, to: &str) -> String {
    let deadline = Instant::now() + PATIENCE;
    let start = format!("{base}/auth/verify-email?token=");
    loop {
        let mails = std::fs::read_dir(outbox).into_iter().flatten().flatten();
        for mail in mails {
            let text = std::fs::read_to_string(mail.path()).unwrap_or_default();
            if text.contains(&format!("To: {to}\r\n"))
                && let Some(link) = text.split_whitespace().find(|w| w.starts_with(&start))
            {
                return link.to_owned();
            }
        }
        assert!(Instant::now() < deadline, "no link mailed to {to}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// The status of signing in as the new account.
async fn sign_in(base: &str) -> u16 {
    reqwest::Client::new()
        .post(format!("{base}/auth/login"))
        .json(&json!({"email": EMAIL, "password": PASSWORD}))
        .send()
        .await
        .expect("oes-local answers")
        .status()
        .as_u16()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_link_confirms_the_address_only_when_its_button_is_pressed() {
    let driver = Driver::start();
    let local = local().await;
    let registered = reqwest::Client::new()
        .post(format!("{}/auth/register", local.base))
        .json(&json!({"email": EMAIL, "password": PASSWORD, "name": "Grace"}))
        .send()
        .await
        .expect("oes-local answers");
    assert_eq!(registered.status().as_u16(), 202);
    let link = link_to(&local.outbox, &local.base, EMAIL).await;

    let browser = driver.browser().await;
    browser.goto(&link).await.expect("the link opens");
    shows(&browser, "h1", "the page", |t| {
        t.contains("Confirm your email address")
    })
    .await;
    assert_eq!(
        sign_in(&local.base).await,
        401,
        "opening it confirmed nothing"
    );
    // The token left the address bar (and the history entry): the next person at this browser
    // cannot press the button for the owner.
    let shown = browser.current_url().await.expect("the page's address");
    assert!(
        !shown.as_str().contains("token="),
        "the address bar still holds the token: {shown}"
    );

    click(&browser, "#confirm").await;
    shows(&browser, "#said", "the answer", |t| {
        t.contains("Confirmed") && t.contains(EMAIL)
    })
    .await;
    assert_eq!(sign_in(&local.base).await, 200, "the button confirmed it");

    // The link is single-use: opened again, its page says so when pressed.
    browser.goto(&link).await.expect("the link opens again");
    click(&browser, "#confirm").await;
    shows(&browser, "#said", "the second answer", |t| {
        t.contains("invalid or has expired")
    })
    .await;
    browser.close().await.expect("the browser closes");
}

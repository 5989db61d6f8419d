//! The end of a graceful stop's drain: a request still running then is cut, as Lambda ends an
//! invocation at its timeout, and its client is answered as API Gateway answers a function that
//! failed (a timed-out invocation is one: 500) — not left running unseen until the process
//! exits.

use std::time::Duration;

use oes_local::gateway::{Drained, Settings, serve_until};
use tokio::io::AsyncReadExt;
use tokio::net::TcpListener;

use crate::browser::embedded_functions;

/// A request whose body never finishes arriving is still running when the drain time ends. It
/// is cut then: its client reads a 500 at once. Before, `serve_until` returned "timed out"
/// while the request went on waiting for its body, its client answered nothing, until the
/// process ended.
#[tokio::test]
async fn a_request_still_running_when_the_drain_ends_is_cut_then() {
    let outbox = std::env::temp_dir().join(format!("oes-drain-{}", uuid::Uuid::new_v4()));
    let functions = embedded_functions(outbox.clone(), "http://127.0.0.1".into()).await;
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("a port");
    let address = listener.local_addr().expect("bound");
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(serve_until(
        listener,
        functions,
        Settings::default(),
        async {
            let _ = stopped.await;
        },
        Duration::from_millis(300),
    ));

    let mut client = crate::stalled_body::stalled_sign_in(address).await;
    tokio::time::sleep(Duration::from_millis(200)).await;
    stop.send(()).expect("the server listens for the stop");
    let drained = server.await.expect("the server's task").expect("served");
    assert_eq!(drained, Drained::TimedOut);

    let mut answer = vec![0; 512];
    let read = tokio::time::timeout(Duration::from_secs(2), client.read(&mut answer))
        .await
        .expect("an answer once the drain ended, not silence")
        .expect("read");
    let answer = String::from_utf8_lossy(&answer[..read]);
    assert!(answer.starts_with("HTTP/1.1 500"), "{answer}");
    assert!(
        answer.contains(r#"{"message":"Internal Server Error"}"#),
        "{answer}"
    );
    let _ = std::fs::remove_dir_all(outbox);
}

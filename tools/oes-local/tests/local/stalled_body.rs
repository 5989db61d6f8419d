//! A request whose body stops arriving: the gateway answers it 408 once the body's read time
//! has passed and closes the connection, instead of holding the connection and the request's
//! task until the process stops.

use std::time::Duration;

use oes_local::gateway::{Settings, serve_until};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

use crate::browser::embedded_functions;

#[tokio::test]
async fn a_body_that_stops_arriving_is_answered_408_and_its_connection_closed() {
    let outbox = std::env::temp_dir().join(format!("oes-stalled-{}", uuid::Uuid::new_v4()));
    let functions = embedded_functions(outbox.clone(), "http://127.0.0.1".into()).await;
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("a port");
    let address = listener.local_addr().expect("bound");
    let settings = Settings {
        body_read_timeout: Duration::from_millis(300),
        ..Settings::default()
    };
    let server = tokio::spawn(serve_until(
        listener,
        functions,
        settings,
        std::future::pending(),
        Duration::ZERO,
    ));

    let mut client = stalled_sign_in(address).await;
    let mut answer = Vec::new();
    tokio::time::timeout(Duration::from_secs(5), client.read_to_end(&mut answer))
        .await
        .expect("an answer and the connection closed, not a wait for the rest of the body")
        .expect("read");
    let answer = String::from_utf8_lossy(&answer);
    assert!(answer.starts_with("HTTP/1.1 408"), "{answer}");
    assert!(answer.contains(r#""code":"request_timeout""#), "{answer}");
    server.abort();
    let _ = std::fs::remove_dir_all(outbox);
}

/// A connection to `address` that sends a sign-in whose body stops after 9 of its 100 bytes.
pub async fn stalled_sign_in(address: std::net::SocketAddr) -> TcpStream {
    let mut client = TcpStream::connect(address).await.expect("connected");
    client
        .write_all(
            b"POST /auth/login HTTP/1.1\r\nHost: localhost\r\ncontent-type: application/json\r\n\
              content-length: 100\r\n\r\n{\"email\":",
        )
        .await
        .expect("sent");
    client
}

//! A `rediss://` URL makes both Redis clients speak TLS (ElastiCache Serverless requires it),
//! checked against a private TLS `redis-server` whose self-signed certificate is not trusted: the
//! server logs a TLS client that refused its certificate (a plain-TCP client would be logged as
//! "wrong version number"), and reads still succeed from the store.

use std::convert::Infallible;
use std::net::TcpStream;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use oes_adapters::redis_cache::RedisCache;
use oes_domain::cache::{CacheSettings, CacheStatus};
use oes_domain::exam::ExamId;
use oes_domain::ports::Cache;
use oes_tests::{Redis, cache_policy_at, free_port, on_both_redis, unique_prefix};

on_both_redis!(a_rediss_url_speaks_tls_and_refuses_a_certificate_it_does_not_trust);

/// A TLS-only `redis-server` with a fresh self-signed certificate; killed when dropped.
struct TlsRedis {
    port: u16,
    dir: PathBuf,
    child: Child,
}

impl TlsRedis {
    async fn start() -> Self {
        let dir = std::env::temp_dir().join(unique_prefix("oes-redis-tls"));
        std::fs::create_dir_all(&dir).expect("temp dir");
        let (cert, key) = (dir.join("cert.pem"), dir.join("key.pem"));
        let made = Command::new("openssl")
            .args(["req", "-x509", "-newkey", "ec", "-pkeyopt"])
            .args(["ec_paramgen_curve:prime256v1", "-nodes", "-days", "1"])
            .args(["-subj", "/CN=127.0.0.1", "-keyout"])
            .arg(&key)
            .arg("-out")
            .arg(&cert)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .expect("openssl is installed");
        assert!(made.success(), "openssl could not make a certificate");
        let port = free_port(false);
        let child = Command::new("redis-server")
            .args(["--bind", "127.0.0.1", "--port", "0", "--save", ""])
            .args(["--tls-port", &port.to_string(), "--tls-auth-clients", "no"])
            .arg("--tls-cert-file")
            .arg(&cert)
            .arg("--tls-key-file")
            .arg(&key)
            .arg("--tls-ca-cert-file")
            .arg(&cert)
            .arg("--dir")
            .arg(&dir)
            .arg("--logfile")
            .arg(dir.join("redis.log"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("redis-server is installed");
        let server = Self { port, dir, child };
        for _ in 0..500 {
            if TcpStream::connect(("127.0.0.1", port)).is_ok() {
                return server;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        panic!("the TLS redis-server did not start (is it built with TLS?)")
    }
}

impl TlsRedis {
    fn log(&self) -> String {
        std::fs::read_to_string(self.dir.join("redis.log")).unwrap_or_default()
    }
}

impl Drop for TlsRedis {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

async fn a_rediss_url_speaks_tls_and_refuses_a_certificate_it_does_not_trust(redis: Redis) {
    let server = TlsRedis::start().await;
    let url = format!("rediss://127.0.0.1:{}", server.port);
    let cache =
        RedisCache::connect(&url, redis.topology(), Duration::from_secs(2)).expect("a TLS URL");
    cache
        .get("k", "v")
        .await
        .expect_err("the self-signed certificate is not trusted");
    let mut log = server.log();
    for _ in 0..250 {
        if log.contains(" alert ") {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
        log = server.log();
    }
    assert!(
        log.contains("SSL routines::")
            && log.contains(" alert ")
            && !log.contains("wrong version number"),
        "the server saw a TLS client refuse its certificate:\n{log}"
    );

    let policy = cache_policy_at(
        &url,
        redis.topology(),
        &unique_prefix("t-tls"),
        CacheSettings::default(),
    );
    let key = policy.keys().exam(&ExamId::generate());
    let read = policy
        .get_or_load(&key, || async { Ok::<_, Infallible>(Some(1u8)) })
        .await;
    assert_eq!(read, Ok((Some(1), CacheStatus::Bypass)));
}

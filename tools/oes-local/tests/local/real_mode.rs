//! `oes-local` in its real mode, against the local services (`make test` exports their
//! addresses): the JWT key comes from the emulator's Secrets Manager, as the functions' does.

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};

use oes_adapters::aws::AwsClients;
use oes_adapters::resources::jwt_secret_name;
use oes_adapters::secrets::read_secret;
use oes_domain::security::{JwtKeys, JwtSettings, Secret};

/// The running binary; killed when dropped.
struct RealServer {
    child: Child,
    base: String,
}

impl Drop for RealServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A local service's address from the environment `make test` runs the tests in.
fn service(name: &str) -> String {
    std::env::var(name).unwrap_or_else(|_| {
        panic!("{name} is not set: run the tests with the services' environment (`make test`)")
    })
}

/// `oes-local` in real mode over the resources named `prefix`, the demo accounts seeded.
fn start(prefix: &str) -> RealServer {
    let mut child = Command::new(env!("CARGO_BIN_EXE_oes-local"))
        .args(["--addr", "127.0.0.1:0", "--seed-students", "1"])
        .env("AWS_ENDPOINT_URL", service("AWS_ENDPOINT_URL"))
        .env("REDIS_URL", service("REDIS_URL"))
        .env("OES_PREFIX", prefix)
        .env("OES_DEMO_PASSWORD", "demo-password-123")
        .env_remove("OES_JWT_SECRET")
        .env_remove("OES_JWT_SECRET_ARN")
        .env_remove("OES_JWT_ISSUER")
        .env_remove("OES_PUBLIC_BASE_URL")
        .env("RUST_LOG", "warn")
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("oes-local starts");
    let lines = BufReader::new(child.stdout.take().expect("stdout")).lines();
    let base = lines
        .map_while(Result::ok)
        .find_map(|line| Some(line[line.find("on http://")? + 3..].trim().to_owned()))
        .unwrap_or_else(|| panic!("oes-local (real mode) printed no address"));
    RealServer { child, base }
}

async fn me(client: &reqwest::Client, server: &RealServer, token: &str) -> u16 {
    client
        .get(format!("{}/auth/me", server.base))
        .bearer_auth(token)
        .send()
        .await
        .expect("oes-local answers")
        .status()
        .as_u16()
}

/// The key is the emulator's `<prefix>-jwt`, the secret `env.json` names for the functions
/// `sam local invoke` runs, so they accept these tokens; and it is kept, so a token outlives a
/// restart.
#[tokio::test]
async fn real_mode_signs_with_the_emulators_secret_and_its_tokens_outlive_a_restart() {
    let prefix = format!("t{}", &uuid::Uuid::new_v4().simple().to_string()[..12]);
    let client = reqwest::Client::new();
    let server = start(&prefix);
    let signed_in: serde_json::Value = client
        .post(format!("{}/auth/login", server.base))
        .json(&serde_json::json!({
            "email": "instructor@example.com",
            "password": "demo-password-123",
        }))
        .send()
        .await
        .expect("oes-local answers")
        .json()
        .await
        .expect("a JSON answer");
    let token = signed_in["access_token"]
        .as_str()
        .unwrap_or_else(|| panic!("no token: {signed_in}"))
        .to_owned();
    assert_eq!(me(&client, &server, &token).await, 200);

    let clients = AwsClients::load(Some(&service("AWS_ENDPOINT_URL")))
        .await
        .expect("the emulator's clients");
    let key = read_secret(&clients.secrets(), &jwt_secret_name(&prefix))
        .await
        .expect("oes-local made the secret");
    let functions = JwtKeys::new(&JwtSettings {
        secret: Secret::new(key),
        // What a function reads with env.json's variables, and with none of them.
        issuer: "oes".into(),
        audience: "oes-api".into(),
        ttl_seconds: 3600,
    });
    functions
        .verify(&token)
        .unwrap_or_else(|e| panic!("a function with the secret's key refuses the token: {e}"));

    drop(server);
    let again = start(&prefix);
    assert_eq!(
        me(&client, &again, &token).await,
        200,
        "the token did not outlive a restart"
    );
}

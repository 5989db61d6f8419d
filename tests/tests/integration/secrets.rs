//! The JWT signing key read from Secrets Manager (in the emulator) at init, as the deployed
//! functions do: the environment carries only the secret's ARN.

use oes_adapters::resources::{jwt_secret_name, provision_jwt_secret};
use oes_runtime::config::{ApiConfig, Env};
use oes_runtime::wiring::resolve_jwt_secret;
use oes_tests::TestEnv;

fn env_with(pairs: Vec<(&'static str, String)>) -> Env<impl Fn(&str) -> Option<String>> {
    Env(move |name: &str| {
        pairs
            .iter()
            .find(|(k, _)| *k == name)
            .map(|(_, v)| v.clone())
    })
}

fn base(env: &TestEnv) -> Vec<(&'static str, String)> {
    let p = &env.provisioned;
    vec![
        ("OES_TABLE", p.table.clone()),
        ("OES_PRIORITY_QUEUE_URL", p.priority_queue_url.clone()),
        ("OES_BULK_QUEUE_URL", p.bulk_queue_url.clone()),
    ]
}

#[tokio::test]
async fn the_signing_key_is_read_from_secrets_manager_when_only_its_arn_is_set() {
    let env = TestEnv::spawn().await;
    let key = format!("{}-generated-signing-key-0123456789abcdef", env.prefix);
    let arn = env.jwt_secret(&key).await;

    let mut vars = base(&env);
    vars.push(("OES_JWT_SECRET_ARN", arn.clone()));
    let resolved = resolve_jwt_secret(env_with(vars), &env.clients)
        .await
        .expect("the secret is read");
    let config = ApiConfig::load(&resolved).expect("the config loads");
    assert_eq!(config.jwt.secret.expose(), key);
    assert!(
        !format!("{config:?}").contains(&key),
        "the key never prints"
    );

    // A key set directly wins (local runs), and Secrets Manager is not asked.
    let mut vars = base(&env);
    vars.push((
        "OES_JWT_SECRET_ARN",
        "arn:aws:secretsmanager:us-east-1:123456789012:secret:missing".into(),
    ));
    vars.push((
        "OES_JWT_SECRET",
        "a-local-key-of-at-least-32-bytes-0000".into(),
    ));
    let resolved = resolve_jwt_secret(env_with(vars), &env.clients)
        .await
        .expect("not read");
    let config = ApiConfig::load(&resolved).expect("the config loads");
    assert_eq!(
        config.jwt.secret.expose(),
        "a-local-key-of-at-least-32-bytes-0000"
    );
}

#[tokio::test]
async fn a_missing_secret_stops_start_up_with_a_message_naming_it() {
    let env = TestEnv::spawn().await;
    let missing = format!("{}-no-such-secret", env.prefix);
    let mut vars = base(&env);
    vars.push(("OES_JWT_SECRET_ARN", missing.clone()));
    let error = match resolve_jwt_secret(env_with(vars), &env.clients).await {
        Ok(_) => panic!("a missing secret must stop start-up"),
        Err(error) => error.to_string(),
    };
    assert!(error.contains(&missing), "{error}");
    // And why: not found, denied, or unreachable call for different fixes.
    assert!(error.contains("ResourceNotFoundException"), "{error}");
}

/// `oesctl provision` and `oes-local` (real mode) make the emulator's JWT key secret, the one
/// `env.json` names for `sam local invoke`: made once with a random key, then kept with it, so the
/// tokens `oes-local` issues outlive its restarts and the functions read the same key.
#[tokio::test]
async fn the_local_signing_key_secret_is_made_once_and_kept_with_its_key() {
    let env = TestEnv::spawn().await;
    let name = provision_jwt_secret(&env.clients, &env.prefix)
        .await
        .expect("the secret is made");
    assert_eq!(name, jwt_secret_name(&env.prefix));
    let clients = &env.clients;
    let key = |name: String| {
        let mut vars = base(&env);
        vars.push(("OES_JWT_SECRET_ARN", name));
        async move {
            let resolved = resolve_jwt_secret(env_with(vars), clients)
                .await
                .expect("the secret is read by its name");
            ApiConfig::load(&resolved)
                .expect("its key is one the APIs accept")
                .jwt
                .secret
                .expose()
                .to_owned()
        }
    };
    let first = key(name.clone()).await;

    let again = provision_jwt_secret(&env.clients, &env.prefix)
        .await
        .expect("a second provision finds it");
    assert_eq!(again, name);
    assert_eq!(key(again).await, first, "the key is kept");

    let other = format!("{}-other", env.prefix);
    let other = provision_jwt_secret(&env.clients, &other)
        .await
        .expect("another prefix's secret");
    assert_ne!(key(other).await, first, "each secret has a random key");
}

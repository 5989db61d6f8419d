//! The layering the README draws, read from `cargo metadata` so that it is a rule and not a
//! convention: the domain's dependency tree holds no SDK, no Redis, no Lambda types and no HTTP
//! server, and every workspace crate depends only on crates below it.

use std::collections::{BTreeSet, HashMap};
use std::process::Command;

use serde_json::Value;

/// The workspace's crates by layer, lowest first. A crate may depend only on lower layers.
const LAYERS: &[&[&str]] = &[
    &["oes-domain"],
    &["oes-adapters"],
    &["oes-runtime"],
    &["auth-api", "exam-api", "admin-api", "email-worker"],
    &[
        "oes-local",
        "oesctl",
        "oes-bench",
        "floor-http",
        "oes-sim",
        "oes-load",
    ],
    &["oes-tests"],
];

/// Crates the domain must never pull in, directly or not (name prefixes).
const NOT_IN_THE_DOMAIN: &[&str] = &["aws-", "aws_", "redis", "lambda_", "hyper"];

/// Named like the AWS crates but none of them: AWS-LC, a cryptography library (the JWT's HMAC,
/// and the TLS stack's provider), not a client of any AWS service.
const CRYPTOGRAPHY: &[&str] = &["aws-lc-rs", "aws-lc-sys"];

struct Graph {
    /// Package id → name.
    names: HashMap<String, String>,
    /// Package id → (dependency id, kinds: "normal", "dev", "build").
    deps: HashMap<String, Vec<(String, Vec<String>)>>,
}

impl Graph {
    fn load() -> Self {
        let metadata = cargo(&["metadata", "--format-version", "1", "--locked"]);
        let metadata: Value = serde_json::from_slice(&metadata).expect("metadata is JSON");
        let names = metadata["packages"]
            .as_array()
            .expect("packages")
            .iter()
            .map(|p| (string(&p["id"]), string(&p["name"])))
            .collect();
        let deps = metadata["resolve"]["nodes"]
            .as_array()
            .expect("resolve.nodes")
            .iter()
            .map(|node| {
                let deps = node["deps"]
                    .as_array()
                    .expect("deps")
                    .iter()
                    .map(|dep| {
                        let kinds = dep["dep_kinds"]
                            .as_array()
                            .expect("dep_kinds")
                            .iter()
                            .map(|k| k["kind"].as_str().unwrap_or("normal").to_owned())
                            .collect();
                        (string(&dep["pkg"]), kinds)
                    })
                    .collect();
                (string(&node["id"]), deps)
            })
            .collect();
        Self { names, deps }
    }

    fn id(&self, name: &str) -> String {
        let ids: Vec<&String> = self
            .names
            .iter()
            .filter(|(_, n)| n.as_str() == name)
            .map(|(id, _)| id)
            .collect();
        assert_eq!(ids.len(), 1, "one package named {name}: {ids:?}");
        ids[0].clone()
    }

    /// Everything `root` needs to build and to build its own tests: its normal, build and dev
    /// dependencies, and their normal and build dependencies, transitively (each version of a
    /// crate followed: two versions may depend on different crates).
    fn tree(&self, root: &str) -> BTreeSet<String> {
        let root = self.id(root);
        let mut seen = BTreeSet::new();
        let mut stack: Vec<String> = self.deps[&root].iter().map(|(id, _)| id.clone()).collect();
        while let Some(id) = stack.pop() {
            if !seen.insert(id.clone()) {
                continue;
            }
            for (dep, kinds) in &self.deps[&id] {
                if kinds.iter().any(|k| k != "dev") {
                    stack.push(dep.clone());
                }
            }
        }
        seen.iter().map(|id| self.names[id].clone()).collect()
    }

    /// The workspace crates `name` depends on (any kind), by name.
    fn workspace_deps(&self, name: &str) -> Vec<String> {
        let workspace: BTreeSet<&str> = LAYERS.iter().flat_map(|l| l.iter().copied()).collect();
        self.deps[&self.id(name)]
            .iter()
            .map(|(id, _)| self.names[id].clone())
            .filter(|n| workspace.contains(n.as_str()))
            .collect()
    }
}

/// What `cargo args…` prints, run in the workspace.
fn cargo(args: &[&str]) -> Vec<u8> {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let output = Command::new(cargo)
        .args(args)
        .current_dir(concat!(env!("CARGO_MANIFEST_DIR"), "/.."))
        .output()
        .expect("run cargo");
    assert!(
        output.status.success(),
        "cargo {}: {}",
        args.join(" "),
        String::from_utf8_lossy(&output.stderr)
    );
    output.stdout
}

fn string(value: &Value) -> String {
    value.as_str().expect("a string").to_owned()
}

fn forbidden_in_domain(tree: &BTreeSet<String>) -> Vec<&String> {
    tree.iter()
        .filter(|name| NOT_IN_THE_DOMAIN.iter().any(|p| name.starts_with(p)))
        .filter(|name| !CRYPTOGRAPHY.contains(&name.as_str()))
        .collect()
}

#[test]
fn the_domain_builds_and_tests_without_an_sdk_redis_lambda_or_hyper() {
    let graph = Graph::load();
    let domain = graph.tree("oes-domain");
    assert!(
        forbidden_in_domain(&domain).is_empty(),
        "oes-domain pulls in {:?}",
        forbidden_in_domain(&domain)
    );
    // The check sees such crates where they are: the adapters' tree has them.
    let adapters = graph.tree("oes-adapters");
    let found = forbidden_in_domain(&adapters);
    for expected in ["aws-sdk-dynamodb", "aws-sdk-sqs", "aws-sdk-sesv2", "redis"] {
        assert!(
            found.iter().any(|n| n.as_str() == expected),
            "{expected} not seen in the adapters' tree: the check is blind"
        );
    }
}

/// What a function needs one version of: its HTTP stack and its TLS stack.
const ONE_VERSION_EACH: &[&str] = &[
    "hyper",
    "h2",
    "http",
    "rustls",
    "hyper-rustls",
    "tokio-rustls",
];

/// What no function runs: `ring`, a second TLS provider beside AWS-LC; `rsa`, which the JWT's
/// RustCrypto backend brings (RUSTSEC-2023-0071) for tokens oes never signs with RSA.
const NOT_IN_A_FUNCTION: &[&str] = &["ring", "rsa"];

/// What `package` links as it deploys (built alone, for this machine): "name version" each.
/// `cargo tree`, not the metadata above: the metadata's graph also lists optional dependencies
/// that no build turns on.
fn linked(package: &str) -> BTreeSet<String> {
    let tree = cargo(&[
        "tree", "--locked", "-e", "normal", "--prefix", "none", "--format", "{p}", "-p", package,
    ]);
    String::from_utf8(tree)
        .expect("cargo tree prints UTF-8")
        .lines()
        .filter_map(|line| {
            let mut words = line.split_whitespace();
            Some(format!("{} {}", words.next()?, words.next()?))
        })
        .collect()
}

#[test]
fn each_function_links_one_http_stack_and_one_tls_stack() {
    // The AWS SDK's service crates turn on its legacy HTTPS client by default (hyper 0.14,
    // rustls 0.21, ring): a second stack, linked in and never used (docs/BENCHMARKS.md, "Cold
    // starts"). Cargo.toml turns it off; this keeps it off.
    for function in ["auth-api", "exam-api", "admin-api", "email-worker"] {
        let linked = linked(function);
        let versions = |name: &str| -> Vec<&String> {
            let prefix = format!("{name} v");
            linked.iter().filter(|p| p.starts_with(&prefix)).collect()
        };
        assert!(
            !versions("aws-sdk-dynamodb").is_empty(),
            "{function}: the SDK not seen in {linked:?}: the check is blind"
        );
        for stack in ONE_VERSION_EACH {
            assert_eq!(
                versions(stack).len(),
                1,
                "{function} links {:?}",
                versions(stack)
            );
        }
        for unwanted in NOT_IN_A_FUNCTION {
            assert!(versions(unwanted).is_empty(), "{function} links {unwanted}");
        }
    }
}

#[test]
fn every_workspace_crate_depends_only_on_lower_layers() {
    let graph = Graph::load();
    let layer_of: HashMap<&str, usize> = LAYERS
        .iter()
        .enumerate()
        .flat_map(|(i, layer)| layer.iter().map(move |name| (*name, i)))
        .collect();
    let mut wrong = Vec::new();
    for (name, layer) in &layer_of {
        for dep in graph.workspace_deps(name) {
            if layer_of[dep.as_str()] >= *layer {
                wrong.push(format!(
                    "{name} (layer {layer}) → {dep} (layer {})",
                    layer_of[dep.as_str()]
                ));
            }
        }
    }
    assert!(
        wrong.is_empty(),
        "dependencies that point up or sideways: {wrong:#?}"
    );
    // Every workspace member has a layer.
    let members = graph
        .names
        .iter()
        .filter(|(id, _)| id.starts_with("path+file://"))
        .map(|(_, name)| name.as_str())
        .filter(|name| !layer_of.contains_key(name))
        .collect::<Vec<_>>();
    assert!(
        members.is_empty(),
        "workspace crates without a layer: {members:?}"
    );
}

/// Code of `binary` (as `cargo build --workspace` left it) from crate `krate`: its symbols that
/// name the crate, drop glue aside (a type's destructor is linked wherever the type is held).
fn code_from(binary: &str, krate: &str) -> usize {
    let path = crate::runtime_api::built(binary);
    let output = Command::new("nm")
        .arg("--demangle")
        .arg(&path)
        .output()
        .unwrap_or_else(|e| panic!("nm (binutils, beside the linker): {e}"));
    assert!(output.status.success(), "nm {}", path.display());
    String::from_utf8_lossy(&output.stdout)
        .lines()
        .filter(|symbol| symbol.contains(krate) && !symbol.contains("drop_in_place"))
        .count()
}

/// Issue 14: only admin-api pauses and resumes the lanes, so only admin-api links Lambda's
/// client. Its construction (the SDK client's runtime plugins, its endpoint rules) had been in
/// every API function's wiring, and the others' cold start paid for it: exam-api without it
/// initialises in 0.94× the time (docs/BENCHMARKS.md, "Cold starts").
#[test]
fn only_admin_api_links_the_lambda_client() {
    assert!(
        code_from("admin-api", "aws_sdk_lambda") > 0,
        "admin-api links no Lambda client code: the check is blind"
    );
    for binary in ["auth-api", "exam-api", "attempt-sweeper", "email-worker"] {
        assert_eq!(
            code_from(binary, "aws_sdk_lambda"),
            0,
            "{binary} links Lambda's client"
        );
    }
}

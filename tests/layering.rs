//! The layering of the workspace, checked on the real dependency trees so that it cannot rot:
//! the pure core links no database, command-line, async-runtime or AWS crate; the embedded
//! adapters link no command-line or AWS crate; the contract suite and the generator link no
//! database, command-line or AWS crate; the AWS adapters link no database or command-line crate,
//! and they are the only crate that depends on an `aws-sdk-*` service crate. A crate added to
//! the wrong layer, directly or through another crate, fails here with the path that brought
//! it in. Every crate forbids unsafe code (the workspace's lints, which every member takes).

use std::process::Command;

/// One rule: `package`'s normal and build dependencies (on every target) hold none of
/// `forbidden` (a trailing `*` matches a prefix).
struct Rule {
    package: &'static str,
    forbidden: &'static [&'static str],
    why: &'static str,
}

const RULES: &[Rule] = &[
    Rule {
        package: "nudge-core",
        forbidden: &[
            "rusqlite",
            "libsqlite3-sys",
            "clap",
            "indicatif",
            "mimalloc",
            "tokio",
            "lambda_runtime",
            "aws-*",
        ],
        why: "the core is pure (no I/O runtime) and is linked by every Lambda function",
    },
    Rule {
        package: "nudge-local",
        forbidden: &["clap", "indicatif", "lambda_runtime", "aws-*"],
        why: "the embedded adapters serve the command line and tests, not AWS",
    },
    Rule {
        package: "nudge-testkit",
        forbidden: &["rusqlite", "libsqlite3-sys", "clap", "indicatif", "aws-*"],
        why: "the contract suite must run against any store, DynamoDB's included, alone",
    },
    Rule {
        package: "nudge-synth",
        forbidden: &[
            "rusqlite",
            "libsqlite3-sys",
            "clap",
            "indicatif",
            "tokio",
            "aws-*",
        ],
        why: "the generator only writes JSON lines",
    },
    Rule {
        package: "nudge-aws",
        forbidden: &[
            "rusqlite",
            "libsqlite3-sys",
            "clap",
            "indicatif",
            "nudge-local",
        ],
        why: "the AWS adapters are linked by every Lambda function, which has no disk or terminal",
    },
    Rule {
        package: "nudge-review",
        forbidden: &[
            "rusqlite",
            "libsqlite3-sys",
            "clap",
            "tokio",
            "lambda_runtime",
            "aws-*",
        ],
        why: "the marketer's tools are generic over the store; the command line wires them",
    },
    Rule {
        package: "nudge-lambda",
        forbidden: &[
            "rusqlite",
            "libsqlite3-sys",
            "clap",
            "indicatif",
            "nudge-local",
        ],
        why: "the functions' handlers run on Lambda, with no disk or terminal",
    },
    Rule {
        package: "nudge",
        forbidden: &["nudge-lambda", "lambda_runtime", "aws_lambda_events"],
        why: "the command line is no Lambda function: it reads DynamoDB through the AWS \
              adapters and replays Shopify deliveries through the core's mapping",
    },
];

/// What a function crate under `functions/` may depend on directly: it is wiring only (its
/// handler is in nudge-lambda).
const FUNCTION_DEPENDENCIES: &[&str] = &[
    "nudge-lambda",
    "lambda_runtime",
    "aws_lambda_events",
    "serde_json",
    "tokio",
];

/// The one workspace package allowed to depend on `aws-sdk-*` service crates.
const AWS_PACKAGE: &str = "nudge-aws";

/// The forbidden crates found in `tree` (the output of `cargo tree --prefix depth`), each with
/// the chain of packages that brings it in, outermost first.
fn violations(tree: &str, forbidden: &[&str]) -> Vec<String> {
    let matches = |name: &str| {
        forbidden.iter().any(|f| match f.strip_suffix('*') {
            Some(prefix) => name.starts_with(prefix),
            None => name == *f,
        })
    };
    let mut chain: Vec<&str> = Vec::new();
    let mut found = Vec::new();
    for line in tree.lines() {
        // `<depth><name> v<version> ...`, as `--prefix depth` prints it.
        let digits = line.bytes().take_while(u8::is_ascii_digit).count();
        let Ok(depth) = line[..digits].parse::<usize>() else {
            continue;
        };
        let Some(name) = line[digits..].split_whitespace().next() else {
            continue;
        };
        chain.truncate(depth);
        chain.push(name);
        if matches(name) {
            found.push(chain.join(" -> "));
        }
    }
    found.sort();
    found.dedup();
    found
}

/// `cargo tree` of `package`: normal and build dependencies, on every target.
fn dependency_tree(package: &str) -> String {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".to_owned());
    let output = Command::new(cargo)
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .args(["tree", "--locked", "--offline", "--target", "all"])
        .args(["--edges", "normal,build", "--prefix", "depth"])
        .args(["--format", "{p}", "--package", package])
        .output()
        .expect("cargo runs");
    assert!(
        output.status.success(),
        "cargo tree -p {package} failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8(output.stdout).expect("cargo tree prints UTF-8")
}

#[test]
fn every_crate_links_only_what_its_layer_allows() {
    let mut broken = Vec::new();
    for rule in RULES {
        let tree = dependency_tree(rule.package);
        assert!(
            tree.lines().count() > 10,
            "cargo tree of {} printed almost nothing:\n{tree}",
            rule.package
        );
        for path in violations(&tree, rule.forbidden) {
            broken.push(format!("{}: {path} ({})", rule.package, rule.why));
        }
    }
    assert!(
        broken.is_empty(),
        "forbidden dependencies:\n{}",
        broken.join("\n")
    );
}

/// The workspace's packages other than [`AWS_PACKAGE`] that depend directly on an `aws-sdk-*`
/// crate (normal, build or dev dependencies), as `package -> dependency`; from `cargo metadata`.
fn direct_aws_sdk_users(metadata: &serde_json::Value) -> Vec<String> {
    let mut found = Vec::new();
    for package in metadata["packages"].as_array().into_iter().flatten() {
        let name = package["name"].as_str().unwrap_or_default();
        for dependency in package["dependencies"].as_array().into_iter().flatten() {
            let dependency = dependency["name"].as_str().unwrap_or_default();
            if dependency.starts_with("aws-sdk-") && name != AWS_PACKAGE {
                found.push(format!("{name} -> {dependency}"));
            }
        }
    }
    found
}

/// The direct dependencies of the function crates (their manifests under `functions/`) that
/// are not in [`FUNCTION_DEPENDENCIES`], as `package -> dependency`.
fn function_extras(metadata: &serde_json::Value) -> Vec<String> {
    let mut found = Vec::new();
    for package in metadata["packages"].as_array().into_iter().flatten() {
        let manifest = package["manifest_path"].as_str().unwrap_or_default();
        if !manifest.contains("/functions/") {
            continue;
        }
        let name = package["name"].as_str().unwrap_or_default();
        for dependency in package["dependencies"].as_array().into_iter().flatten() {
            let dependency = dependency["name"].as_str().unwrap_or_default();
            if !FUNCTION_DEPENDENCIES.contains(&dependency) {
                found.push(format!("{name} -> {dependency}"));
            }
        }
    }
    found
}

fn workspace_metadata() -> serde_json::Value {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".to_owned());
    let output = Command::new(cargo)
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .args(["metadata", "--locked", "--offline", "--no-deps"])
        .args(["--format-version", "1"])
        .output()
        .expect("cargo runs");
    assert!(
        output.status.success(),
        "cargo metadata failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    serde_json::from_slice(&output.stdout).expect("cargo metadata prints JSON")
}

#[test]
fn function_crates_are_wiring_only() {
    let metadata = workspace_metadata();
    let functions: Vec<&str> = metadata["packages"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|p| {
            p["manifest_path"]
                .as_str()
                .is_some_and(|m| m.contains("/functions/"))
        })
        .filter_map(|p| p["name"].as_str())
        .collect();
    assert!(functions.contains(&"ingest"), "{functions:?}");
    assert_eq!(
        function_extras(&metadata),
        Vec::<String>::new(),
        "a function crate depends directly only on {FUNCTION_DEPENDENCIES:?}: its logic belongs in nudge-lambda"
    );
    let example = serde_json::json!({"packages": [
        {"name": "ingest", "manifest_path": "/r/functions/ingest/Cargo.toml",
         "dependencies": [{"name": "nudge-lambda"}, {"name": "aws-config"}]},
        {"name": "nudge-aws", "manifest_path": "/r/crates/aws/Cargo.toml",
         "dependencies": [{"name": "aws-config"}]},
    ]});
    assert_eq!(function_extras(&example), ["ingest -> aws-config"]);
}

#[test]
fn only_the_aws_crate_depends_on_aws_sdk_service_crates() {
    let metadata = workspace_metadata();
    let packages = metadata["packages"].as_array().map_or(0, Vec::len);
    assert!(
        metadata["packages"]
            .as_array()
            .into_iter()
            .flatten()
            .any(|p| p["name"] == AWS_PACKAGE),
        "{AWS_PACKAGE} is not in the workspace ({packages} packages)"
    );
    assert_eq!(
        direct_aws_sdk_users(&metadata),
        Vec::<String>::new(),
        "only {AWS_PACKAGE} may depend on aws-sdk-* service crates"
    );
}

#[test]
fn a_direct_aws_sdk_dependency_outside_the_aws_crate_is_found() {
    let metadata = serde_json::json!({"packages": [
        {"name": "nudge-aws", "dependencies": [{"name": "aws-sdk-sesv2"}]},
        {"name": "nudge-core", "dependencies": [{"name": "aws-config"}, {"name": "chrono"}]},
        {"name": "nudge", "dependencies": [{"name": "aws-sdk-dynamodb"}]},
    ]});
    assert_eq!(
        direct_aws_sdk_users(&metadata),
        ["nudge -> aws-sdk-dynamodb"]
    );
}

#[test]
fn a_forbidden_crate_is_found_however_deep_and_named_with_its_path() {
    let tree = "\
0nudge-core v0.1.0 (/w/crates/core)
1chrono v0.4.42
2num-traits v0.2.19
1helper v1.0.0
2deeper v1.0.0
3aws-sdk-dynamodb v1.0.0
1rusqlite v0.37.0
2libsqlite3-sys v0.35.0
1tokio-util v0.7.0
";
    assert_eq!(
        violations(tree, &["rusqlite", "aws-*", "tokio"]),
        [
            "nudge-core -> helper -> deeper -> aws-sdk-dynamodb",
            "nudge-core -> rusqlite",
        ],
        "a prefix rule matches any depth; an exact name does not match a longer one"
    );
    assert!(violations(tree, &["clap"]).is_empty());
}

/// The `[lints]` table of a manifest's text says `workspace = true`.
fn takes_the_workspace_lints(manifest: &str) -> bool {
    let mut in_lints = false;
    for line in manifest.lines().map(str::trim) {
        if line.starts_with('[') {
            in_lints = line == "[lints]";
        } else if in_lints && line.replace(' ', "") == "workspace=true" {
            return true;
        }
    }
    false
}

/// No unsafe code: the workspace forbids it (the fuzz targets' quick build leaves
/// AddressSanitizer to the long runs on that ground, scripts/fuzz), and every member takes the
/// workspace's lints, so that a new crate cannot opt out by omission.
#[test]
fn every_crate_forbids_unsafe_code() {
    let root = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/Cargo.toml"))
        .expect("the root manifest reads");
    assert!(
        root.contains("[workspace.lints.rust]\nunsafe_code = \"forbid\""),
        "the root Cargo.toml forbids unsafe code for the workspace"
    );
    let metadata = workspace_metadata();
    let mut members = 0;
    for package in metadata["packages"].as_array().into_iter().flatten() {
        let manifest = package["manifest_path"].as_str().unwrap_or_default();
        let text = std::fs::read_to_string(manifest).expect("a member's manifest reads");
        assert!(
            takes_the_workspace_lints(&text),
            "{manifest} has no `[lints]` table with `workspace = true`"
        );
        members += 1;
    }
    assert!(members >= 13, "{members} members");
    assert!(!takes_the_workspace_lints("[package]\nname = \"x\"\n"));
    assert!(!takes_the_workspace_lints(
        "[lints]\n[dependencies]\nworkspace = true\n"
    ));
    assert!(takes_the_workspace_lints("[lints]\nworkspace=true\n"));
}

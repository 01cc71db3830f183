//! Secrets come only from SSM: the SAM template gives no function a secret, and the code the
//! functions are built from reads its keys only from SSM parameters. `nudge simulate`'s
//! `NUDGE_SIGNING_KEY` (and `NUDGE_WEBHOOK_SECRET_<NAME>`) are the local exception: the CLI's,
//! never a function's.

use serde_json::Value;

use crate::helpers::root;

/// Words that make a variable's or a parameter's name a secret's.
const SECRET_WORDS: [&str; 5] = ["KEY", "SECRET", "TOKEN", "PASSWORD", "CREDENTIAL"];

fn names_a_secret(name: &str) -> bool {
    let upper = name.to_ascii_uppercase();
    SECRET_WORDS.iter().any(|w| upper.contains(w))
}

fn template() -> Value {
    let path = root().join("infra/template.yaml");
    let text = std::fs::read_to_string(&path).unwrap();
    serde_saphyr::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// Every `Environment: Variables:` map of the template (`Globals` and each function), with
/// where it is.
fn environments(v: &Value, at: &str, out: &mut Vec<(String, serde_json::Map<String, Value>)>) {
    match v {
        Value::Object(map) => {
            if let Some(Value::Object(vars)) =
                map.get("Environment").and_then(|e| e.get("Variables"))
            {
                out.push((at.to_owned(), vars.clone()));
            }
            for (k, child) in map {
                environments(child, &format!("{at}.{k}"), out);
            }
        }
        Value::Array(items) => {
            for (i, child) in items.iter().enumerate() {
                environments(child, &format!("{at}[{i}]"), out);
            }
        }
        _ => {}
    }
}

/// A variable that names a secret holds an SSM parameter's name (`/<stack>/…`), never a value.
#[test]
fn no_function_environment_holds_a_secret() {
    let mut envs = Vec::new();
    environments(&template(), "template", &mut envs);
    assert!(
        envs.len() >= 3,
        "the template's environments were not found: {envs:?}"
    );
    let mut secret_names = 0;
    for (at, vars) in &envs {
        for (name, value) in vars {
            if !names_a_secret(name) {
                continue;
            }
            secret_names += 1;
            assert!(
                name.ends_with("_PARAMETER"),
                "{at}.{name}: a secret's variable must hold its parameter's name (…_PARAMETER)"
            );
            let text = match value {
                Value::String(s) => s.clone(),
                other => other.to_string(),
            };
            assert!(
                text.contains("/${") || text.starts_with('/'),
                "{at}.{name} = {text}: not an SSM parameter's name"
            );
        }
    }
    assert!(
        secret_names >= 1,
        "NUDGE_SIGNING_KEY_PARAMETER was not found"
    );
}

/// No parameter that names a secret has a default, and none is a secret at all: the template
/// takes no secret (the operator puts them in SSM).
#[test]
fn no_template_parameter_is_or_defaults_a_secret() {
    let t = template();
    let parameters = t["Parameters"].as_object().expect("Parameters");
    assert!(parameters.len() >= 5);
    for (name, p) in parameters {
        assert!(
            !names_a_secret(name) && p.get("NoEcho").is_none(),
            "parameter {name} takes a secret: put it in SSM instead"
        );
    }
}

/// The code a function is built from (crates/lambda, functions/) never reads a key from the
/// environment: not the CLI's signing key variable, not the local webhook secrets.
#[test]
fn the_functions_read_no_secret_from_the_environment() {
    let mut files = Vec::new();
    for dir in ["crates/lambda/src", "functions"] {
        collect_rust(&root().join(dir), &mut files);
    }
    assert!(files.len() >= 10, "{files:?}");
    for file in files {
        let text = std::fs::read_to_string(&file).unwrap();
        for local_only in [
            "Signer::from_env",
            "SIGNING_KEY_ENV",
            "NUDGE_SIGNING_KEY\"",
            "EnvSecrets",
            "NUDGE_WEBHOOK_SECRET",
            "Signer::development",
        ] {
            let code: String = text
                .lines()
                .take_while(|l| !l.contains("#[cfg(test)]"))
                .collect::<Vec<_>>()
                .join("\n");
            assert!(
                !code.contains(local_only),
                "{}: {local_only} is the CLI's local key or secret, never a function's",
                file.display()
            );
        }
    }
}

fn collect_rust(dir: &std::path::Path, out: &mut Vec<std::path::PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            if !path.ends_with("target") {
                collect_rust(&path, out);
            }
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

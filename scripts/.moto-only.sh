#!/usr/bin/env bash
# Runs every test of the project: formatting, lints, rustdoc, the unit and integration tests of
# every crate of the workspace (the layering check among them), the benchmarks once each in test
# mode (so they keep compiling and their set-up assertions hold), the examples in doc comments,
# README's main command, the AWS adapters' tests against moto (SES and SSM; installed into
# .tools/moto on first use, started on a free port and stopped on exit), and the fuzz targets
# for 30 s each (scripts/fuzz: skipped, saying so, without a nightly toolchain).
# Prints the time of each stage.
# Usage: scripts/test
set -euo pipefail
cd "$(dirname "$0")/.."

export CARGO_TERM_COLOR="${CARGO_TERM_COLOR:-never}"
export CARGO_INCREMENTAL=0

started=$SECONDS
stage() {
    local name=$1
    shift
    echo "== $name"
    local t=$SECONDS
    "$@"
    echo "   ($name: $((SECONDS - t)) s)"
}

# Every platform's packages, not only this machine's: the layering test reads the dependency
# trees of every target offline (tests/layering.rs).
# --all-targets leaves out the examples in doc comments; they must compile too.

# moto emulates SES (and DynamoDB) on this machine. Its venv is kept under the git-ignored
# .tools/ and reinstalled only when missing or not a 5.x; the server listens on a free loopback
# port and is stopped by its PID when the script exits, passed or failed.
moto_venv=.tools/moto
moto_pid=
stop_moto() {
    if [[ -n $moto_pid ]]; then
        kill "$moto_pid" 2>/dev/null || true
        wait "$moto_pid" 2>/dev/null || true
        moto_pid=
    fi
}
trap stop_moto EXIT
install_moto() {
    local version
    version=$("$moto_venv/bin/python" -c 'import importlib.metadata as m; print(m.version("moto"))' \
        2>/dev/null || true)
    if [[ $version == 5.* && -x $moto_venv/bin/moto_server ]]; then
        echo "   moto $version (cached in $moto_venv)"
        return
    fi
    rm -rf "$moto_venv"
    python3 -m venv "$moto_venv"
    "$moto_venv/bin/pip" install --quiet --disable-pip-version-check 'moto[server]==5.*'
    echo "   moto $("$moto_venv/bin/python" -c 'import importlib.metadata as m; print(m.version("moto"))') installed in $moto_venv"
}
start_moto() {
    local port url
    port=$("$moto_venv/bin/python" -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
    url="http://127.0.0.1:$port"
    "$moto_venv/bin/moto_server" -H 127.0.0.1 -p "$port" > .tools/moto.log 2>&1 &
    moto_pid=$!
    for _ in $(seq 150); do
        if "$moto_venv/bin/python" -c 'import sys, urllib.request; urllib.request.urlopen(sys.argv[1], timeout=1)' \
            "$url/moto-api/data.json" 2>/dev/null; then
            echo "   moto_server (pid $moto_pid) answers at $url"
            moto_endpoint=$url
            return
        fi
        if ! kill -0 "$moto_pid" 2>/dev/null; then
            echo "moto_server exited; its log (.tools/moto.log):" >&2
            cat .tools/moto.log >&2
            return 1
        fi
        sleep 0.2
    done
    echo "moto_server did not answer at $url within 30 s" >&2
    return 1
}
# The moto-backed tests were built by the `cargo test` stage: this asks cargo for those very
# test binaries (a no-op build with the same packages, targets and features, so nothing
# compiles again) and runs them with the endpoint set, so that they cannot be skipped:
# nudge-aws's `ses` (SesMailer), `webhook` (the webhook caller and SsmSecrets) and `dynamo`
# (DynamoDbStore, the store contract and the send guarantee's crash cases); nudge-lambda's
# `support_check`, `shopify`, `scheduler` and `feedback` (the functions' handlers on DynamoDB
# and SES, built from the environment as a cold start builds them: hence AWS_ENDPOINT_URL).
# The fake credentials and region are for this test process only. moto is restarted per
# binary: it slows as its tables grow.
moto_binaries=(nudge-aws:ses nudge-aws:webhook nudge-aws:dynamo
    nudge-lambda:support_check nudge-lambda:shopify nudge-lambda:scheduler nudge-lambda:feedback)
moto_tests() {
    install_moto
    local binaries
    binaries=$(cargo test --locked --workspace --all-targets --no-run --message-format=json \
        | python3 -c '
import json, sys
wanted = sys.argv[1:]
found = {}
for line in sys.stdin:
    m = json.loads(line)
    if m.get("reason") != "compiler-artifact" or m["target"]["kind"] != ["test"] \
            or not m.get("executable"):
        continue
    for w in wanted:
        package, name = w.split(":")
        if m["target"]["name"] == name and ("#" + package + "@") in m["package_id"]:
            found[w] = m["executable"]
for w in wanted:
    print(found.get(w, ""))
' "${moto_binaries[@]}")
    local -a paths
    mapfile -t paths <<< "$binaries"
    local i
    for i in "${!moto_binaries[@]}"; do
        if [[ -z ${paths[$i]:-} ]]; then
            echo "the test binary \`${moto_binaries[$i]}\` was not found" >&2
            return 1
        fi
    done
    for i in "${!moto_binaries[@]}"; do
        start_moto
        echo "   ${moto_binaries[$i]}:"
        env NUDGE_MOTO_ENDPOINT="$moto_endpoint" AWS_ENDPOINT_URL="$moto_endpoint" \
            AWS_ACCESS_KEY_ID=testing AWS_SECRET_ACCESS_KEY=testing AWS_REGION=us-east-1 \
            "${paths[$i]}"
        stop_moto
    done
}

# SAM's checks and cfn-lint on infra/template.yaml (any warning fails), offline: a fake
# region, no credentials. SAM CLI (with cfn-lint) goes into the git-ignored .tools/sam on first
# use and stays there.
sam_venv=.tools/sam
sam_validate() {
    if [[ ! -x $sam_venv/bin/sam ]]; then
        rm -rf "$sam_venv"
        python3 -m venv "$sam_venv"
        "$sam_venv/bin/pip" install --quiet --disable-pip-version-check aws-sam-cli
    fi
    echo "   $("$sam_venv/bin/sam" --version) (in $sam_venv)"
    env -u AWS_ACCESS_KEY_ID -u AWS_SECRET_ACCESS_KEY -u AWS_SESSION_TOKEN -u AWS_PROFILE \
        AWS_DEFAULT_REGION=us-east-1 SAM_CLI_TELEMETRY=0 \
        "$sam_venv/bin/sam" validate --lint --template infra/template.yaml
}

simulate_sample() {
    cargo run --locked --quiet -- simulate --events events/sample.jsonl --format json > /dev/null
}
echo "== all tests passed in $((SECONDS - started)) s"
stage "moto" moto_tests

#!/usr/bin/env bash
# Tests of .github/scripts/compose-plan-comment.sh and post-plan-comment.sh (the pull-request
# workflow's plan comment), with a fake `gh` that answers the comment listing from pages of
# JSON (through jq, as gh's --jq does) and records what is posted. Needs jq on PATH.
# Usage: .github/tests/plan-comment.sh
set -euo pipefail
cd "$(dirname "$0")/../.."
scripts=$PWD/.github/scripts

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
export PLAN_MARKER='<!-- nudge-plan -->'
failures=0
passes=0
check() { # NAME EXPECTED ACTUAL
    if [[ $2 == "$3" ]]; then
        echo "   ok: $1"
        passes=$((passes + 1))
    else
        echo "   FAILED: $1"
        diff <(printf '%s\n' "$2") <(printf '%s\n' "$3") | head -n 20 || true
        failures=$((failures + 1))
    fi
}

# ---- compose-plan-comment.sh
printf '%s\n' "$PLAN_MARKER" '## Plan' '' '| workflow | change |' > "$work/plan.md"
check "a plan read with the table is the comment as it is" \
    "$(cat "$work/plan.md")" "$(PLAN_SCOPE=db "$scripts/compose-plan-comment.sh" "$work/plan.md")"

printf '%s\n' '## Plan' 'no marker' > "$work/bare.md"
check "the marker is added when the plan lacks it" \
    "$(printf '%s\n' "$PLAN_MARKER" '## Plan' 'no marker')" \
    "$(PLAN_SCOPE=db "$scripts/compose-plan-comment.sh" "$work/bare.md")"

out=$(PLAN_SCOPE=fork "$scripts/compose-plan-comment.sh" "$work/plan.md")
check "a fork's plan says it has no runs in flight, and why" \
    "*This pull request comes from a fork, which GitHub gives no AWS credentials: the plan compares the definitions only, without the runs in flight.*" \
    "${out##*$'\n'}"
out=$(PLAN_SCOPE=no-variables "$scripts/compose-plan-comment.sh" "$work/plan.md")
check "a plan without the variables says which are missing" \
    "*The repository variables \`NUDGE_PLAN_ROLE_ARN\` and \`NUDGE_TABLE\` are not set: the plan compares the definitions only, without the runs in flight.*" \
    "${out##*$'\n'}"

# Lines of 99 three-byte characters: the 60,000th byte falls inside one.
line=$(printf '€%.0s' $(seq 99))
{
    echo "$PLAN_MARKER"
    for _ in $(seq 500); do echo "$line"; done
} > "$work/long.md"
PLAN_SCOPE=db "$scripts/compose-plan-comment.sh" "$work/long.md" > "$work/long-comment.md"
check "a long plan is cut to fit a comment" true \
    "$( (( $(wc -c < "$work/long-comment.md") <= 60100 )) && echo true || echo false)"
check "the cut comment is valid UTF-8" true \
    "$(iconv -f UTF-8 -t UTF-8 "$work/long-comment.md" > /dev/null 2>&1 && echo true || echo false)"
check "the cut comment ends with the note" \
    "*The plan is longer than a comment can be: the rest is in the run's summary.*" \
    "$(tail -n 1 "$work/long-comment.md")"
check "a blank line comes before the note" "" "$(tail -n 2 "$work/long-comment.md" | head -n 1)"
# Every line kept before the note is a whole line of the plan.
kept=$(head -n -2 "$work/long-comment.md")
check "the cut comment keeps whole lines of the plan only" \
    "$(head -n "$(wc -l <<< "$kept")" "$work/long.md")" "$kept"

# shellcheck disable=SC2016 # backquotes: Markdown, not a command
check "a failed plan's comment says so, with the run's link" \
    "$(printf '%s\n' "$PLAN_MARKER" '**No plan for this version**: the workflows did not pass `nudge validate`, or the plan failed. See [the run](https://github.example/run/7).')" \
    "$("$scripts/compose-plan-comment.sh" --failed https://github.example/run/7)"

# ---- post-plan-comment.sh, with a fake gh
mkdir -p "$work/bin"
cat > "$work/bin/gh" <<'FAKE'
#!/usr/bin/env bash
set -euo pipefail
if [[ $1 == api && $2 == --paginate ]]; then
    echo "list $3" >> "$GH_CALLS"
    [[ $4 == --jq ]] || { echo "fake gh: --jq expected" >&2; exit 2; }
    jq -r "$5" < "$FAKE_PAGES"
elif [[ $1 == api && $2 == --method && $5 == -F && $6 == body=@* ]]; then
    echo "$3 $4" >> "$GH_CALLS"
    cat "${6#body=@}" > "$GH_CALLS.body"
else
    echo "fake gh: unexpected call: $*" >&2
    exit 2
fi
FAKE
chmod +x "$work/bin/gh"
post() { # PAGES_JSON: the comment pages gh would list
    printf '%s\n' "$1" > "$work/pages.json"
    : > "$work/calls"
    rm -f "$work/calls.body"
    PATH="$work/bin:$PATH" FAKE_PAGES="$work/pages.json" GH_CALLS="$work/calls" \
        GITHUB_REPOSITORY=shop/nudge PR_NUMBER=12 \
        "$scripts/post-plan-comment.sh" "$work/plan.md" > /dev/null
}

post '[{"id": 1, "user": {"login": "marketer"}, "body": "<!-- nudge-plan --> copied"},
       {"id": 2, "user": {"login": "github-actions[bot]"}, "body": "another bot comment"},
       {"id": 3, "user": {"login": "github-actions[bot]"}, "body": "<!-- nudge-plan -->\nold plan"}]'
check "the bot's earlier plan comment is edited, and no other" \
    "$(printf '%s\n' 'list repos/shop/nudge/issues/12/comments' 'PATCH repos/shop/nudge/issues/comments/3')" \
    "$(cat "$work/calls")"
check "the edited comment's body is the file" "$(cat "$work/plan.md")" "$(cat "$work/calls.body")"

post '[{"id": 4, "user": {"login": "github-actions[bot]"}, "body": "hello"}]
      [{"id": 5, "user": {"login": "github-actions[bot]"}, "body": "<!-- nudge-plan -->\nold"},
       {"id": 6, "user": {"login": "github-actions[bot]"}, "body": "<!-- nudge-plan -->\nolder"}]'
check "a comment on a later page is found, the first one only" \
    "PATCH repos/shop/nudge/issues/comments/5" "$(tail -n 1 "$work/calls")"

post '[]'
check "without an earlier comment, one is posted" \
    "$(printf '%s\n' 'list repos/shop/nudge/issues/12/comments' 'POST repos/shop/nudge/issues/12/comments')" \
    "$(cat "$work/calls")"
check "the posted comment's body is the file" "$(cat "$work/plan.md")" "$(cat "$work/calls.body")"

echo "   plan comment: $passes passed, $failures failed"
(( failures == 0 ))

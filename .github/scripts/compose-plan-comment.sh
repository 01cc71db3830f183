#!/usr/bin/env bash
# The pull request's plan comment, on stdout, from `nudge plan --format markdown`'s output.
# Usage: compose-plan-comment.sh PLAN_FILE      (the plan was made)
#        compose-plan-comment.sh --failed URL   (no plan: validation or the plan failed; URL is
#                                                the run's page)
# Environment: PLAN_MARKER (the comment's first line, which the plan itself starts with; added
# when missing); PLAN_SCOPE: `db` (the runs in flight were read), `fork` (a fork's pull request:
# no AWS credentials) or anything else (the repository's variables are not set).
# A comment holds 65,536 characters at most: a longer plan is cut after 60,000 bytes, at a line,
# with a note (the run's summary has it whole).
set -euo pipefail

marker=${PLAN_MARKER:?PLAN_MARKER is not set}
limit=60000

if [[ ${1:-} == --failed ]]; then
    url=${2:?usage: compose-plan-comment.sh --failed URL}
    echo "$marker"
    echo "**No plan for this version**: the workflows did not pass \`nudge validate\`, or the plan failed. See [the run]($url)."
    exit 0
fi
plan=${1:?usage: compose-plan-comment.sh PLAN_FILE | --failed URL}

if [[ $(head -n 1 "$plan") != "$marker" ]]; then
    echo "$marker"
fi
if (( $(wc -c < "$plan") > limit )); then
    # Whole lines only: the last one may be cut (mid-character, even).
    head -c "$limit" "$plan" | sed '$d'
    echo
    echo "*The plan is longer than a comment can be: the rest is in the run's summary.*"
else
    cat "$plan"
fi
case ${PLAN_SCOPE:-} in
    db) ;;
    fork)
        echo
        echo "*This pull request comes from a fork, which GitHub gives no AWS credentials: the plan compares the definitions only, without the runs in flight.*"
        ;;
    *)
        echo
        echo "*The repository variables \`NUDGE_PLAN_ROLE_ARN\` and \`NUDGE_TABLE\` are not set: the plan compares the definitions only, without the runs in flight.*"
        ;;
esac

#!/usr/bin/env bash
# Posts FILE as the pull request's plan comment, or edits the comment posted before: the first
# comment by github-actions[bot] that starts with PLAN_MARKER. One comment per pull request,
# whatever the number of pushes.
# Usage: post-plan-comment.sh FILE
# Environment: GH_TOKEN (pull-requests: write), GITHUB_REPOSITORY (OWNER/REPO), PR_NUMBER,
# PLAN_MARKER.
set -euo pipefail

file=${1:?usage: post-plan-comment.sh FILE}
: "${PLAN_MARKER:?PLAN_MARKER is not set}" "${PR_NUMBER:?PR_NUMBER is not set}"
comments="repos/$GITHUB_REPOSITORY/issues/$PR_NUMBER/comments"

ids=$(gh api --paginate "$comments" --jq \
    '.[] | select(.user.login == "github-actions[bot]" and (.body | startswith(env.PLAN_MARKER))) | .id')
id=${ids%%$'\n'*}
if [[ -n $id ]]; then
    gh api --method PATCH "repos/$GITHUB_REPOSITORY/issues/comments/$id" -F "body=@$file" > /dev/null
    echo "updated comment $id"
else
    gh api --method POST "$comments" -F "body=@$file" > /dev/null
    echo "posted a new comment"
fi

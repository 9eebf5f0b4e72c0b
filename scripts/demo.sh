#!/usr/bin/env bash
# Build Orchestra and the demo service, then run the demo AI platform in the
# foreground (Ctrl-C stops it). Extra arguments go to `orchestra up`, e.g.
#   scripts/demo.sh -d                 # detach once healthy
#   scripts/demo.sh --env prod         # with the prod overlay
#   scripts/demo.sh --profile insurance_ai
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
cargo build --quiet -p orchestra -p demo-service
export PATH="$root/target/debug:$PATH"
exec orchestra -f examples/ai-platform/orchestra.yaml up "$@"

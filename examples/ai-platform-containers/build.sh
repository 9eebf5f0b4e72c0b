#!/usr/bin/env bash
# Build what the container demo needs: Orchestra, and a statically linked
# demo-service copied into the api image's build context (api/). Prints the
# line to put Orchestra on PATH.
#
#   examples/ai-platform-containers/build.sh
#   export DOCKER_HOST=unix://$(scripts/docker.sh)
#   export PATH="$PWD/target/debug:$PATH"
#   orchestra -f examples/ai-platform-containers/orchestra.yaml up
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
cd "$root"
cargo build --quiet -p orchestra -p demo-service
# musl gives a binary that runs in any image and resolves names without
# glibc's NSS; without that target, glibc linked statically does the rest.
if rustup target list --installed 2>/dev/null | grep -qx x86_64-unknown-linux-musl; then
  target=x86_64-unknown-linux-musl
  cargo build --quiet --release -p demo-service --target "$target"
else
  target=x86_64-unknown-linux-gnu
  RUSTFLAGS='-C target-feature=+crt-static' \
    cargo build --quiet --release -p demo-service --target "$target"
fi
install -m 0755 "$root/target/$target/release/demo-service" "$here/api/demo-service"
echo "built $here/api/demo-service ($target, static)" >&2
echo "export PATH=\"$root/target/debug:\$PATH\""

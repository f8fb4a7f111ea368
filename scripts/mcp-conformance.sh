#!/usr/bin/env bash
# Runs the official MCP conformance suite (@modelcontextprotocol/conformance, which needs
# Node >= 22) against `basis mcp --http` on 127.0.0.1, one server scenario at a time.
#
# Node: the `node` on PATH when it is 22 or newer; otherwise Node 22 from the npm registry,
# under target/node22/ (scripts/node22.sh). The suite is installed under target/conformance/.
#
#   scripts/mcp-conformance.sh                 # builds target/debug/basis if needed
#   BASIS_BIN=path/to/basis scripts/mcp-conformance.sh
#   SCENARIOS="ping tools-list" scripts/mcp-conformance.sh
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
suite_version="${CONFORMANCE_VERSION:-0.1.16}"
scenarios="${SCENARIOS:-server-initialize ping tools-list logging-set-level resources-list prompts-list completion-complete server-sse-polling dns-rebinding-protection}"
prefix="$root/target/conformance"
mkdir -p "$prefix"

bin="${BASIS_BIN:-$root/target/debug/basis}"
if [[ -z "${BASIS_BIN:-}" ]]; then
  cargo build --quiet --bin basis
fi

# --- Node 22 ------------------------------------------------------------------------------
source scripts/node22.sh

# --- the suite ----------------------------------------------------------------------------
suite="$prefix/node_modules/@modelcontextprotocol/conformance/dist/index.js"
if [[ ! -f "$suite" ]] || ! grep -q "\"version\": \"$suite_version\"" "$prefix/node_modules/@modelcontextprotocol/conformance/package.json"; then
  npm install --prefix "$prefix" --no-audit --no-fund --loglevel=error --engine-strict=false \
    "@modelcontextprotocol/conformance@$suite_version" >/dev/null
fi

# --- the server ---------------------------------------------------------------------------
work="$(mktemp -d)"
server_pid=""
cleanup() {
  if [[ -n "$server_pid" ]]; then kill "$server_pid" 2>/dev/null || true; wait "$server_pid" 2>/dev/null || true; fi
  rm -rf "$work"
}
trap cleanup EXIT
BASIS_HOME="$work" BASIS_ORCHESTRATOR_URL="http://127.0.0.1:9" \
  "$bin" mcp --http 127.0.0.1:0 2>"$work/server.err" &
server_pid=$!
url=""
for _ in $(seq 1 100); do
  # The whole line: stderr is unbuffered, so a read may catch it half-written.
  url="$(sed -n 's/.*listening on \(http:\/\/[^ ]*\/mcp\)$/\1/p' "$work/server.err" | head -n1)"
  [[ -n "$url" ]] && break
  sleep 0.1
done
if [[ -z "$url" ]]; then
  echo "basis mcp --http did not start:" >&2
  cat "$work/server.err" >&2
  exit 1
fi
echo "basis mcp at $url"

# --- run ----------------------------------------------------------------------------------
passed=0
failed=0
failures=()
cd "$work"
for scenario in $scenarios; do
  if "$node" "$suite" server --url "$url" --scenario "$scenario" >"$work/$scenario.log" 2>&1; then
    passed=$((passed + 1))
    echo "ok   $scenario"
  else
    failed=$((failed + 1))
    failures+=("$scenario")
    echo "FAIL $scenario"
    sed 's/^/     /' "$work/$scenario.log" | tail -n 40
  fi
done
echo "conformance: $passed passed, $failed failed"
if ((failed > 0)); then
  echo "failed scenarios: ${failures[*]}" >&2
  exit 1
fi

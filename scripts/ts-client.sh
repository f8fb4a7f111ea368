#!/usr/bin/env bash
# Runs tests/clients/typescript (the official MCP TypeScript SDK, `@modelcontextprotocol/sdk`,
# with Ajv checking every result against JSON Schema 2020-12 in strict mode) against
# `basis mcp` over stdio and over streamable HTTP, with a fresh `basis orchestrator` on
# 127.0.0.1 (throwaway database) and a throwaway HOME. Node 22 as in scripts/node22.sh; the
# test's packages come from its package-lock.json (`npm ci`).
#
#   scripts/ts-client.sh            # builds target/debug/basis if needed
#   BASIS_BIN=path/to/basis scripts/ts-client.sh
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
# shellcheck source=scripts/lib/orchestrator.sh
source "$root/scripts/lib/orchestrator.sh"
bin="${BASIS_BIN:-$root/target/debug/basis}"
if [[ -z "${BASIS_BIN:-}" ]]; then
  cargo build --quiet --bin basis
fi

source scripts/node22.sh
client="$root/tests/clients/typescript"
# npm ci only when the lock changed since the last install (it rewrites node_modules).
if ! cmp -s "$client/package-lock.json" "$client/node_modules/.package-lock.json.installed" 2>/dev/null; then
  npm ci --prefix "$client" --no-audit --no-fund --loglevel=error --engine-strict=false >/dev/null
  cp "$client/package-lock.json" "$client/node_modules/.package-lock.json.installed"
fi

work="$(mktemp -d)"
orch_pid=""
cleanup() {
  if [[ -n "$orch_pid" ]]; then kill "$orch_pid" 2>/dev/null || true; wait "$orch_pid" 2>/dev/null || true; fi
  rm -rf "$work"
}
trap cleanup EXIT

mkdir -p "$work/orchestrator" "$work/home"
export HOME="$work/home"
start_orchestrator "$bin" "$work" --registration open

# The test's temp dirs (worker and evaluator homes) go under $work too.
status=0
(cd "$client" && TMPDIR="$work" BASIS_BIN="$bin" BASIS_ORCH_URL="$url" \
  BASIS_ORCH_DB="$work/orchestrator/orchestrator.db" BASIS_ORCH_HOME="$work/orchestrator" \
  "$node" --test --test-reporter=spec --test-timeout=120000 basis.test.mjs) | tee "$work/test.out" || status=$?

# The device keys (and any legacy token) stay in the 0600 env files and out of the
# orchestrator's output too.
for env in "$work"/basis-ts-worker-*/worker.env; do
  [[ -f "$env" ]] || continue
  mode="$(stat -c %a "$env")"
  if [[ "$mode" != "600" ]]; then echo "$env has mode $mode" >&2; exit 1; fi
  for secret in "$(sed -n 's/^BASIS_DEVICE_KEY=basis_dk_//p' "$env")" \
                "$(sed -n 's/^BASIS_WORKER_TOKEN=//p' "$env")"; do
    if [[ -n "$secret" ]] && grep -q -- "$secret" "$work/orch.out" "$work/orch.err" "$work/test.out"; then
      echo "a worker secret leaked into an output" >&2
      exit 1
    fi
  done
done

passed="$(sed -n 's/^ℹ pass \([0-9]*\)$/\1/p' "$work/test.out" | tail -n1)"
failed="$(sed -n 's/^ℹ fail \([0-9]*\)$/\1/p' "$work/test.out" | tail -n1)"
cancelled="$(sed -n 's/^ℹ cancelled \([0-9]*\)$/\1/p' "$work/test.out" | tail -n1)"
if [[ -z "$passed" || -z "$failed" || -z "$cancelled" ]]; then
  echo "no summary from node --test" >&2
  exit 1
fi
# A test cancelled (its suite's setup failed, or it timed out) did not pass either.
failed=$((failed + cancelled))
echo "ts client: $passed passed, $failed failed"
if ((status != 0 || failed != 0)); then exit 1; fi

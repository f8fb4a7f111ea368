#!/usr/bin/env bash
# Runs examples/pipeline/onboard.py (the official MCP Python SDK driving `basis mcp` over
# stdio) against a fresh `basis orchestrator` on 127.0.0.1 with a throwaway database, in a
# throwaway BASIS_HOME. Creates a venv under target/ and installs the example's requirements.
#
#   scripts/python-example.sh            # builds target/debug/basis if needed
#   BASIS_BIN=path/to/basis scripts/python-example.sh
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
# shellcheck source=scripts/lib/orchestrator.sh
source "$root/scripts/lib/orchestrator.sh"
bin="${BASIS_BIN:-$root/target/debug/basis}"
if [[ -z "${BASIS_BIN:-}" ]]; then
  cargo build --quiet --bin basis
fi

venv="$root/target/python-example-venv"
python="${PYTHON:-python3}"
if [[ ! -x "$venv/bin/python" ]]; then
  "$python" -m venv "$venv"
fi
"$venv/bin/pip" install --quiet --disable-pip-version-check -r examples/pipeline/requirements.txt

work="$(mktemp -d)"
orch_pid=""
cleanup() {
  if [[ -n "$orch_pid" ]]; then kill "$orch_pid" 2>/dev/null || true; wait "$orch_pid" 2>/dev/null || true; fi
  rm -rf "$work"
}
trap cleanup EXIT

mkdir -p "$work/orchestrator" "$work/home"
start_orchestrator "$bin" "$work" --open

"$venv/bin/python" examples/pipeline/onboard.py \
  --basis "$bin" --home "$work/home" \
  --orchestrator-url "$url" \
  --wallet 0x52908400098527886E0F7030069857D2E4169EE7 \
  --worker-id python-example-1 | tee "$work/example.out"

# The device key stays in the 0600 env file and out of every output.
key="$(sed -n 's/^BASIS_DEVICE_KEY=basis_dk_//p' "$work/home/worker.env")"
mode="$(stat -c %a "$work/home/worker.env")"
if [[ "$mode" != "600" ]]; then echo "worker.env has mode $mode" >&2; exit 1; fi
if [[ -z "$key" ]]; then echo "worker.env holds no BASIS_DEVICE_KEY" >&2; exit 1; fi
if grep -q -- "$key" "$work/orch.out" "$work/orch.err" "$work/example.out"; then echo "the device key leaked into an output" >&2; exit 1; fi
echo "python example: 1 passed, 0 failed"

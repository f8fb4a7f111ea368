#!/usr/bin/env bash
# Checks basis in Claude Code (npm `@anthropic-ai/claude-code`, pinned; installed under
# target/claude-code/ with Node 22 as in scripts/node22.sh), with a throwaway HOME, no API key
# and no network traffic but the install: `claude plugin validate` finds nothing to report on
# the marketplace and the plugin manifest (--strict, and the plugin directory's checks); the
# repository added as a marketplace installs the `basis` plugin, whose server connects; and
# `claude mcp add basis -- $BASIS_BIN mcp` connects too.
#
#   scripts/claude-code.sh            # builds target/debug/basis if needed
#   BASIS_BIN=path/to/basis scripts/claude-code.sh
#   CLAUDE_CODE_VERSION=2.1.332 scripts/claude-code.sh
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
version="${CLAUDE_CODE_VERSION:-2.1.332}"
bin="${BASIS_BIN:-$root/target/debug/basis}"
if [[ -z "${BASIS_BIN:-}" ]]; then
  cargo build --quiet --bin basis
fi

# --- Claude Code --------------------------------------------------------------------------
source scripts/node22.sh
prefix="$root/target/claude-code"
claude="$prefix/node_modules/.bin/claude"
installed="$(sed -n 's/^  "version": "\(.*\)",$/\1/p' "$prefix/node_modules/@anthropic-ai/claude-code/package.json" 2>/dev/null || true)"
if [[ ! -x "$claude" || "$installed" != "$version" ]]; then
  mkdir -p "$prefix"
  # The package's postinstall (Node 22) puts the platform's native binary in place.
  PATH="$(dirname "$node"):$PATH" npm install --prefix "$prefix" --no-audit --no-fund \
    --loglevel=error "@anthropic-ai/claude-code@$version" >/dev/null
fi

# --- a throwaway HOME, no credentials, nothing sent -----------------------------------------
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
mkdir -p "$work/home" "$work/project" "$work/bin" "$work/repo"
ln -s "$bin" "$work/bin/basis"
# The repository as a clone has it (tracked and new files, nothing ignored): installing from a
# local marketplace copies the whole plugin folder, and target/ is not part of the plugin.
git ls-files -z --cached --others --exclude-standard |
  tar --null --files-from=- --ignore-failed-read -cf - 2>/dev/null | tar -xf - -C "$work/repo"
repo="$work/repo"
cc() {
  (cd "$work/project" && env -u ANTHROPIC_API_KEY -u ANTHROPIC_AUTH_TOKEN -u CLAUDE_CODE_OAUTH_TOKEN \
    HOME="$work/home" XDG_CONFIG_HOME="$work/home/.config" PATH="$work/bin:$PATH" \
    DISABLE_AUTOUPDATER=1 DISABLE_TELEMETRY=1 DISABLE_ERROR_REPORTING=1 \
    CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC=1 \
    timeout 120 "$claude" "$@")
}

passed=0
failed=0
check() {
  local name="$1"
  shift
  if "$@" >"$work/check.out" 2>&1; then
    passed=$((passed + 1))
    echo "ok   $name"
  else
    failed=$((failed + 1))
    echo "FAIL $name"
  fi
  sed 's/^/     /' "$work/check.out"
}

# Each check runs in an `if`, where `set -e` does not apply: every step returns on failure.

# `claude plugin validate --json` on $1: it passes, and no error, warning, note, plugin
# directory finding or advice is reported (the text report, printed, says the same).
validate() {
  local rc=0
  cc plugin validate "$1" --strict --profile directory || rc=$?
  cc plugin validate "$1" --strict --profile directory --json >"$work/validate.json" || rc=$?
  python3 - "$work/validate.json" <<'PY'
import json, sys
report = json.load(open(sys.argv[1], encoding="utf-8"))
problems = []
if report.get("success") is not True:
    problems.append("success is not true")
for kind in ("errors", "warnings", "notes"):
    problems += [f"{kind}: {m}" for m in report["manifest"].get(kind, [])]
directory = report.get("directory") or {}
problems += [f"directory: {f['code']}: {f['message']}" for f in directory.get("findings", [])]
problems += [f"directory could not check: {u}" for u in directory.get("undecided", [])]
if directory.get("incomplete") or directory.get("failure"):
    problems.append(f"directory checks incomplete: {directory.get('failure')}")
problems += [f"advice: {a['message']}" for a in report.get("advice", [])]
for p in problems:
    print(p)
sys.exit(1 if problems else 0)
PY
  [[ $? -eq 0 && $rc -eq 0 ]]
}

# `claude mcp list` shows the server named $1 connected.
connected() {
  cc mcp list | tee "$work/mcp-list.out" || return 1
  grep -qE "^$1: .*(✓|✔) Connected" "$work/mcp-list.out"
}

version_is() {
  cc --version || return 1
  [[ "$(cc --version)" == "$version "* ]]
}

plugin_installs() {
  cc plugin marketplace add "$repo" || return 1
  cc plugin install basis@basis || return 1
  cc plugin details basis@basis | tee "$work/details.out" || return 1
  grep -qE 'Skills \(1\) +basis-worker' "$work/details.out" || return 1
  grep -qE 'MCP servers \(1\) +basis' "$work/details.out"
}

check "claude --version is $version" version_is
check "claude plugin validate . (the marketplace)" validate "$repo"
check "claude plugin validate .claude-plugin/plugin.json" validate "$repo/.claude-plugin/plugin.json"
check "the basis marketplace installs the basis plugin" plugin_installs
check "the plugin's server plugin:basis:basis connects" connected "plugin:basis:basis"
check "claude mcp add basis -- \$BASIS_BIN mcp" cc mcp add basis -- "$bin" mcp
check "the added server basis connects" connected basis

echo "claude code: $passed passed, $failed failed"
if ((failed > 0)); then exit 1; fi

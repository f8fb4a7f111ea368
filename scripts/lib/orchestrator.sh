# Sourced by the end-to-end scripts: a throwaway `basis orchestrator` on 127.0.0.1.
#
#   start_orchestrator BIN WORK [ARGS…]
#
# Runs `BIN orchestrator --listen 127.0.0.1:0 --db WORK/orchestrator/orchestrator.db ARGS…` in
# the background with BASIS_HOME=WORK/orchestrator and its output in WORK/orch.out and
# WORK/orch.err; waits (10 s at most) for its "listening on" line. Sets `orch_pid` and `url`
# (the caller's cleanup kills `orch_pid`), or prints the orchestrator's stderr and exits 1.
start_orchestrator() {
  local bin="$1" work="$2"
  shift 2
  mkdir -p "$work/orchestrator"
  BASIS_HOME="$work/orchestrator" "$bin" orchestrator --listen 127.0.0.1:0 \
    --db "$work/orchestrator/orchestrator.db" "$@" >"$work/orch.out" 2>"$work/orch.err" &
  orch_pid=$!
  url=""
  for _ in $(seq 1 100); do
    url="$(sed -n 's/.*listening on \(http:\/\/[^ ]*\).*/\1/p' "$work/orch.out" | head -n1)"
    [[ -n "$url" ]] && break
    sleep 0.1
  done
  if [[ -z "$url" ]]; then
    echo "the orchestrator did not start:" >&2
    cat "$work/orch.err" >&2
    exit 1
  fi
  echo "orchestrator at $url"
}

# Sourced by the scripts that need Node >= 22 (the MCP conformance suite, the TypeScript SDK
# client test, Claude Code). Sets $node to the `node` on PATH when it is 22 or newer; otherwise
# to Node 22 from the npm registry (the `node-linux-<arch>` package ships the binary), installed
# once under target/node22/ and shared by those scripts.
#
#   source scripts/node22.sh    # from the repository root; needs npm on PATH

node_major() { "$1" --version 2>/dev/null | sed -n 's/^v\([0-9]*\).*/\1/p'; }
node="$(command -v node || true)"
if [[ -z "$node" || "$(node_major "$node")" -lt 22 ]]; then
  case "$(uname -m)" in
    x86_64) node_arch=x64 ;;
    aarch64 | arm64) node_arch=arm64 ;;
    *) echo "no Node 22 package for $(uname -m)" >&2; exit 1 ;;
  esac
  node_prefix="$PWD/target/node22"
  node="$node_prefix/node_modules/node-linux-$node_arch/bin/node"
  if [[ ! -x "$node" || "$(node_major "$node")" -lt 22 ]]; then
    mkdir -p "$node_prefix"
    npm install --prefix "$node_prefix" --no-audit --no-fund --loglevel=error "node-linux-$node_arch@22" >/dev/null
  fi
fi
echo "node $("$node" --version)"

# Sourced by every npm script: puts the project's Node.js first on PATH, so the API, the workers,
# the tests and `npm install` itself run on the Node the project declares (package.json "engines"),
# whatever Node started npm. The binary is the npm registry's own `node-linux-<arch>` package,
# fetched once per machine into the cache (no download site other than the registry is needed).
APEX_NODE_VERSION=22.23.3
apex_node_dir="${XDG_CACHE_HOME:-$HOME/.cache}/apex-portraits/node-v${APEX_NODE_VERSION}"
if [ ! -x "$apex_node_dir/bin/node" ]; then
  case "$(uname -m)" in x86_64) apex_node_arch=x64 ;; aarch64) apex_node_arch=arm64 ;; *) apex_node_arch="$(uname -m)" ;; esac
  echo "[setup] fetching Node.js ${APEX_NODE_VERSION} (node-linux-${apex_node_arch} from the npm registry, once per machine)" >&2
  apex_node_tmp="$(mktemp -d)"
  (cd "$apex_node_tmp" && npm pack --silent "node-linux-${apex_node_arch}@${APEX_NODE_VERSION}" >/dev/null && tar xzf ./*.tgz) || { echo "[setup] could not fetch Node.js" >&2; exit 1; }
  mkdir -p "$apex_node_dir/bin"
  mv "$apex_node_tmp/package/bin/node" "$apex_node_dir/bin/node.tmp" && mv "$apex_node_dir/bin/node.tmp" "$apex_node_dir/bin/node"
  rm -rf "$apex_node_tmp"
fi
export PATH="$apex_node_dir/bin:$PATH"

#!/usr/bin/env bash
# The packed install on a clean machine, simulated: `npm pack` (prebuilds + shipped model),
# install the tarball into an empty project with a PATH that holds no compiler, cmake or
# nvcc, then require the package, run `inspect`, and generate with the shipped model.
# Prints the tarball size (kept under 40 MB) and how long `npm install` took.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT

cd "$root"
ls prebuilds/*/ >/dev/null 2>&1 || { echo "pack-test: run 'npm run prebuild' first" >&2; exit 1; }
tarball="$(npm pack --silent --pack-destination "$work" | tail -1)"
size=$(stat -c %s "$work/$tarball")
echo "pack-test: $tarball is $((size / 1024 / 1024)) MB ($size bytes)"
tar -tzf "$work/$tarball" | grep -E 'prebuilds/|models/' | sed 's/^/  /'
if [ "$size" -ge $((40 * 1024 * 1024)) ]; then echo "pack-test: tarball over 40 MB" >&2; exit 1; fi

# A PATH with node and the shell tools npm needs, and nothing that compiles.
bin="$work/bin"; mkdir -p "$bin"
for tool in node npm npx sh bash env cat ls mkdir rm cp mv ln chmod sed grep tar gzip dirname basename uname readlink mktemp sort head tail tr wc true false cut find xargs id; do
  p="$(command -v "$tool" || true)"; [ -n "$p" ] && ln -s "$(readlink -f "$p")" "$bin/$tool"
done
# npm's own scripts resolve `node` through the symlinked binary's directory; keep them working.
ln -s "$(dirname "$(readlink -f "$(command -v npm)")")/../lib" "$work/lib" 2>/dev/null || true
for forbidden in cc gcc g++ c++ clang make cmake nvcc; do
  if PATH="$bin" command -v "$forbidden" >/dev/null 2>&1; then echo "pack-test: $forbidden is still on PATH" >&2; exit 1; fi
done

app="$work/app"; mkdir -p "$app"; cd "$app"
PATH="$bin" npm init -y >/dev/null
start=$(date +%s.%N)
PATH="$bin" npm install --no-audit --no-fund "$work/$tarball"
end=$(date +%s.%N)
echo "pack-test: npm install of the tarball took $(echo "$end - $start" | bc 2>/dev/null || awk "BEGIN{print $end-$start}") s"

PATH="$bin" node -e "const s = require('streaming-dllm'); if (typeof s.loadModel !== 'function') process.exit(1); console.log('pack-test: require ok')"
PATH="$bin" npx streaming-dllm inspect
PATH="$bin" npx streaming-dllm inspect --json | PATH="$bin" node -e "
let t='';process.stdin.on('data',d=>t+=d).on('end',()=>{const r=JSON.parse(t);
if(r.addon.kind!=='prebuild'){console.error('pack-test: expected the prebuild, got',r.addon);process.exit(1)}
console.log('pack-test: prebuild loaded from', r.addon.path)})"
PATH="$bin" npx streaming-dllm generate --gen-length 128 "${SDLLM_PACK_PROMPT:-Ann has 12 apples. She buys 7 more. How many apples now?}"
echo "pack-test: ok"

#!/usr/bin/env bash
# The per-call cost breakdown of libbuddymalloc.so (docs/benchmarks.md): 10M malloc(16)/free pairs through glibc,
# mimalloc and ours, our managed path without the loader (bm_malloc/bm_free), and one empty C-to-managed call
# (bm_probe); 5 interleaved rounds, the median of each. Usage: bench/malloc-cost/run.sh [PAIRS]
set -euo pipefail
cd "$(dirname "$0")/../.."
lib=$PWD/artifacts/malloc/libbuddymalloc.so
mi=/usr/lib/x86_64-linux-gnu/libmimalloc.so.2
[ -f "$lib" ] || { echo "build it first: dotnet publish src/BuddySystem.Malloc -c Release -o artifacts/malloc" >&2; exit 2; }
bin=$(mktemp -d)/cost
gcc -O2 -o "$bin" bench/malloc-cost/cost.c -ldl
pairs=${1:-10000000}
declare -A all
for round in 1 2 3 4 5; do
  all[glibc]+="$("$bin" malloc "$pairs" | awk '{print $2}') "
  [ -f "$mi" ] && all[mimalloc]+="$(LD_PRELOAD=$mi "$bin" malloc "$pairs" | awk '{print $2}') "
  all[buddymalloc]+="$(LD_PRELOAD=$lib "$bin" malloc "$pairs" | awk '{print $2}') "
  all[managed-path]+="$(LD_PRELOAD=$lib "$bin" entry "$pairs" | awk '{print $2}') "
  all[transition]+="$(LD_PRELOAD=$lib "$bin" export "$pairs" | awk '{print $2}') "
done
echo "load: $(cut -d' ' -f1-3 /proc/loadavg); $pairs pairs; median of 5 rounds (ns per malloc+free pair; transition: ns per call)"
for name in glibc mimalloc buddymalloc managed-path transition; do
  [ -n "${all[$name]:-}" ] || continue
  echo "$name $(tr ' ' '\n' <<<"${all[$name]}" | grep . | sort -n | sed -n 3p)"
done

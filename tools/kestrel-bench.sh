#!/usr/bin/env bash
# Kestrel on each memory pool under wrk (127.0.0.1 only): builds bench/BuddySystem.KestrelBench once, then runs
# tools/kestrel-bench.py (the matrix, the overload case, the table, the JSON and the chart). Options go to the script:
#   tools/kestrel-bench.sh --out docs            # what docs/benchmarks.md shows
#   tools/kestrel-bench.sh --duration 3 --idle 5 # a quick look
set -euo pipefail
cd "$(dirname "$0")/.."
command -v wrk >/dev/null || { echo "kestrel-bench: wrk is missing (apt-get install -y wrk)" >&2; exit 2; }
dotnet build -c Release bench/BuddySystem.KestrelBench -v q -nologo >/dev/null
exec python3 tools/kestrel-bench.py "$@"

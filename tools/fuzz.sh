#!/usr/bin/env bash
# Fuzzes the heap engines with AFL++ through SharpFuzz for a given number of seconds (default 600).
#   tools/fuzz.sh [seconds]
# Installs AFL++ from Debian and the sharpfuzz instrumenter (NuGet tool SharpFuzz.CommandLine) when missing, publishes
# fuzz/BuddySystem.Fuzz to artifacts/fuzz/bin, instruments BuddySystem.dll there (only that copy), and runs afl-fuzz on
# fuzz/corpus. Findings land in artifacts/fuzz/findings; a crash file replays with the uninstrumented build (the
# instrumented copy only runs under afl-fuzz):
#   dotnet run --project fuzz/BuddySystem.Fuzz -c Release -- artifacts/fuzz/findings/default/crashes/<file>
# and, once minimised, belongs in fuzz/corpus so that the tests replay it for ever.
set -euo pipefail
cd "$(dirname "$0")/.."
seconds="${1:-600}"
out=artifacts/fuzz
tool_dir="$out/tool"

if ! command -v afl-fuzz >/dev/null 2>&1; then
  echo "fuzz: installing afl++ from Debian"
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq afl++
fi

if [ ! -x "$tool_dir/sharpfuzz" ]; then
  echo "fuzz: installing the sharpfuzz instrumenter"
  dotnet tool install SharpFuzz.CommandLine --version 2.3.0 --tool-path "$tool_dir" >/dev/null
fi

echo "fuzz: publishing the harness"
rm -rf "$out/bin"
dotnet publish fuzz/BuddySystem.Fuzz -c Release -o "$out/bin" -v quiet -nologo >/dev/null

echo "fuzz: instrumenting BuddySystem.dll"
"$tool_dir/sharpfuzz" "$out/bin/BuddySystem.dll"

# AFL++ checks meant for native targets: the target is `dotnet`, instrumented in managed code by SharpFuzz; crashes are
# exceptions reported by the harness, not core dumps; containers have no cpufreq governor to tune.
export AFL_SKIP_BIN_CHECK=1 AFL_SKIP_CPUFREQ=1 AFL_I_DONT_CARE_ABOUT_MISSING_CRASHES=1 AFL_NO_UI=1
export DOTNET_CLI_TELEMETRY_OPTOUT=1 DOTNET_TieredPGO=0
mkdir -p "$out/findings"
echo "fuzz: running afl-fuzz for $seconds s"
afl-fuzz -i fuzz/corpus -o "$out/findings" -t 10000 -m none -V "$seconds" -- dotnet "$out/bin/BuddySystem.Fuzz.dll" || true

stats="$out/findings/default/fuzzer_stats"
if [ ! -f "$stats" ]; then
  echo "fuzz: afl-fuzz wrote no stats: it did not start (see its output above)"
  exit 1
fi
grep -E '^(run_time|execs_done|execs_per_sec|corpus_count|saved_crashes|saved_hangs|bitmap_cvg|stability)' "$stats"
crashes=$(sed -nE 's/^saved_crashes *: *([0-9]+).*/\1/p' "$stats")
if [ "${crashes:-0}" != "0" ]; then
  echo "fuzz: $crashes crashing inputs in $out/findings/default/crashes"
  exit 2
fi
echo "fuzz: no crashes"

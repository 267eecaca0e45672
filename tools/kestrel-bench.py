#!/usr/bin/env python3
"""The Kestrel benchmark matrix of issue 15 (run through tools/kestrel-bench.sh, which builds the server first).

For each pool: a fresh server per point (`dotnet run --no-build ... -- --pool P --heap H --urls http://127.0.0.1:PORT`),
wrk against 127.0.0.1 for a bounded time (POST /echo with 1 KiB and 256 KiB bodies, 64 and 512 connections); peak RSS
is the server's VmHWM after the point, idle RSS its VmRSS after --idle seconds without load (measured after the largest
point). The pools take turns --rounds times at each case (a fresh server each time), and each figure is the median of
the rounds with its spread (min-max), so one noisy run on a shared machine does not decide a ratio. Then the overload case: an 8 MiB heap, 512 connections echoing 256 KiB, while a checker fetches GET /bytes/262144
and compares every body; afterwards the heap must validate and serve again. Writes kestrel-bench.{json,md,png} to --out.
"""
import argparse, json, os, signal, statistics, subprocess, sys, threading, time, urllib.request

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PROJECT = "bench/BuddySystem.KestrelBench"
POOLS = ["kestrel", "buddy-locked", "buddy-concurrent"]  # the server's BenchPool.All; --pools adds e.g. buddy-concurrent-slab
CHECK_N = 256 << 10


def expected(n):
    return bytes((n + i) % 251 for i in range(n))


def status_kib(pid, field):
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith(field):
                    return int(line.split()[1])
    except OSError:
        pass
    return -1


class Server:
    def __init__(self, pool, heap, port):
        self.port = port
        self.url = f"http://127.0.0.1:{port}"
        self.proc = subprocess.Popen(
            ["dotnet", "run", "-c", "Release", "--no-build", "--project", PROJECT, "--",
             "--pool", pool, "--heap", heap, "--urls", self.url],
            cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        line = self.proc.stdout.readline().strip()
        if line != "listening":
            raise RuntimeError(f"server for {pool} did not start: {line!r} {self.proc.stderr.read()}")
        self.pid = self.stats()["pid"]

    def stats(self, validate=False):
        with urllib.request.urlopen(self.url + "/stats" + ("?validate=1" if validate else ""), timeout=10) as r:
            return json.load(r)

    def alive(self):
        return self.proc.poll() is None and os.path.exists(f"/proc/{self.pid}")

    def stop(self):
        """SIGTERM to the server itself (dotnet run is its parent); returns (exit code, seconds to exit)."""
        start = time.monotonic()
        try:
            os.kill(self.pid, signal.SIGTERM)
        except ProcessLookupError:
            pass
        try:
            code = self.proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            code = "hung"
        return code, round(time.monotonic() - start, 2)


def wrk(url, connections, seconds, body):
    args = ["wrk", "-t2", f"-c{connections}", f"-d{seconds}s", "--timeout", "5s", "--latency",
            "-s", os.path.join(ROOT, "tools", "kestrel-bench.lua"), url + "/echo", "--", "post", str(body)]
    out = subprocess.run(args, capture_output=True, text=True, timeout=seconds + 60).stdout
    line = next((l for l in out.splitlines() if l.startswith("WRKJSON ")), None)
    if line is None:
        raise RuntimeError("wrk printed no result:\n" + out)
    r = json.loads(line[len("WRKJSON "):])
    errors = r["connect"] + r["read"] + r["write"] + r["timeout"] + r["status"]
    return {"rps": round(r["requests"] / (r["duration_us"] / 1e6), 1), "p50Ms": r["p50_us"] / 1000,
            "p99Ms": r["p99_us"] / 1000, "maxMs": r["max_us"] / 1000, "requests": r["requests"], "errors": errors,
            "errorKinds": {k: r[k] for k in ("connect", "read", "write", "timeout", "status")}}


def sample_peak(pid, stop, box):
    while not stop.is_set():
        box[0] = max(box[0], status_kib(pid, "VmRSS:"))
        time.sleep(0.1)


def checker(url, stop, counts):
    """GET /bytes/262144 on fresh connections during the overload: each body is complete and correct, or the request failed."""
    want = expected(CHECK_N)
    while not stop.is_set():
        try:
            with urllib.request.urlopen(url + f"/bytes/{CHECK_N}", timeout=10) as r:
                body = r.read()
            counts["correct" if body == want else "corrupted"] += 1
        except Exception:  # an aborted connection or a timeout under overload: counted, not a wrong body
            counts["failed"] += 1


def point(pool, heap, port, body, connections, seconds, idle):
    server = Server(pool, heap, port)
    try:
        result = wrk(server.url, connections, seconds, body)
        stats = server.stats()
        result.update(pool=pool, case=f"{body // 1024}KiB {connections}c", body=body, connections=connections,
                      peakRssMiB=round(status_kib(server.pid, "VmHWM:") / 1024, 1), failedRents=stats.get("failedRents", 0))
        if idle:
            time.sleep(idle)
            result["idleRssMiB"] = round(status_kib(server.pid, "VmRSS:") / 1024, 1)
        result["exit"], _ = server.stop()
        return result
    except BaseException:
        server.stop()
        raise


def overload(pool, port, seconds):
    server = Server(pool, "8MiB", port)
    stop, peak, counts = threading.Event(), [0], {"correct": 0, "corrupted": 0, "failed": 0}
    threads = [threading.Thread(target=sample_peak, args=(server.pid, stop, peak)),
               threading.Thread(target=checker, args=(server.url, stop, counts))]
    for t in threads:
        t.start()
    try:
        load = wrk(server.url, 512, seconds, 256 << 10)
    finally:
        stop.set()
        for t in threads:
            t.join()
    alive = server.alive()
    time.sleep(1)
    after = server.stats(validate=True) if alive else {}
    want, again = expected(CHECK_N), 0
    for _ in range(20):
        with urllib.request.urlopen(server.url + f"/bytes/{CHECK_N}", timeout=10) as r:
            again += r.read() == want
    code, exit_seconds = server.stop()
    return {"pool": pool, "heap": "8MiB", "rps": load["rps"], "p99Ms": load["p99Ms"], "requests": load["requests"],
            "errors": load["errors"], "errorKinds": load["errorKinds"], "failedRents": after.get("failedRents"),
            "failedAllocations": after.get("failedAllocations"), "checked": counts,
            "peakRssMiB": round(peak[0] / 1024, 1), "aliveAfter": alive, "validate": after.get("validate", "n/a"),
            "allocatedBytesAfter": after.get("allocatedBytes"), "servesAgain": f"{again}/20", "exit": code,
            "exitSeconds": exit_seconds}


def machine():
    model = next((l.split(":", 1)[1].strip() for l in open("/proc/cpuinfo") if l.startswith("model name")), "?")
    mem = status_line("/proc/meminfo", "MemTotal:")
    dotnet = subprocess.run(["dotnet", "--version"], capture_output=True, text=True).stdout.strip()
    wrkv = subprocess.run(["wrk", "-v"], capture_output=True, text=True).stdout.splitlines()[0].strip()
    return f"{model}, {os.cpu_count()} cores, {mem}; .NET SDK {dotnet}; {wrkv}"


def status_line(path, field):
    return next((" ".join(l.split()[1:]) for l in open(path) if l.startswith(field)), "?")


def load():
    return " ".join(open("/proc/loadavg").read().split()[:3])


FIGURES = ("rps", "p50Ms", "p99Ms", "peakRssMiB", "idleRssMiB")


def summarize(runs):
    """One point per (pool, case) from its rounds: the median of each figure, its spread, errors and failed rents summed."""
    first = runs[0]
    p = {k: first[k] for k in ("pool", "case", "body", "connections")}
    for key in FIGURES:
        values = [r[key] for r in runs if key in r]
        if values:
            p[key] = statistics.median(values)
            p[key + "Range"] = [min(values), max(values)]
    p["errors"] = sum(r["errors"] for r in runs)
    p["failedRents"] = sum(r["failedRents"] for r in runs)
    p["load"] = " / ".join(r["load"].split()[0] for r in runs)
    p["runs"] = runs
    return p


def spread(p, key, fmt):
    lo, hi = p[key + "Range"]
    return f"{fmt.format(p[key])} ({fmt.format(lo)}–{fmt.format(hi)})" if len(p["runs"]) > 1 else fmt.format(p[key])


def ratio(p, k, key):
    """Median of the per-round ratios against kestrel (round i against kestrel's round i), with their spread."""
    if not k or not all(key in r for r in p["runs"] + k["runs"]):
        return "-"
    ratios = [a[key] / b[key] for a, b in zip(p["runs"], k["runs"]) if b[key]]
    if not ratios:
        return "-"
    med = statistics.median(ratios)
    return f"{med:.2f} ({min(ratios):.2f}–{max(ratios):.2f})" if len(ratios) > 1 else f"{med:.2f}"


def markdown(res):
    lines = [f"Machine: {res['machine']}. Load average before / after: {res['loadBefore']} / {res['loadAfter']}.",
             f"Each case: the pools take turns {res['rounds']} times (a fresh server each time, order rotated), `wrk -t2 -cC -d{res['duration']}s` "
             f"POSTing to /echo; idle RSS after {res['idle']} s without load, measured after the 256 KiB / 512-connection point; "
             "heap " + res["heap"] + ". Cells: median (min–max) over the rounds; × kestrel is the median of the per-round ratios.", "",
             "| case | pool | requests/s | × kestrel | p99 ms | × kestrel | errors | failed rents | peak RSS MiB | × kestrel | idle RSS MiB | × kestrel | load (1 min) per round |",
             "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|"]
    base = {p["case"]: p for p in res["points"] if p["pool"] == "kestrel"}
    for p in res["points"]:
        k = base.get(p["case"])
        idle = spread(p, "idleRssMiB", "{:.0f}") if "idleRssMiB" in p else ""
        lines.append(f"| {p['case']} | {p['pool']} | {spread(p, 'rps', '{:.0f}')} | {ratio(p, k, 'rps')} | {spread(p, 'p99Ms', '{:.2f}')} | "
                     f"{ratio(p, k, 'p99Ms')} | {p['errors']} | {p['failedRents']} | {spread(p, 'peakRssMiB', '{:.0f}')} | "
                     f"{ratio(p, k, 'peakRssMiB')} | {idle} | {ratio(p, k, 'idleRssMiB') if idle else ''} | {p['load']} |")
    lines += ["", f"Overload: heap 8 MiB, 512 connections POSTing 256 KiB for {res['duration']} s, a checker fetching "
              "GET /bytes/262144 meanwhile (kestrel has no cap: a reference).", "",
              "| pool | requests/s | wrk errors | failed rents | checked: correct / corrupted / failed | peak RSS MiB | alive | validate | serves again | exit |",
              "|---|---:|---:|---:|---|---:|---|---|---|---|"]
    for o in res["overload"]:
        c = o["checked"]
        lines.append(f"| {o['pool']} | {o['rps']:.0f} | {o['errors']} | {o['failedRents'] if o['failedRents'] is not None else '-'} | "
                     f"{c['correct']} / {c['corrupted']} / {c['failed']} | {o['peakRssMiB']} | {o['aliveAfter']} | "
                     f"{o['validate']} | {o['servesAgain']} | {o['exit']} in {o['exitSeconds']} s |")
    return "\n".join(lines) + "\n"


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--pools", default=",".join(POOLS))
    ap.add_argument("--duration", type=int, default=10, help="seconds of load per point (bounded)")
    ap.add_argument("--idle", type=int, default=30, help="seconds without load before the idle RSS")
    ap.add_argument("--heap", default="256MiB", help="buddy heap for the matrix")
    ap.add_argument("--port", type=int, default=5180)
    ap.add_argument("--out", default="/tmp/kestrel-bench")
    ap.add_argument("--rounds", type=int, default=3, help="turns of every pool at each case (figures are their median)")
    ap.add_argument("--no-overload", action="store_true")
    a = ap.parse_args()
    if not 1 <= a.duration <= 120:
        print("kestrel-bench: --duration must be 1..120 seconds", file=sys.stderr)
        return 2
    if not 1 <= a.rounds <= 20:
        print("kestrel-bench: --rounds must be 1..20", file=sys.stderr)
        return 2
    os.makedirs(a.out, exist_ok=True)
    res = {"machine": machine(), "loadBefore": load(), "duration": a.duration, "idle": a.idle, "heap": a.heap,
           "rounds": a.rounds, "points": [], "overload": []}
    pools = a.pools.split(",")
    cases = [(body, connections) for body in (1 << 10, 256 << 10) for connections in (64, 512)]
    points = []
    # Pools take turns at each case, in an order rotated per case, so a neighbour's build spreads over all pools
    # instead of landing on the one that happens to run last.
    turn = 0
    for c, (body, connections) in enumerate(cases):
        for i in (i for r in range(a.rounds) for i in range(len(pools))):
            pool = pools[(i + turn) % len(pools)]
            turn += 1 if i == len(pools) - 1 else 0
            idle = a.idle if body == 256 << 10 and connections == 512 else 0
            p = point(pool, a.heap, a.port, body, connections, a.duration, idle)
            p["load"] = load()
            print(f"{pool:18} {p['case']:12} {p['rps']:9.0f} req/s  p50 {p['p50Ms']:7.2f} ms  p99 {p['p99Ms']:7.2f} ms  "
                  f"errors {p['errors']}  peak {p['peakRssMiB']} MiB  idle {p.get('idleRssMiB', '-')}  load {p['load']}", flush=True)
            points.append(p)
    groups = {}
    for p in points:
        groups.setdefault((p["pool"], p["case"]), []).append(p)
    res["points"] = sorted((summarize(runs) for runs in groups.values()),
                           key=lambda p: (pools.index(p["pool"]), cases.index((p["body"], p["connections"]))))
    if not a.no_overload:
        for pool in a.pools.split(","):
            o = overload(pool, a.port, a.duration)
            print(f"overload {pool:18} {json.dumps(o)}  load {load()}", flush=True)
            res["overload"].append(o)
    res["loadAfter"] = load()
    res["load"] = f"{res['loadBefore']} before, {res['loadAfter']} after"
    with open(os.path.join(a.out, "kestrel-bench.json"), "w") as f:
        json.dump(res, f, indent=1)
    with open(os.path.join(a.out, "kestrel-bench.md"), "w") as f:
        f.write(markdown(res))
    subprocess.run(["dotnet", "run", "-c", "Release", "--no-build", "--project", PROJECT, "--", "plot",
                    os.path.join(a.out, "kestrel-bench.json"), os.path.join(a.out, "kestrel-bench.png")], cwd=ROOT, check=True)
    print(markdown(res))
    bad = [o for o in res["overload"] if o["pool"] != "kestrel" and
           (not o["aliveAfter"] or o["checked"]["corrupted"] or o["validate"] != "ok" or o["servesAgain"] != "20/20")]
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())

#!/usr/bin/env bash
# Orchestra startup/footprint benchmark.
#
#   bash bench/startup/run.sh
#
# Measures, with the release binaries:
#   1. startup overhead: `orchestra up -d` on a generated 20-service platform
#      (chains + fan-out, healthy-gated) minus the critical path of the
#      services' own --startup-delay, with a per-hop breakdown from the daemon's
#      log timestamps;
#   2. daemon footprint: VmRSS and idle CPU of the daemon running 50 services;
#   3. CLI start: hyperfine of `orchestra --version` next to /bin/true and
#      `demo-service --help`.
# Knobs (environment): RUNS (5), IDLE_SECS (5), SPAWN_SAMPLES (20),
# SKIP_BUILD=1 (use target/release as it is), BIN_DIR (other binaries),
# KEEP=1 (keep the temp dir).
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
RUNS="${RUNS:-5}"
IDLE_SECS="${IDLE_SECS:-5}"
SPAWN_SAMPLES="${SPAWN_SAMPLES:-20}"
BIN="${BIN_DIR:-$ROOT/target/release}"

say() { printf '\n== %s\n' "$*"; }
die() { printf 'error: %s\n' "$*" >&2; exit 1; }

for tool in python3 curl cargo; do
    command -v "$tool" >/dev/null || die "$tool is required"
done

# --- hyperfine -------------------------------------------------------------
if ! command -v hyperfine >/dev/null; then
    SUDO=""
    if [ "$(id -u)" != 0 ]; then
        command -v sudo >/dev/null || die "hyperfine is missing and there is no sudo to install it"
        SUDO="sudo"
    fi
    say "installing hyperfine"
    $SUDO apt-get install -y hyperfine >/dev/null 2>&1 ||
        { $SUDO apt-get update >/dev/null && $SUDO apt-get install -y hyperfine >/dev/null; } ||
        die "cannot install hyperfine with apt-get"
fi

# --- build -----------------------------------------------------------------
if [ "${SKIP_BUILD:-0}" != 1 ]; then
    say "building release binaries (cargo build --release -p orchestra -p demo-service)"
    if ! (cd "$ROOT" && cargo build --release -p orchestra -p demo-service) >"/tmp/orch-bench-build.$$.log" 2>&1; then
        cat "/tmp/orch-bench-build.$$.log" >&2
        rm -f "/tmp/orch-bench-build.$$.log"
        die "cargo build failed"
    fi
    tail -n 1 "/tmp/orch-bench-build.$$.log"
    rm -f "/tmp/orch-bench-build.$$.log"
fi
[ -x "$BIN/orchestra" ] && [ -x "$BIN/demo-service" ] || die "no release binaries in $BIN"
export PATH="$BIN:$PATH"
ORCH="$BIN/orchestra"
DEMO="$BIN/demo-service"

# --- temp dir and cleanup ----------------------------------------------------
# Short path: the control socket path must stay under 108 bytes.
WORK="$(mktemp -d /tmp/orch-bench.XXXXXX)"
PROJECTS=()

sock_get() { # DIR PATH -> JSON from the daemon's control API
    curl -sf --max-time 5 --unix-socket "$1/.orchestra/orchestra.sock" "http://x$2"
}
daemon_pid() { # DIR -> daemon PID or nothing
    sock_get "$1" /v1/daemon 2>/dev/null |
        python3 -c 'import json,sys; print(json.load(sys.stdin)["pid"])' 2>/dev/null || true
}

cleanup() {
    local rc=$? dir pid
    set +e
    for dir in "${PROJECTS[@]}"; do
        [ -S "$dir/.orchestra/orchestra.sock" ] || continue
        pid="$(daemon_pid "$dir")"
        if ! "$ORCH" -f "$dir/orchestra.yaml" down >/dev/null 2>&1; then
            # Only the daemon whose PID its own API gave us; its shims take
            # the services down when its end of their stdin closes.
            if [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null; then
                echo "orchestra down failed for $dir; sending SIGTERM to daemon $pid" >&2
                kill -TERM "$pid"
            fi
        fi
    done
    if [ "${KEEP:-0}" = 1 ]; then echo "kept $WORK" >&2; else rm -rf "$WORK"; fi
    exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# --- helpers -----------------------------------------------------------------
now_ns() { date +%s%N; }

# Generate platforms. Prints (to stdout) a JSON summary: critical path etc.
gen() { # KIND DIR
    python3 - "$1" "$2" <<'PY'
import json, os, sys

kind, out = sys.argv[1], sys.argv[2]
os.makedirs(out, exist_ok=True)

if kind == "chain20":
    # name: (startup-delay ms, [healthy deps]) -- chains and fan-out/fan-in.
    # Delays are deliberately not multiples of the 25 ms fast-probe period
    # (see README: with round delays the probe misses by a hair every hop).
    svcs = {
        "config":    (53,  []),
        "db":        (391, []),
        "cache":     (147, []),
        "queue":     (206, []),
        "metrics":   (58,  []),
        "auth":      (197, ["db", "config"]),
        "search":    (288, ["db"]),
        "ratelimit": (109, ["cache"]),
        "users":     (243, ["auth", "cache"]),
        "billing":   (156, ["auth", "queue"]),
        "catalog":   (212, ["search", "cache"]),
        "orders":    (307, ["users", "billing", "catalog"]),
        "notify":    (93,  ["queue", "users"]),
        "api":       (204, ["orders", "ratelimit"]),
        "worker-a":  (117, ["orders"]),
        "worker-b":  (61,  ["orders"]),
        "worker-c":  (138, ["notify"]),
        "gateway":   (96,  ["api"]),
        "admin":     (54,  ["api", "users"]),
        "web":       (162, ["gateway", "metrics"]),
    }
elif kind == "round20":
    # The same shape with every delay rounded to a multiple of 25 ms.
    base = {
        "config": (50, []), "db": (400, []), "cache": (150, []), "queue": (200, []),
        "metrics": (50, []), "auth": (200, ["db", "config"]), "search": (300, ["db"]),
        "ratelimit": (100, ["cache"]), "users": (250, ["auth", "cache"]),
        "billing": (150, ["auth", "queue"]), "catalog": (200, ["search", "cache"]),
        "orders": (300, ["users", "billing", "catalog"]), "notify": (100, ["queue", "users"]),
        "api": (200, ["orders", "ratelimit"]), "worker-a": (125, ["orders"]),
        "worker-b": (50, ["orders"]), "worker-c": (150, ["notify"]), "gateway": (100, ["api"]),
        "admin": (50, ["api", "users"]), "web": (150, ["gateway", "metrics"]),
    }
    svcs = base
elif kind == "one":
    svcs = {"solo": (0, [])}
elif kind == "flat50":
    # 50 services, small delays; the last 10 depend on one of the first 5.
    svcs = {}
    for i in range(50):
        deps = [f"svc{(i - 40) % 5:02d}"] if i >= 40 else []
        svcs[f"svc{i:02d}"] = (20 + (i * 37) % 81, deps)
else:
    sys.exit(f"unknown platform {kind}")

# Critical path: longest chain of delays (a service becomes healthy at
# max(deps healthy) + own delay).
finish, via = {}, {}
def f(n):
    if n not in finish:
        d, deps = svcs[n]
        best = max(deps, key=f, default=None)
        finish[n] = d + (f(best) if best else 0)
        via[n] = best
    return finish[n]
last = max(svcs, key=f)
chain = []
n = last
while n:
    chain.append(n)
    n = via[n]
chain.reverse()

lines = [f"name: {kind}", "services:"]
for n, (d, deps) in svcs.items():
    lines.append(f"  {n}:")
    lines.append(f'    command: [demo-service, --port, "${{PORT}}", --name, {n}, --startup-delay, {d}ms]')
    if deps:
        lines.append("    depends_on: { " + ", ".join(f"{x}: {{ condition: healthy }}" for x in deps) + " }")
    lines.append("    healthcheck: { http: /health, interval: 1s, start_period: 30s }")
with open(os.path.join(out, "orchestra.yaml"), "w") as fh:
    fh.write("\n".join(lines) + "\n")

json.dump({
    "services": len(svcs),
    "critical_ms": f(last),
    "chain": chain,
    "depth": len(chain),
    "delays": {n: d for n, (d, _) in svcs.items()},
    "deps": {n: deps for n, (_, deps) in svcs.items()},
}, sys.stdout)
PY
}

# One `up -d` / measure / `down` cycle. Writes DIR/run-I.json with the wall
# time, the CLI's own figure, the daemon info and the run's events.
up_once() { # DIR I
    local dir=$1 i=$2 t0 t1 out
    t0=$(now_ns)
    if ! out=$("$ORCH" -f "$dir/orchestra.yaml" up -d --admin 127.0.0.1:0 2>&1); then
        printf '%s\n' "$out" >&2
        die "orchestra up -d failed in $dir"
    fi
    t1=$(now_ns)
    sock_get "$dir" /v1/daemon >"$dir/daemon.json"
    sock_get "$dir" "/v1/events?limit=10000" >"$dir/events.json"
    sock_get "$dir" "/v1/logs?tail=100000" >"$dir/logs.ndjson"
    "$ORCH" -f "$dir/orchestra.yaml" down >/dev/null
    python3 - "$dir" "$i" "$t0" "$t1" "$out" <<'PY'
import json, re, sys
d, i, t0, t1, out = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4]), sys.argv[5]
m = re.search(r"healthy in ([0-9.]+)s", out)
info = json.load(open(f"{d}/daemon.json"))
ev = [e for e in json.load(open(f"{d}/events.json")) if e.get("run_id") == info["run_id"]]
# Timestamps per service from the log stream: the daemon stamps its own
# `started:`/`healthy:` lines when they happen, and a service's "listening"
# line when it reads it off the pipe. (The event log's at_ms is stamped when
# the recorder writes the row, which can lag by tens of ms: see README.)
marks = {"started": {}, "healthy": {}, "listening": {}}
for line in open(f"{d}/logs.ndjson"):
    try:
        l = json.loads(line)
    except ValueError:
        continue
    if l.get("at_ms", 0) < info["started_at_ms"]:
        continue
    text, svc = l.get("text", ""), l.get("service")
    if l.get("stream") == "stdout" and " listening on " in text:
        marks["listening"].setdefault(svc, l["at_ms"])
    elif l.get("stream") == "orchestra":
        kind = text.split(":", 1)[0]
        if kind in ("started", "healthy"):
            marks[kind].setdefault(svc, l["at_ms"])
skew = [e["at_ms"] - marks[e["kind"]][e["service"]] for e in ev
        if e["kind"] in ("started", "healthy") and e["service"] in marks[e["kind"]]]
json.dump({"marks": marks, "event_skew_ms": skew, "t0_ns": t0, "t1_ns": t1, "wall_ms": (t1 - t0) / 1e6,
           "cli_ms": float(m.group(1)) * 1000 if m else None,
           "daemon": info, "events": ev, "out": out},
          open(f"{d}/run-{i}.json", "w"))
PY
}

# ===========================================================================
say "orchestra $("$ORCH" --version | awk '{print $NF}') | $(nproc) cores | $(uname -sr) | $(date -u +%Y-%m-%dT%H:%MZ)"

# --- 1a. spawn anchors -------------------------------------------------------
say "1a. process start of one demo-service (delay 0): spawn -> 'listening' on stdout, $SPAWN_SAMPLES samples"
python3 - "$DEMO" "$ORCH" "$SPAWN_SAMPLES" "$WORK/spawn.json" <<'PY'
import json, os, signal, subprocess, sys, time, statistics as st
demo, orch, n, out = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4]

def once(argv, shim):
    t = time.perf_counter()
    # Own session: the shim SIGKILLs its process group when its stdin closes.
    p = subprocess.Popen(argv, stdin=subprocess.PIPE if shim else subprocess.DEVNULL,
                         stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, start_new_session=True)
    line = p.stdout.readline()
    dt = (time.perf_counter() - t) * 1000
    if b"listening" not in line:
        sys.exit(f"unexpected output from {argv}: {line!r}")
    os.killpg(p.pid, signal.SIGTERM)  # the group we just created
    p.wait()
    return dt

res = {}
for label, argv, shim in [
    ("demo", [demo, "--port", "0", "--startup-delay", "0"], False),
    ("shim", [orch, "__shim", "--", demo, "--port", "0", "--startup-delay", "0"], True),
]:
    once(argv, shim)  # warm the page cache
    xs = [once(argv, shim) for _ in range(n)]
    res[label] = {"median": st.median(xs), "min": min(xs), "max": max(xs)}
    print(f"  {'demo-service' if label == 'demo' else 'orchestra __shim -- demo-service':34} "
          f"median {res[label]['median']:6.2f} ms  (min {res[label]['min']:.2f}, max {res[label]['max']:.2f})")
json.dump(res, open(out, "w"))
PY

# --- analysis of the up -d runs of one platform ----------------------------------
analyze() { # KIND -> prints, writes $WORK/KIND.summary.json
    python3 - "$WORK" "$1" "$RUNS" <<'PY'
import json, sys, statistics as st
work, kind, runs = sys.argv[1], sys.argv[2], int(sys.argv[3])
plan = json.load(open(f"{work}/{kind}.plan.json"))
rs = [json.load(open(f"{work}/{kind}/run-{i}.json")) for i in range(1, runs + 1)]

def mmm(xs):
    return {"median": st.median(xs), "min": min(xs), "max": max(xs)}

def fmt(d):
    return f"median {d['median']:7.1f} ms  (min {d['min']:.1f}, max {d['max']:.1f})"

def breakdown(run):
    """Split one run's wall time along the chain that actually finished last."""
    started, healthy = run["marks"]["started"], run["marks"]["healthy"]
    t0, t1 = run["t0_ns"] / 1e6, run["t1_ns"] / 1e6
    daemon0 = run["daemon"]["started_at_ms"]
    deps = plan["deps"]
    last = max(healthy, key=healthy.get)
    chain, n = [], last
    while n:
        chain.append(n)
        n = max(deps[n], key=lambda d: healthy[d], default=None)
    chain.reverse()
    # A service's "listening" line can be missing from the log tail; then its
    # whole start counts as spawn.
    listening = {n: run["marks"]["listening"].get(n, healthy[n]) for n in healthy}
    parts = {"CLI start -> daemon started_at": daemon0 - t0,
             "gates (dep healthy -> dependent started)": 0.0,
             "spawn (started -> 'listening' - delay)": 0.0,
             "probe detection ('listening' -> healthy)": 0.0,
             "tail (last healthy -> up -d exits)": t1 - healthy[last]}
    prev, hops = daemon0, []
    for n in chain:
        gate = started[n] - prev
        lag = healthy[n] - started[n] - plan["delays"][n]
        parts["gates (dep healthy -> dependent started)"] += gate
        spawn = listening[n] - started[n] - plan["delays"][n]
        parts["spawn (started -> 'listening' - delay)"] += spawn
        parts["probe detection ('listening' -> healthy)"] += healthy[n] - listening[n]
        hops.append((n, gate, plan["delays"][n], spawn, healthy[n] - listening[n]))
        prev = healthy[n]
    parts["sum of delays on that chain"] = sum(plan["delays"][n] for n in chain)
    lags = [(healthy[n] - started[n] - plan["delays"][n], listening[n] - started[n] - plan["delays"][n],
             healthy[n] - listening[n]) for n in healthy if n in started]
    return parts, hops, lags

crit = plan["critical_ms"]
wall = mmm([r["wall_ms"] for r in rs])
cli = mmm([r["cli_ms"] for r in rs])
over = mmm([r["wall_ms"] - crit for r in rs])
over_cli = mmm([r["cli_ms"] - crit for r in rs])
print(f"  {plan['services']} service(s), critical path {crit} ms over {plan['depth']} hop(s): "
      + " -> ".join(f"{n}({plan['delays'][n]})" for n in plan["chain"]))
print(f"  time to all-healthy, wall of up -d   {fmt(wall)}")
print(f"  time to all-healthy, 'in X.XXs'      {fmt(cli)}")
print(f"  overhead = wall - critical path      {fmt(over)}")
print(f"  overhead = 'in' - critical path      {fmt(over_cli)}")
med = sorted(rs, key=lambda r: r["wall_ms"])[len(rs) // 2]
try:
    parts, hops, _ = breakdown(med)
except KeyError:
    parts, hops = {}, []
print(f"  where the median run's {med['wall_ms']:.0f} ms went (daemon log timestamps, ms resolution):")
for k, v in parts.items():
    print(f"    {k:44} {v:6.0f} ms")
print("    per hop, service(gate/delay/spawn/detect ms): "
      + ", ".join(f"{n}({g:.0f}/{d}/{sp:.0f}/{dt:.0f})" for n, g, d, sp, dt in hops))
def lags_of(r):
    # A run whose log tail lost a service's lines has no breakdown; skip it.
    try:
        return breakdown(r)[2]
    except KeyError:
        return []
trip = [t for r in rs for t in lags_of(r)]
for i, what in enumerate(["started->healthy - delay", "  of which spawn (started->'listening' - delay)",
                          "  of which probe detection ('listening'->healthy)"]):
    xs = [t[i] for t in trip]
    print(f"    {what:48} every service, every run: median {st.median(xs):3.0f} ms "
          f"(min {min(xs):.0f}, max {max(xs):.0f}, n={len(xs)})")
all_lags = [t[0] for t in trip]
skew = [x for r in rs for x in r["event_skew_ms"]]
if skew:
    print(f"    `orchestra events` at_ms minus the same event's log-line at_ms: median {st.median(skew):.0f} ms, "
          f"max {max(skew)} ms (n={len(skew)})")
json.dump({"critical": crit, "depth": plan["depth"], "wall": wall, "cli": cli, "overhead": over,
           "overhead_cli": over_cli, "parts": parts, "lag_median": st.median(all_lags),
           "spawn_median": st.median([t[1] for t in trip]), "detect_median": st.median([t[2] for t in trip])},
          open(f"{work}/{kind}.summary.json", "w"))
PY
}

run_platform() { # KIND: generate, RUNS+1 up -d/down cycles (the first is a warm-up), analyze
    local kind=$1 dir="$WORK/$1"
    PROJECTS+=("$dir")
    gen "$kind" "$dir" >"$WORK/$kind.plan.json"
    for i in $(seq 0 "$RUNS"); do up_once "$dir" "$i"; done
    analyze "$kind"
}

# --- 1b. fixed cost: a 1-service platform with delay 0 -------------------------
say "1b. up -d of a 1-service platform (delay 0): fixed cost; $RUNS runs (+1 warm-up)"
run_platform one

# --- 1c. the 20-service platform ------------------------------------------------
say "1c. up -d of the 20-service platform (chains + fan-out, healthy-gated); $RUNS runs (+1 warm-up), down between"
run_platform chain20
say "1d. the same platform with every delay a multiple of 25 ms; $RUNS runs (+1 warm-up)"
run_platform round20

# --- 2. daemon footprint -----------------------------------------------------------
F50="$WORK/flat50"; PROJECTS+=("$F50")
gen flat50 "$F50" >"$WORK/flat50.plan.json"
say "2. daemon footprint: 50 services (10 with a dependency), delays 20-100 ms; idle over ${IDLE_SECS}s"
"$ORCH" -f "$F50/orchestra.yaml" up -d --admin 127.0.0.1:0 | tail -n 1
DPID="$(daemon_pid "$F50")"
[ -n "$DPID" ] || die "no daemon PID from /v1/daemon"
sleep 2 # past the start: only the 1s liveness probes are left
python3 - "$DPID" "$IDLE_SECS" "$WORK/footprint.json" <<'PY'
import json, os, sys, time
pid, secs, out = int(sys.argv[1]), float(sys.argv[2]), sys.argv[3]
tck = os.sysconf("SC_CLK_TCK")

def status(p):
    d = {}
    for line in open(f"/proc/{p}/status"):
        k, _, v = line.partition(":")
        d[k] = v.strip()
    return d

def cpu(p):
    s = open(f"/proc/{p}/stat").read()
    f = s[s.rindex(")") + 2:].split()
    return (int(f[11]) + int(f[12])) / tck  # utime + stime, all threads

def kb(v):
    return int(v.split()[0])

def children(p):
    kids = []
    for d in os.listdir("/proc"):
        if d.isdigit():
            try:
                s = open(f"/proc/{d}/stat").read()
            except OSError:
                continue
            if int(s[s.rindex(")") + 2:].split()[1]) == p:
                kids.append(int(d))
    return kids

st0 = status(pid)
c0, w0 = cpu(pid), time.monotonic()
time.sleep(secs)
c1, w1 = cpu(pid), time.monotonic()
st1 = status(pid)
shims = children(pid)
shim_st = [status(s) for s in shims]
svc_rss = [kb(status(c)["VmRSS"]) for s in shims for c in children(s)]
r = {
    "rss_kb": kb(st1["VmRSS"]), "anon_kb": kb(st1["RssAnon"]), "hwm_kb": kb(st1["VmHWM"]),
    "threads": int(st1["Threads"]),
    "idle_cpu_pct": 100 * (c1 - c0) / (w1 - w0), "cpu_s": c1 - c0, "wall_s": w1 - w0,
    "shims": len(shims),
    "shim_rss_each_kb": sum(kb(x["VmRSS"]) for x in shim_st) / max(1, len(shims)),
    "shim_anon_kb": sum(kb(x["RssAnon"]) for x in shim_st),
    "services_rss_kb": sum(svc_rss),
}
print(f"  daemon pid {pid}: VmRSS {r['rss_kb']/1024:.1f} MiB (RssAnon {r['anon_kb']/1024:.1f} MiB, "
      f"peak VmHWM {r['hwm_kb']/1024:.1f} MiB), {r['threads']} threads")
print(f"  idle CPU {r['idle_cpu_pct']:.2f}% of one core ({r['cpu_s']*1000:.0f} ms CPU in {r['wall_s']:.1f} s; "
      f"clock tick {1000/tck:.0f} ms)")
print(f"    -- includes the liveness probes: 50 services x 1 HTTP GET per 1s interval = 50 probes/s, "
      f"~{r['cpu_s']*1e6/(50*r['wall_s']):.0f} us of daemon CPU per probe")
print(f"  not in the daemon's RSS: {r['shims']} shim processes (`orchestra __shim`, VmRSS "
      f"{r['shim_rss_each_kb']/1024:.1f} MiB each, mostly shared binary pages; RssAnon "
      f"{r['shim_anon_kb']/1024:.1f} MiB in all); the 50 demo-services: VmRSS {r['services_rss_kb']/1024:.0f} MiB in all")
json.dump(r, open(out, "w"))
PY
"$ORCH" -f "$F50/orchestra.yaml" down >/dev/null

# --- 3. CLI start ----------------------------------------------------------------------
say "3. CLI start: hyperfine --warmup 5"
HF_SHELL=()
if hyperfine --help 2>/dev/null | grep -q -- '--shell'; then HF_SHELL=(-N); fi
hyperfine "${HF_SHELL[@]}" --warmup 5 --style basic --export-json "$WORK/hyperfine.json" \
    -n 'orchestra --version' "$ORCH --version" \
    -n 'demo-service --help' "$DEMO --help" \
    -n '/bin/true' '/bin/true' 2>&1 | grep -E '^(Benchmark|  Time|  Range)' || true

# --- table ---------------------------------------------------------------------------
say "summary"
python3 - "$WORK" <<'PY'
import json, sys
w = sys.argv[1]
s = {k: json.load(open(f"{w}/{k}.summary.json")) for k in ["one", "chain20", "round20"]}
sp = json.load(open(f"{w}/spawn.json"))
fp = json.load(open(f"{w}/footprint.json"))
hf = {r["command"]: r for r in json.load(open(f"{w}/hyperfine.json"))["results"]}
ms = lambda r: r["mean"] * 1000
def ok(v, limit, strict=False):
    return "ok" if (v < limit if strict else v <= limit) else "MISSED"
c, r = s["chain20"], s["round20"]
rows = [
    ("startup overhead, 20 svc (wall - critical)",
     f"{c['overhead']['median']:.0f} ms [{c['overhead']['min']:.0f}..{c['overhead']['max']:.0f}]",
     f"<= 100 ms {ok(c['overhead']['median'], 100)}",
     f"critical path {c['critical']} ms, {c['depth']} hops"),
    ("  same, from the 'in X.XXs' figure",
     f"{c['overhead_cli']['median']:.0f} ms [{c['overhead_cli']['min']:.0f}..{c['overhead_cli']['max']:.0f}]",
     f"<= 100 ms {ok(c['overhead_cli']['median'], 100)}", "excludes the CLI's own start + validation"),
    ("  time to all-healthy, wall",
     f"{c['wall']['median']:.0f} ms [{c['wall']['min']:.0f}..{c['wall']['max']:.0f}]", "-",
     f"critical path {c['critical']} ms"),
    ("  per service: started->healthy - delay", f"{c['lag_median']:.0f} ms (spawn {c['spawn_median']:.0f} + detect {c['detect_median']:.0f})", "-",
     f"demo-service spawn->listen {sp['demo']['median']:.1f} ms, via shim {sp['shim']['median']:.1f} ms"),
    ("startup overhead, delays multiples of 25 ms",
     f"{r['overhead']['median']:.0f} ms [{r['overhead']['min']:.0f}..{r['overhead']['max']:.0f}]",
     f"<= 100 ms {ok(r['overhead']['median'], 100)}",
     f"critical path {r['critical']} ms, {r['depth']} hops"),
    ("up -d, 1 service, delay 0 (fixed cost)",
     f"{s['one']['wall']['median']:.0f} ms [{s['one']['wall']['min']:.0f}..{s['one']['wall']['max']:.0f}]", "-",
     f"demo-service spawn->listen {sp['demo']['median']:.1f} ms"),
    ("daemon RSS, 50 services", f"{fp['rss_kb']/1024:.1f} MiB", f"<= 30 MB {ok(fp['rss_kb']*1024, 30e6)}",
     f"RssAnon {fp['anon_kb']/1024:.1f} MiB; + {fp['shims']} shims, RssAnon {fp['shim_anon_kb']/1024:.1f} MiB"),
    ("daemon idle CPU, 50 services", f"{fp['idle_cpu_pct']:.2f} %", f"< 1 % {ok(fp['idle_cpu_pct'], 1, True)}",
     "incl. 50 HTTP probes/s"),
    ("orchestra --version (hyperfine mean)", f"{ms(hf['orchestra --version']):.1f} ms",
     f"<= 20 ms {ok(ms(hf['orchestra --version']), 20)}",
     f"/bin/true {ms(hf['/bin/true']):.1f} ms, demo-service --help {ms(hf['demo-service --help']):.1f} ms"),
]
hdr = ("metric", "measured", "target", "anchor")
wd = [max(len(x[i]) for x in rows + [hdr]) for i in range(4)]
line = lambda x: "| " + " | ".join(x[i].ljust(wd[i]) for i in range(4)) + " |"
print(line(hdr))
print("|" + "|".join("-" * (n + 2) for n in wd) + "|")
for x in rows:
    print(line(x))
PY

"""Turns bench/run.sh's result files into bench/RESULTS.md (Markdown on stdout).

    report.py WORK DATABASE DURATION CONNECTIONS SIZE [SIZE ...]

Reads WORK/results[-DATABASE]-ceiling.txt and WORK/results[-DATABASE]-SIZE.txt
(no suffix for sqlite): lines of `server scenario key=value ...` and
`server peak_rss_kb=N`.
"""
import datetime
import os
import platform
import subprocess
import sys

work, database, duration, connections = sys.argv[1:5]
sizes = sys.argv[5:]
tag = "" if database == "sqlite" else f"-{database}"

SCENARIOS = ["me", "departments_page2", "team_search", "team_deep_ordering", "jwt_verify",
             "create_department", "jwt_create", "coach_me", "profile", "clients_filter_email", "healthz"]
# Surfaces the Django peer does not implement (seed 004 only), and Roster's
# health check (no database, no credentials: the cost of the HTTP stack).
ROSTER_ONLY = {"coach_me", "profile", "clients_filter_email", "healthz"}
READS = {"me", "departments_page2", "team_search", "team_deep_ordering", "jwt_verify",
         "coach_me", "profile", "clients_filter_email"}


def read(path):
    rows, memory, notes = {}, {}, []
    try:
        lines = open(path).read().splitlines()
    except OSError:
        return rows, memory, [f"{path} missing"]
    for line in lines:
        parts = line.split()
        if len(parts) >= 2 and parts[1].startswith("peak_rss_kb="):
            value = parts[1].split("=", 1)[1]
            memory[parts[0]] = int(value) if value.isdigit() else None
        elif len(parts) >= 3 and "=" in parts[2]:
            rows[(parts[0], parts[1])] = dict(p.split("=", 1) for p in parts[2:])
        elif line.strip():
            notes.append(line.strip())
    return rows, memory, notes


def num(rows, server, scenario, key):
    try:
        return float(rows.get((server, scenario), {}).get(key, ""))
    except ValueError:
        return None


def cell(rows, server, scenario, key):
    return rows.get((server, scenario), {}).get(key, "")


ceiling_rows, ceiling_memory, _ = read(f"{work}/results{tag}-ceiling.txt")
ceiling = num(ceiling_rows, "bare", "json", "rps")
commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True).stdout.strip()
cpu = ""
try:
    cpu = next(l.split(":", 1)[1].strip() for l in open("/proc/cpuinfo") if l.startswith("model name"))
except (OSError, StopIteration):
    pass
cores = subprocess.run(["nproc"], capture_output=True, text=True).stdout.strip()

print("# Benchmark results\n")
# The run's end: when its last result was written (not when this report ran).
ended = max((os.path.getmtime(f"{work}/results{tag}-{s}.txt") for s in sizes
             if os.path.exists(f"{work}/results{tag}-{s}.txt")), default=None)
when = datetime.datetime.fromtimestamp(ended, datetime.timezone.utc) if ended else datetime.datetime.now(datetime.timezone.utc)
print(f"- Date: {when:%Y-%m-%d %H:%M} UTC; commit `{commit}` (the working tree's, when this report was written)")
print(f"- Machine: {platform.machine()}, {cpu}, {cores} cores")
engine = ("SQLite for both Roster and Django" if database == "sqlite" else
          "PostgreSQL for both Roster and Django: one cluster of the benchmark's own, pinned with the "
          "servers to CPU 1 (so the server core also runs the database); peak memory counts the server "
          "process tree, not PostgreSQL's")
print(f"- Datasets: 1 company, 1,000 departments, and {' / '.join(f'{int(s):,}' for s in sizes)} team members; "
      f"{engine}")
print(f"- Load: wrk, 1 thread, {connections} connections, {duration} s per scenario, pinned to CPU 0; "
      "each server pinned to CPU 1")
print("- Django: the peer in `shared/peer/django` (Django 5.2, DRF 3.18, Djoser, SimpleJWT) under gunicorn "
      "with its default 2 x cores + 1 sync workers")
print("- Ceiling: a bare axum handler answering a small JSON body (`examples/bare_axum.rs`): "
      f"{cell(ceiling_rows, 'bare', 'json', 'rps')} req/s, p50 {cell(ceiling_rows, 'bare', 'json', 'p50_ms')} ms, "
      f"p99 {cell(ceiling_rows, 'bare', 'json', 'p99_ms')} ms, "
      f"peak memory {(ceiling_memory.get('bare') or 0) / 1024:.0f} MiB")

for size in sizes:
    rows, memory, notes = read(f"{work}/results{tag}-{size}.txt")
    print(f"\n## {int(size):,} team members\n")
    print("| scenario | Roster req/s | p50 ms | p99 ms | errors | Django req/s | p50 ms | p99 ms | Roster / Django | Roster / ceiling |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    for s in SCENARIOS:
        r, d = num(rows, "roster", s, "rps"), num(rows, "django", s, "rps")
        ratio_d = f"{r / d:.1f}x" if r and d else ("n/a (not in the peer)" if s in ROSTER_ONLY else "")
        ratio_c = f"{r / ceiling:.3f}" if r and ceiling else ""
        name = f"`{s}`" + (" (read)" if s in READS else "")
        print(f"| {name} | {cell(rows, 'roster', s, 'rps')} | {cell(rows, 'roster', s, 'p50_ms')} | "
              f"{cell(rows, 'roster', s, 'p99_ms')} | {cell(rows, 'roster', s, 'non2xx')} | "
              f"{cell(rows, 'django', s, 'rps')} | {cell(rows, 'django', s, 'p50_ms')} | "
              f"{cell(rows, 'django', s, 'p99_ms')} | {ratio_d} | {ratio_c} |")
    print("\nA login flood: 16 connections logging in flat out while `me` runs; `me` also runs idle "
          "just before and just after (the target: p99 during the flood at most twice the idle p99):\n")
    print("| server | `me` p99 before ms | during the flood ms | after ms | during / mean of before and after "
          "| `me` req/s during the flood |")
    print("|---|---:|---:|---:|---:|---:|")
    for server in ["roster", "django"]:
        before = num(rows, server, "me_before_login_flood", "p99_ms")
        during = num(rows, server, "me_during_login_flood", "p99_ms")
        after = num(rows, server, "me_after_login_flood", "p99_ms")
        if before and during and after:
            print(f"| {server} | {before:.2f} | {during:.2f} | {after:.2f} | "
                  f"{during / ((before + after) / 2):.2f}x | {cell(rows, server, 'me_during_login_flood', 'rps')} |")
    print("\nPeak resident memory during this dataset's run (the whole process tree):\n")
    for name in ["roster", "django"]:
        if memory.get(name):
            print(f"- {name}: {memory[name] / 1024:.0f} MiB")
    for n in notes:
        print(f"\nNote: {n}")

# The analysis is prose about one run's figures, kept beside the script.
analysis = __file__.rsplit("/", 1)[0] + f"/analysis{tag}.md"
try:
    print("\n" + open(analysis).read().rstrip())
except OSError:
    pass

"""Turns bench/run.sh's result lines into bench/RESULTS.md (Markdown on stdout)."""
import datetime
import platform
import subprocess
import sys

path, members, duration, connections = sys.argv[1:5]
rows = {}
memory = {}
notes = []
for line in open(path):
    parts = line.split()
    if len(parts) >= 2 and parts[1].startswith("peak_rss_kb="):
        value = parts[1].split("=", 1)[1]
        memory[parts[0]] = int(value) if value.isdigit() else None
        continue
    if len(parts) < 3 or "=" not in parts[2]:
        notes.append(line.strip())
        continue
    server, scenario = parts[0], parts[1]
    rows[(server, scenario)] = dict(p.split("=", 1) for p in parts[2:])

def cell(server, scenario, key):
    r = rows.get((server, scenario))
    return r.get(key, "") if r else ""

def num(server, scenario, key):
    try:
        return float(cell(server, scenario, key))
    except ValueError:
        return None

scenarios = ["me", "departments_page2", "team_search", "team_deep_ordering", "jwt_verify", "create_department", "jwt_create",
             "coach_me", "profile", "clients_filter_email"]
# Surfaces the Django peer does not implement (seed 004 only).
roster_only = {"coach_me", "profile", "clients_filter_email"}
ceiling = num("bare", "json", "rps")
commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True).stdout.strip()
cpu = ""
try:
    cpu = next(l.split(":", 1)[1].strip() for l in open("/proc/cpuinfo") if l.startswith("model name"))
except (OSError, StopIteration):
    pass

print("# Benchmark results\n")
print(f"- Date: {datetime.datetime.now(datetime.timezone.utc):%Y-%m-%d %H:%M} UTC; commit `{commit}`")
print(f"- Machine: {platform.machine()}, {cpu}, {subprocess.run(['nproc'], capture_output=True, text=True).stdout.strip()} cores")
print(f"- Dataset: 1 company, 1,000 departments, {int(members):,} team members; SQLite for both Roster and Django")
print(f"- Load: wrk, 1 thread, {connections} connections, {duration} s per scenario, pinned to CPU 0; each server pinned to CPU 1")
print("- Django: the peer in `shared/peer/django` (Django 5.2, DRF 3.18, Djoser, SimpleJWT) under gunicorn with its default 2 x cores + 1 sync workers; pinned to one core, that is 3 workers")
print("- Ceiling: a bare axum handler answering a small JSON body (`examples/bare_axum.rs`)\n")
print("| scenario | Roster req/s | p50 ms | p99 ms | errors | Django req/s | p50 ms | p99 ms | Roster / Django | Roster / ceiling |")
print("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
for s in scenarios:
    r, d = num("roster", s, "rps"), num("django", s, "rps")
    ratio_d = f"{r / d:.1f}x" if r and d else ("n/a (not in the peer)" if s in roster_only else "")
    ratio_c = f"{r / ceiling:.2f}" if r and ceiling else ""
    errors = cell("roster", s, "non2xx")
    print(f"| `{s}` | {cell('roster', s, 'rps')} | {cell('roster', s, 'p50_ms')} | {cell('roster', s, 'p99_ms')} | {errors} | "
          f"{cell('django', s, 'rps')} | {cell('django', s, 'p50_ms')} | {cell('django', s, 'p99_ms')} | {ratio_d} | {ratio_c} |")
print(f"\nCeiling (bare axum JSON): {cell('bare', 'json', 'rps')} req/s, p50 {cell('bare', 'json', 'p50_ms')} ms, p99 {cell('bare', 'json', 'p99_ms')} ms.\n")
print("Peak resident memory during the run (the whole process tree):\n")
for name in ["roster", "django", "bare"]:
    if name in memory and memory[name]:
        print(f"- {name}: {memory[name] / 1024:.0f} MiB")
for n in notes:
    print(f"\nNote: {n}")

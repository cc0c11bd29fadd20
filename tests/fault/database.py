"""The database failing under the server (reliability.md section 7, goals
G13 and G14): PostgreSQL stopped for 15 s under steady load, its
connections terminated, and crashed (`-m immediate`) under writes; SQLite
locked by another process; a pool of two connections under fifty
concurrent clients. Never a 500, never a hang; 503 with Retry-After while
the database is away, and service resumes without a restart.
"""

import os
import subprocess
import sys
import time

from faultlib import Load, Report, Server, jwt, percentile, request

ACQUIRE_TIMEOUT = 3  # the server's default, seconds


def mixed(server, token, prefix):
    """A request of the usual mix: list, me, create."""
    def call(i):
        kind = i % 3
        if kind == 0:
            r = request(server.port, "GET", "/api/departments/", headers=jwt(token), timeout=10)
        elif kind == 1:
            r = request(server.port, "GET", "/api/auth/users/me/", headers=jwt(token), timeout=10)
        else:
            name = f"{prefix}-{i}"
            r = request(server.port, "POST", "/api/departments/", {"name": name},
                        headers=jwt(token), timeout=10)
            if r.status == 201:
                return ("status", 201, True, name)
        return ("status", r.status, "retry-after" in r.headers, None)
    return call


def statuses(results):
    out = {}
    for _, _, o in results:
        key = o[1] if o[0] == "status" else o[1]
        out[key] = out.get(key, 0) + 1
    return out


def pg_outage(pg):
    report = Report("pg-outage")
    server = Server(database_url=pg.fresh_database("roster_outage"))
    try:
        server.seed()
        server.start()
        token = server.login()
        load = Load(mixed(server, token, "outage"), threads=5, rate=50).start()
        time.sleep(4)
        pg.stop("fast")
        stopped = time.monotonic()
        ready_during = request(server.port, "GET", "/readyz", timeout=5).status
        time.sleep(15)
        starting = time.monotonic()
        pg.start()
        time.sleep(8)
        results = load.stop()

        during = [(t, d, o) for t, d, o in results if stopped + 0.2 <= t and t + d <= starting]
        after = [(t, d, o) for t, d, o in results if t >= starting]
        all_5xx_500 = sum(1 for _, _, o in results if o[0] == "status" and o[1] >= 500 and o[1] != 503)
        hangs = sum(1 for _, _, o in results if o[0] == "error")
        during_503 = [d for _, d, o in during if o[0] == "status" and o[1] == 503]
        during_other = len(during) - len(during_503)
        no_retry_after = sum(1 for _, _, o in results if o[0] == "status" and o[1] == 503 and not o[2])
        first_ok = min((t + d for t, d, o in after if o[0] == "status" and o[1] < 500), default=None)
        recovery_ms = (first_ok - starting) * 1000 if first_ok else None
        late_fail = sum(1 for t, _, o in after if t >= starting + 5 and not (o[0] == "status" and o[1] < 500))

        report.info("requests", len(results))
        report.info("requests_during_outage", len(during))
        report.check("readyz_during_outage", ready_during, 503, ready_during == 503)
        report.check("during_outage_not_503", during_other, 0, during_other == 0 and len(during) > 0)
        p99 = percentile(during_503, 99) * 1000
        report.check("outage_503_p99_ms", round(p99), f"<= {(ACQUIRE_TIMEOUT + 1) * 1000}",
                     p99 <= (ACQUIRE_TIMEOUT + 1) * 1000)
        report.check("answers_5xx_not_503", all_5xx_500, 0, all_5xx_500 == 0)
        report.check("hangs_or_resets", hangs, 0, hangs == 0)
        report.check("503_without_retry_after", no_retry_after, 0, no_retry_after == 0)
        report.check("recovery_ms", round(recovery_ms) if recovery_ms is not None else None, "<= 5000",
                     recovery_ms is not None and recovery_ms <= 5000)
        report.check("failures_5s_after_restart", late_fail, 0, late_fail == 0)

        # Every connection of the app terminated under load: the pool tests
        # connections before handing them out, and a request whose backend
        # is terminated under it runs again (nothing it did was committed),
        # so clients see no error.
        reruns_before = server.metric("roster_http_requests_rerun_total") or 0
        load = Load(mixed(server, token, "terminate"), threads=5, rate=50).start()
        time.sleep(2)
        killed = pg.psql("SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
                         "WHERE datname = 'roster_outage' AND pid <> pg_backend_pid()")
        time.sleep(3)
        results = load.stop()
        errors = sum(1 for _, _, o in results if o[0] == "error" or o[1] >= 500)
        report.info("terminated_connections", int(killed))
        report.info("terminate_reruns",
                    int((server.metric("roster_http_requests_rerun_total") or 0) - reruns_before))
        report.check("terminate_client_errors", errors, 0, errors == 0)
        if errors:
            report.note(f"after pg_terminate_backend: {statuses(results)}")

        # PostgreSQL crashed (immediate stop) under writes: acknowledged rows survive.
        load = Load(mixed(server, token, "crash"), threads=6).start()
        time.sleep(1.5)
        pg.stop("immediate")
        time.sleep(1)
        results = load.stop()
        pg.start()
        acked = {o[3] for _, _, o in results if o[0] == "status" and o[1] == 201}
        rows = set(pg.psql("SELECT name FROM departments WHERE name LIKE 'crash-%'",
                           "roster_outage").splitlines())
        lost = len(acked - rows)
        report.info("crash_acked", len(acked))
        report.check("crash_lost", lost, 0, lost == 0 and len(acked) > 0)
        deadline = time.monotonic() + 10
        back = False
        while time.monotonic() < deadline and not back:
            try:
                back = request(server.port, "GET", "/api/departments/", headers=jwt(token)).status == 200
            except OSError:
                pass
            time.sleep(0.1)
        report.check("serving_after_crash_without_restart", back, True, back)
        crashed = server.proc.poll() is not None
        report.check("server_process_survived", not crashed, True, not crashed)
    finally:
        server.cleanup()
    return report.finish()


HOLD_LOCK = """
import sqlite3, sys, time
c = sqlite3.connect(sys.argv[1], isolation_level=None, timeout=10)
c.execute("BEGIN IMMEDIATE")
print("locked", flush=True)
time.sleep(float(sys.argv[2]))
c.execute("ROLLBACK")
"""


def sqlite_locked():
    report = Report("sqlite-locked")
    server = Server()
    try:
        server.seed()
        server.start()
        token = server.login()
        holder = subprocess.Popen([sys.executable, "-c", HOLD_LOCK,
                                   os.path.join(server.data_dir, "roster.db"), "8"],
                                  stdout=subprocess.PIPE)
        assert holder.stdout.readline().strip() == b"locked"
        locked_at = time.monotonic()
        # Two writers start while the lock is held (8 s, longer than the 5 s
        # busy timeout): each waits the busy timeout, then 503.
        writes = Load(lambda i: ("status", *(lambda r: (r.status, "retry-after" in r.headers))(
            request(server.port, "POST", "/api/departments/", {"name": f"locked-{i}"},
                    headers=jwt(token), timeout=10))), threads=2, limit=2.5).start()
        reads = Load(lambda i: ("status", request(server.port, "GET", "/api/departments/",
                                                  headers=jwt(token), timeout=10).status, True),
                     threads=2, rate=20, limit=6.5).start()
        write_results = writes.wait()
        read_results = reads.wait()
        holder.wait(timeout=30)
        write_codes = [o[1] for _, _, o in write_results if o[0] == "status"]
        write_errors = sum(1 for _, _, o in write_results if o[0] == "error")
        read_ok = sum(1 for _, _, o in read_results if o[0] == "status" and o[1] == 200)
        read_lat = [d for _, d, _ in read_results]
        after = request(server.port, "POST", "/api/departments/", {"name": "after-lock"},
                        headers=jwt(token)).status
        report.info("lock_held_s", round(time.monotonic() - locked_at, 1))
        report.check("writes_503", write_codes.count(503), ">= 1", write_codes.count(503) >= 1)
        report.check("writes_not_503", len(write_codes) - write_codes.count(503) + write_errors, 0,
                     len(write_codes) == write_codes.count(503) and write_errors == 0)
        with_retry = sum(1 for _, _, o in write_results if o[0] == "status" and o[2])
        report.check("writes_with_retry_after", with_retry, len(write_codes), with_retry == len(write_codes))
        write_lat = max((d for _, d, _ in write_results), default=0)
        report.check("write_wait_max_ms", round(write_lat * 1000), "<= 6000", write_lat <= 6)
        report.check("reads_ok", read_ok, len(read_results), read_ok == len(read_results) and read_ok > 0)
        p99 = percentile(read_lat, 99) * 1000
        report.check("reads_p99_ms", round(p99, 1), "<= 200", p99 <= 200)
        report.check("write_after_release", after, 201, after == 201)
    finally:
        server.cleanup()
    return report.finish()


def pool_exhaustion(backend, pg=None):
    report = Report(f"pool-exhaustion-{backend}")
    url = pg.fresh_database("roster_pool") if pg else None
    server = Server(database_url=url, env={"ROSTER_DATABASE_MAX_CONNECTIONS": "2"})
    try:
        server.seed()
        server.start()
        token = server.login()
        load = Load(mixed(server, token, "pool"), threads=50, limit=6).start()
        time.sleep(6)
        results = load.stop()
        codes = statuses(results)
        bad = sum(n for code, n in codes.items() if code not in (200, 201, 503))
        shed = [(d, o) for _, d, o in results if o[0] == "status" and o[1] == 503]
        no_retry = sum(1 for _, o in shed if not o[2])
        p99 = percentile([d for d, _ in shed], 99) * 1000
        after = request(server.port, "GET", "/api/departments/", headers=jwt(token)).status
        report.info("requests", len(results))
        report.info("statuses", {str(k): v for k, v in sorted(codes.items(), key=str)})
        report.check("not_2xx_or_503", bad, 0, bad == 0)
        report.check("503_without_retry_after", no_retry, 0, no_retry == 0)
        report.check("503_p99_ms", round(p99), f"<= {ACQUIRE_TIMEOUT * 1000 + 500}",
                     p99 <= ACQUIRE_TIMEOUT * 1000 + 500)
        report.check("after", after, 200, after == 200)
    finally:
        server.cleanup()
    return report.finish()

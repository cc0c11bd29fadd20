"""kill -9 under write load (reliability.md section 4, goal G11).

Eight writers create departments and one uploads documents; at a random
moment between 0.3 and 1.5 s the server gets SIGKILL, is restarted on the
same database and storage, and everything acknowledged must be there:
no acknowledged write lost, no duplicate, SQLite's integrity and foreign-key
checks clean, every stored document's file present with its checksum.
A second part kills the server during start-up (while it migrates) and
checks that the next start succeeds.
"""

import os
import random
import signal
import sqlite3
import time

from faultlib import (Load, Report, Server, bearer, first_profile_id, jwt, md5_b64,
                      multipart, pdf_bytes, request)

CYCLES = int(os.environ.get("KILL_CYCLES", "20"))


class Store:
    """Reads the server's database and files directly (the server is stopped)."""

    def __init__(self, server, pg=None, db=None):
        self.server = server
        self.pg = pg
        self.db = db

    def rows(self, sql):
        """PostgreSQL rows through psql, columns joined with '|'."""
        out = self.pg.psql(sql.replace("%SEP%", "'|'"), self.db)
        return [tuple(line.split("|")) for line in out.splitlines() if line]

    def departments(self, prefix):
        if self.pg:
            return self.rows(f"SELECT id || %SEP% || name FROM departments WHERE name LIKE '{prefix}%'")
        conn = sqlite3.connect(os.path.join(self.server.data_dir, "roster.db"))
        try:
            return [(str(i), n) for i, n in conn.execute(
                "SELECT id, name FROM departments WHERE name LIKE ?", (prefix + "%",))]
        finally:
            conn.close()

    def blobs(self):
        if self.pg:
            return self.rows("SELECT storage_key || %SEP% || checksum FROM blobs")
        conn = sqlite3.connect(os.path.join(self.server.data_dir, "roster.db"))
        try:
            return list(conn.execute("SELECT storage_key, checksum FROM blobs"))
        finally:
            conn.close()

    def integrity(self):
        """SQLite's integrity_check and foreign_key_check; PostgreSQL checks
        its own constraints on every write, so only the files are checked."""
        if self.pg:
            return "ok", 0
        conn = sqlite3.connect(os.path.join(self.server.data_dir, "roster.db"))
        try:
            integrity = conn.execute("PRAGMA integrity_check").fetchone()[0]
            fk = len(conn.execute("PRAGMA foreign_key_check").fetchall())
            return integrity, fk
        finally:
            conn.close()

    def files(self):
        """(rows whose file is missing or differs, files no row names)."""
        root = os.path.join(self.server.data_dir, "files")
        named = {}
        for key, checksum in self.blobs():
            named[key] = checksum
        bad = 0
        for key, checksum in named.items():
            path = os.path.join(root, key)
            try:
                with open(path, "rb") as f:
                    if md5_b64(f.read()) != checksum:
                        bad += 1
            except OSError:
                bad += 1
        on_disk = set()
        for dirpath, _, files in os.walk(root):
            for name in files:
                rel = os.path.relpath(os.path.join(dirpath, name), root)
                if not name.startswith(".") and not rel.startswith("."):
                    on_disk.add(rel)
        orphans = len(on_disk - set(named))
        return bad, orphans, {checksum for checksum in named.values()}


def run(backend, pg=None):
    name = f"killnine-{backend}"
    report = Report(name)
    env = {"ROSTER_SQLITE_SYNCHRONOUS": "normal"} if backend == "sqlite-normal" else {}
    database_url = pg.fresh_database("roster_killnine") if pg else None
    server = Server(database_url=database_url, env=env)
    store = Store(server, pg, "roster_killnine")
    try:
        server.seed()
        server.start()
        token = server.login()
        profile = first_profile_id(server.port, token)
        totals = {"acked": 0, "uncertain": 0, "lost": 0, "dup": 0, "refused_5xx": 0,
                  "uploads_acked": 0, "uploads_lost": 0, "bad_files": 0, "orphans": 0,
                  "integrity_fail": 0}
        ready_ms = []
        cycles = 0
        for cycle in range(CYCLES):
            if cycle:
                ready_ms.append(server.start())
            prefix = f"kc-{cycle}-"

            def write(i, prefix=prefix):
                name = f"{prefix}{i}"
                r = request(server.port, "POST", "/api/departments/", {"name": name},
                            headers=jwt(token), timeout=2)
                body = r.json() or {}
                if r.status == 201 and body.get("name") == name and "id" in body:
                    return ("ack", str(body["id"]), name)
                return ("refused", r.status)

            def upload(i, cycle=cycle):
                content = pdf_bytes(4000 + i % 5000, f"kc-{cycle}-{i}")
                body, headers = multipart("file", f"kc-{cycle}-{i}.pdf", content)
                headers.update(bearer(token))
                r = request(server.port, "POST", f"/api/v1/profiles/{profile}/documents/documents",
                            body, headers=headers, timeout=2)
                doc = r.json() or {}
                if r.status == 201 and doc.get("checksum") == md5_b64(content):
                    return ("ack", doc["checksum"])
                return ("refused", r.status)

            writers = Load(write, threads=8).start()
            uploader = Load(upload, threads=1).start()
            time.sleep(random.uniform(0.3, 1.5))
            server.kill(signal.SIGKILL)
            server.wait_exit()
            results = writers.stop() + uploader.stop()
            writes = [o for _, _, o in writers.results]
            uploads = [o for _, _, o in uploader.results]

            acked = {(o[1], o[2]) for o in writes if o[0] == "ack"}
            # Sent without a complete answer (a refused connection sent nothing).
            uncertain = sum(1 for o in writes
                            if o[0] == "error" and o[1] != "ConnectionRefusedError")
            refused_5xx = sum(1 for _, _, o in results if o[0] == "refused" and o[1] >= 500)
            rows = store.departments(prefix)
            names = [n for _, n in rows]
            lost = len(acked - set(rows))
            dup = len(names) - len(set(names))
            in_range = len(acked) <= len(rows) <= len(acked) + uncertain
            integrity, fk = store.integrity()
            bad_files, orphans, checksums = store.files()
            upload_acks = {o[1] for o in uploads if o[0] == "ack"}
            uploads_lost = len(upload_acks - checksums)

            totals["acked"] += len(acked)
            totals["uncertain"] += uncertain
            totals["lost"] += lost + (0 if in_range else 1)
            totals["dup"] += dup
            totals["refused_5xx"] += refused_5xx
            totals["uploads_acked"] += len(upload_acks)
            totals["uploads_lost"] += uploads_lost
            totals["bad_files"] += bad_files
            totals["orphans"] = orphans
            totals["integrity_fail"] += int(integrity != "ok" or fk != 0)
            cycles += 1
            if lost or dup or uploads_lost or bad_files or integrity != "ok" or fk or not in_range:
                report.note(f"cycle {cycle}: acked {len(acked)}, rows {len(rows)}, uncertain "
                            f"{uncertain}, lost {lost}, dup {dup}, uploads lost {uploads_lost}, "
                            f"bad files {bad_files}, integrity {integrity}, fk {fk}")
                break  # stop at the first loss
        ready_ms.append(server.start())
        report.check("cycles", cycles, CYCLES, cycles == CYCLES)
        report.info("acked", totals["acked"])
        report.info("uncertain", totals["uncertain"])
        report.check("lost", totals["lost"], 0, totals["lost"] == 0)
        report.check("dup", totals["dup"], 0, totals["dup"] == 0)
        report.check("answers_5xx", totals["refused_5xx"], 0, totals["refused_5xx"] == 0)
        report.info("uploads_acked", totals["uploads_acked"])
        report.check("uploads_lost", totals["uploads_lost"], 0, totals["uploads_lost"] == 0)
        report.check("rows_to_missing_or_changed_file", totals["bad_files"], 0, totals["bad_files"] == 0)
        report.info("orphan_files", totals["orphans"])
        report.check("integrity_fail", totals["integrity_fail"], 0, totals["integrity_fail"] == 0)
        report.check("max_ready_ms", round(max(ready_ms)), 5000, max(ready_ms) <= 5000)
        report.check("acked_nonzero", totals["acked"] > 0 and totals["uploads_acked"] > 0, True,
                     totals["acked"] > 0 and totals["uploads_acked"] > 0)
        server.stop()

        # Killed while starting (migrating a fresh database): the next start works.
        fresh_url = pg.fresh_database("roster_killstart") if pg else None
        starting = Server(database_url=fresh_url, env=env)
        try:
            kills = 0
            for _ in range(5):
                starting.start(wait=False)
                time.sleep(random.uniform(0.0, 0.15))
                starting.kill(signal.SIGKILL)
                starting.wait_exit()
                kills += 1
            ready = starting.start()
            starting.stop()
            integrity, fk = Store(starting, pg, "roster_killstart").integrity()
            report.info("startup_kills", kills)
            report.check("ready_after_startup_kills_ms", round(ready), 5000, ready <= 5000)
            report.check("startup_integrity", integrity, "ok", integrity == "ok" and fk == 0)
        finally:
            starting.cleanup()
    finally:
        server.cleanup()
    return report.finish()

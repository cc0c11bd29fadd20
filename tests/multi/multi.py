"""Several Roster instances behind a load balancer (issue #10, docs/deployment.md).

Three `roster serve` instances on loopback ports share one PostgreSQL (a
throwaway cluster), one S3-compatible store (moto's server mode) and one
SMTP server (aiosmtpd), with nginx in front. Checked, each printed as a
figure and written to target/reliability/multi-instance.json:

- the three start at once on an empty database: each migration applied once;
- sign up and activate through nginx; a token from one instance works on the
  others;
- a document uploaded through one instance downloads through another (the
  bytes are in the bucket, not on an instance);
- refresh-token rotation, reuse detection and logout are seen by all;
- a per-account login limit holds across instances (counted in the database);
- the outbox: thirty messages, three competing workers, each delivered once;
- one instance killed under write load: nginx routes around it, clients see
  at most the requests that instance had in flight fail, no acknowledged
  write is lost;
- throughput through nginx with one instance and with three.
"""

import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "fault"))

from faultlib import (VENV_PYTHON, Inbox, Load, PASSWORD, PgCluster, Report, Server, bearer,  # noqa: E402
                      first_profile_id, free_port, jwt, multipart, pdf_bytes, request)

SECRET = "multi-instance-secret-key-0123456789abcdef0123456789"


NGINX = """
worker_processes 1;
daemon off;
pid {dir}/nginx.pid;
error_log {dir}/error.log warn;
events {{ worker_connections 2048; }}
http {{
    access_log off;
    client_body_temp_path {dir}/body;
    proxy_temp_path {dir}/proxy;
    fastcgi_temp_path {dir}/fastcgi;
    uwsgi_temp_path {dir}/uwsgi;
    scgi_temp_path {dir}/scgi;
    client_max_body_size 20m;
    upstream roster {{
{servers}
        keepalive 64;
    }}
    server {{
        listen 127.0.0.1:{port};
        location / {{
            proxy_pass http://roster;
            proxy_http_version 1.1;
            proxy_set_header Connection "";
            proxy_set_header Host $host;
            proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;
            # A dead instance refuses the connection: the request was never
            # sent, so nginx tries the next one (also for POST).
            proxy_next_upstream error timeout;
            proxy_connect_timeout 1s;
        }}
    }}
}}
"""


class Nginx:
    def __init__(self, backends):
        self.dir = tempfile.mkdtemp(prefix="roster-nginx-")
        self.port = free_port()
        servers = "\n".join(f"        server 127.0.0.1:{p} max_fails=1 fail_timeout=10s;" for p in backends)
        with open(os.path.join(self.dir, "nginx.conf"), "w") as f:
            f.write(NGINX.format(dir=self.dir, port=self.port, servers=servers))
        self.proc = subprocess.Popen(["nginx", "-p", self.dir, "-c", os.path.join(self.dir, "nginx.conf")],
                                     stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            try:
                request(self.port, "GET", "/healthz", timeout=1)
                return
            except OSError:
                time.sleep(0.05)
        raise RuntimeError("nginx did not start: " + open(os.path.join(self.dir, "error.log")).read())

    def stop(self):
        self.proc.terminate()
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
        shutil.rmtree(self.dir, ignore_errors=True)


class Moto:
    def __init__(self):
        self.port = free_port()
        self.proc = subprocess.Popen([VENV_PYTHON, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(self.port)],
                                     stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                if request(self.port, "PUT", "/roster-files", timeout=2).status == 200:
                    return
            except OSError:
                pass
            time.sleep(0.1)
        raise RuntimeError("moto did not start")

    def keys(self):
        body = request(self.port, "GET", "/roster-files?list-type=2").body.decode()
        return body.count("<Key>")

    def stop(self):
        self.proc.kill()
        self.proc.wait()


def link(body, marker):
    rest = body[body.index(marker) + len(marker):].split()[0]
    uid, token = rest.split("/", 1)
    return uid, token.rstrip("/")


def wrk_rps(port, token, seconds=5):
    """Requests a second of an authenticated list through nginx (wrk)."""
    out = subprocess.run(["wrk", "-t2", "-c32", f"-d{seconds}s", "-H", f"Authorization: JWT {token}",
                          f"http://127.0.0.1:{port}/api/departments/"],
                         stdout=subprocess.PIPE, stderr=subprocess.STDOUT, timeout=seconds + 30)
    text = out.stdout.decode()
    rps = next((float(line.split()[1]) for line in text.splitlines() if line.startswith("Requests/sec")), 0.0)
    non2xx = next((int(line.split()[-1]) for line in text.splitlines() if "Non-2xx" in line), 0)
    return rps, non2xx


def run():
    report = Report("multi-instance", stage="multi")
    pg = PgCluster()
    moto = Moto()
    inbox = Inbox()
    url = pg.fresh_database("roster_multi")
    env = {
        "ROSTER_SECRET_KEY": SECRET,
        "S3_BUCKET": "roster-files",
        "S3_ENDPOINT": f"http://127.0.0.1:{moto.port}",
        "S3_ACCESS_KEY_ID": "testing",
        "S3_SECRET_ACCESS_KEY": "testing",
        "SMTP_URL": f"smtp://127.0.0.1:{inbox.port}",
        "ROSTER_OUTBOX_POLL_SECONDS": "1",
        "ROSTER_ROTATE_REFRESH_TOKENS": "true",
        "ROSTER_TRUSTED_PROXIES": "127.0.0.1",
        "ROSTER_LOGIN_RATE_PER_MINUTE": "100000",
        "ROSTER_LOGIN_FAILURES_PER_ACCOUNT": "5",
    }
    instances = [Server(database_url=url, env=env) for _ in range(3)]
    nginx = None
    try:
        # Three instances start at once on an empty database.
        for s in instances:
            s.start(wait=False)
        ready_ms = [s.wait_ready(limit=30) for s in instances]
        applied = pg.psql("SELECT count(*) || ' ' || count(DISTINCT version) || ' ' || "
                          "bool_and(success) FROM _sqlx_migrations", "roster_multi").split()
        report.check("concurrent_start_ready", len(ready_ms), 3, len(ready_ms) == 3)
        report.check("migrations_applied_once", f"{applied[0]} rows, {applied[1]} versions",
                     "as many rows as versions", applied[0] == applied[1] and applied[2] in ("t", "true"))
        instances[0].command("seed-demo", "--password", PASSWORD)
        nginx = Nginx([s.port for s in instances])
        front = nginx.port
        a, b, c = (s.port for s in instances)

        # Sign up and activate through nginx; log in on A, use the token on B and C.
        r = request(front, "POST", "/api/auth/users/",
                    {"email": "multi@example.org", "password": "Multi-Pass-2024!", "re_password": "Multi-Pass-2024!",
                     "first_name": "Mul", "last_name": "Ti", "role": "Admin", "company_name": "Multi Ltd"})
        report.check("signup_via_nginx", r.status, 201, r.status == 201)
        mails = inbox.wait_for("multi@example.org")
        uid, token = link(mails[0], "/activate/") if mails else ("", "")
        r = request(front, "POST", "/api/auth/users/activation/", {"uid": uid, "token": token})
        report.check("activation_via_nginx", r.status, 204, r.status == 204)
        r = request(a, "POST", "/api/auth/jwt/create/", {"email": "multi@example.org", "password": "Multi-Pass-2024!"})
        tokens = r.json() or {}
        seen = [request(p, "GET", "/api/auth/users/me/", headers=jwt(tokens.get("access", ""))).status for p in (b, c)]
        report.check("token_from_a_on_b_and_c", seen, [200, 200], seen == [200, 200])

        # Upload through A, read through B, download through C.
        admin = instances[0].login()
        profile = first_profile_id(a, admin)
        content = pdf_bytes(50_000, "multi")
        body, headers = multipart("file", "multi.pdf", content)
        headers.update(bearer(admin))
        r = request(a, "POST", f"/api/v1/profiles/{profile}/documents/documents", body, headers)
        report.check("upload_on_a", r.status, 201, r.status == 201)
        p = request(b, "GET", f"/api/v1/profiles/{profile}", headers=bearer(admin)).json() or {}
        docs = p.get("profile", {}).get("documents") or []
        link_url = docs[-1]["url"] if docs else ""
        path = link_url[link_url.index("/files/"):] if "/files/" in link_url else "/files/missing"
        d = request(c, "GET", path)
        report.check("download_on_c_same_bytes", d.status == 200 and d.body == content, True,
                     d.status == 200 and d.body == content)
        report.check("objects_in_bucket", moto.keys(), ">= 1", moto.keys() >= 1)

        # Refresh rotation, reuse detection and logout across instances.
        r1 = tokens.get("refresh", "")
        r = request(b, "POST", "/api/auth/jwt/refresh/", {"refresh": r1})
        r2 = (r.json() or {}).get("refresh", "")
        reuse = request(c, "POST", "/api/auth/jwt/refresh/", {"refresh": r1}).status
        after_reuse = request(a, "POST", "/api/auth/jwt/refresh/", {"refresh": r2}).status
        report.check("rotation_on_b", r.status, 200, r.status == 200 and bool(r2))
        report.check("reused_refresh_on_c", reuse, 401, reuse == 401)
        report.check("chain_ended_on_a", after_reuse, 401, after_reuse == 401)
        fresh = request(a, "POST", "/api/auth/jwt/create/",
                        {"email": "multi@example.org", "password": "Multi-Pass-2024!"}).json() or {}
        out = request(a, "POST", "/api/auth/jwt/blacklist/", {"refresh": fresh.get("refresh", "")}).status
        after_logout = request(b, "POST", "/api/auth/jwt/refresh/", {"refresh": fresh.get("refresh", "")}).status
        report.check("logout_on_a_seen_on_b", [out, after_logout], [200, 401], [out, after_logout] == [200, 401])

        # Five failed logins for one account, spread over the instances: the
        # sixth is refused on any of them (windows of 15 minutes; skip a
        # window's last seconds).
        while (time.time() % 900) > 890:
            time.sleep(1)
        attempts = [request(p, "POST", "/api/auth/jwt/create/",
                            {"email": "multi@example.org", "password": "wrong-password-1"}).status
                    for p in (a, b, c, a, b)]
        sixth = [request(p, "POST", "/api/auth/jwt/create/",
                         {"email": "multi@example.org", "password": "wrong-password-1"}).status for p in (c, a)]
        report.check("account_limit_across_instances", attempts + sixth, "5 x 401, then 429 on C and A",
                     attempts == [401] * 5 and sixth == [429, 429])

        # The outbox: thirty sign-ups spread over the instances, three workers.
        for i in range(30):
            port = (a, b, c)[i % 3]
            request(port, "POST", "/api/auth/users/",
                    {"email": f"burst{i}@example.org", "password": "Burst-Pass-2024!", "re_password": "Burst-Pass-2024!",
                     "first_name": "Bu", "last_name": "Rst", "role": "Coach"})
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            got = [t for t, _ in inbox.messages() if t and t.startswith("burst")]
            if len(got) >= 30:
                break
            time.sleep(0.3)
        time.sleep(3)  # a message sent twice would arrive by now
        got = [t for t, _ in inbox.messages() if t and t.startswith("burst")]
        report.check("outbox_delivered", len(set(got)), 30, len(set(got)) == 30)
        report.check("outbox_sent_twice", len(got) - len(set(got)), 0, len(got) == len(set(got)))

        # One instance killed under write load through nginx.
        def write(i):
            name = f"lb-{i}"
            r = request(front, "POST", "/api/departments/", {"name": name}, headers=jwt(admin), timeout=5)
            return ("ack", name) if r.status == 201 else ("status", r.status)
        load = Load(write, threads=8).start()
        time.sleep(1.5)
        instances[1].kill(signal.SIGKILL)
        instances[1].wait_exit()
        time.sleep(2.5)
        results = load.stop()
        acked = {o[1] for _, _, o in results if o[0] == "ack"}
        failed = [o for _, _, o in results if o[0] != "ack"]
        rows = set(pg.psql("SELECT name FROM departments WHERE name LIKE 'lb-%'", "roster_multi").splitlines())
        lost = len(acked - rows)
        report.info("writes_acked", len(acked))
        report.check("writes_failed_at_kill", len(failed), "<= 8 (the clients' in-flight requests)", len(failed) <= 8)
        if failed:
            report.note(f"failures when B was killed: {failed}")
        report.check("acked_writes_lost", lost, 0, lost == 0 and len(acked) > 0)
        after = [request(front, "GET", "/api/departments/", headers=jwt(admin)).status for _ in range(10)]
        report.check("served_after_kill", after.count(200), 10, after.count(200) == 10)
        instances[1].start()

        # Throughput through nginx: one instance, then three.
        if shutil.which("wrk"):
            nginx.stop()
            nginx = Nginx([a])
            one, bad1 = wrk_rps(nginx.port, admin)
            nginx.stop()
            nginx = Nginx([a, b, c])
            three, bad3 = wrk_rps(nginx.port, admin)
            direct, _ = wrk_rps(a, admin)
            report.info("rps_direct_1_instance", round(direct))
            report.info("rps_nginx_1_instance", round(one))
            report.info("rps_nginx_3_instances", round(three))
            report.check("throughput_non_2xx", bad1 + bad3, 0, bad1 + bad3 == 0 and one > 0 and three > 0)
        else:
            report.note("wrk is not installed: throughput not measured")
    finally:
        if nginx:
            nginx.stop()
        for s in instances:
            s.cleanup()
        inbox.stop()
        moto.stop()
        pg.destroy()
    return report.finish()


if __name__ == "__main__":
    sys.exit(0 if run() else 1)

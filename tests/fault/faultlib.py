"""What every fault scenario needs: the release binary started and stopped
on loopback, plain HTTP (the standard library only, so the stage needs
nothing installed), a throwaway PostgreSQL cluster it may stop and crash,
and the JSON figures each scenario reports.

Every loop here is bounded in time or count; every server and cluster is
stopped when its scenario ends, also when it fails.
"""

import base64
import email
import glob
import hashlib
import http.client
import json
import os
import random
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import uuid

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
BIN = os.environ.get("BIN", os.path.join(ROOT, "target", "release", "roster"))
RESULTS = os.path.join(ROOT, "target", "reliability")
PASSWORD = "Demo-Pass-2024!"
# The venv scripts/test makes, with aiosmtpd and moto.
VENV_PYTHON = os.path.join(ROOT, ".venv", "bin", "python")
ADMIN = "admin@demo.example"


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def percentile(values, p):
    if not values:
        return 0.0
    values = sorted(values)
    k = min(len(values) - 1, max(0, int(round(p / 100.0 * (len(values) - 1)))))
    return values[k]


# --- HTTP ---------------------------------------------------------------------

class Reply:
    def __init__(self, status, headers, body):
        self.status = status
        self.headers = headers
        self.body = body

    def json(self):
        try:
            return json.loads(self.body)
        except ValueError:
            return None


def request(port, method, path, body=None, headers=None, timeout=10.0):
    """One request on a new connection. Raises OSError (and subclasses such
    as timeouts and resets) when no complete response arrives."""
    headers = dict(headers or {})
    if isinstance(body, (dict, list)):
        body = json.dumps(body).encode()
        headers.setdefault("Content-Type", "application/json")
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        conn.request(method, path, body=body, headers=headers)
        resp = conn.getresponse()
        data = resp.read()
        return Reply(resp.status, {k.lower(): v for k, v in resp.getheaders()}, data)
    except http.client.HTTPException as e:
        raise OSError(str(e)) from e
    finally:
        conn.close()


def multipart(field, filename, content, content_type="application/pdf"):
    boundary = "----roster-fault-" + uuid.uuid4().hex
    body = (
        f"--{boundary}\r\nContent-Disposition: form-data; name=\"{field}\"; "
        f"filename=\"{filename}\"\r\nContent-Type: {content_type}\r\n\r\n"
    ).encode() + content + f"\r\n--{boundary}--\r\n".encode()
    return body, {"Content-Type": f"multipart/form-data; boundary={boundary}"}


def pdf_bytes(size, tag):
    """A small PDF (by its magic bytes) unique to `tag`."""
    head = b"%PDF-1.4\n% " + tag.encode() + b"\n"
    pad = (hashlib.sha256(tag.encode()).hexdigest().encode() * (size // 64 + 1))[: max(0, size - len(head) - 6)]
    return head + pad + b"\n%%EOF"


def md5_b64(data):
    return base64.b64encode(hashlib.md5(data).digest()).decode()


# --- the server -----------------------------------------------------------------

class Server:
    """`roster serve` on a loopback port over `data_dir` (and `database_url`
    when given), with `env` on top of settings fit for fault tests."""

    def __init__(self, data_dir=None, database_url=None, env=None, port=None):
        self.data_dir = data_dir or tempfile.mkdtemp(prefix="roster-fault-")
        self.port = port or free_port()
        self.proc = None
        self.env = dict(os.environ)
        self.env.update({
            "ROSTER_DATA_DIR": self.data_dir,
            "ROSTER_LISTEN": f"127.0.0.1:{self.port}",
            "ROSTER_PUBLIC_URL": f"http://127.0.0.1:{self.port}",
            "ROSTER_LOG": "warn",
            "ROSTER_LOG_FORMAT": "text",
            "ROSTER_ACCESS_TOKEN_LIFETIME": "7200",
            "ROSTER_LOGIN_RATE_PER_MINUTE": "100000",
            "ROSTER_LOGIN_FAILURES_PER_ACCOUNT": "100000",
        })
        self.env.pop("DATABASE_URL", None)
        if database_url:
            self.env["DATABASE_URL"] = database_url
        self.env.update(env or {})
        self.log_path = os.path.join(self.data_dir, "server.log")

    def command(self, *args, check=True):
        return subprocess.run([BIN, *args], env=self.env, check=check,
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=120)

    def seed(self, members=None):
        extra = ["--members", str(members)] if members else []
        self.command("seed-demo", "--password", PASSWORD, *extra)

    def start(self, wait=True):
        log = open(self.log_path, "ab")
        self.proc = subprocess.Popen([BIN, "serve"], env=self.env, stdout=log, stderr=log)
        log.close()
        if wait:
            return self.wait_ready()
        return None

    def wait_ready(self, limit=10.0):
        """Polls /readyz every 50 ms; returns the milliseconds it took."""
        started = time.monotonic()
        while time.monotonic() - started < limit:
            if self.proc.poll() is not None:
                raise RuntimeError(f"server exited with {self.proc.returncode}: {self.tail()}")
            try:
                if request(self.port, "GET", "/readyz", timeout=1).status == 200:
                    return (time.monotonic() - started) * 1000
            except OSError:
                pass
            time.sleep(0.05)
        raise RuntimeError(f"server not ready within {limit} s: {self.tail()}")

    def kill(self, sig=signal.SIGKILL):
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(sig)

    def wait_exit(self, limit=30.0):
        try:
            return self.proc.wait(timeout=limit)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
            return None

    def stop(self):
        if self.proc and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()

    def tail(self, lines=20):
        try:
            with open(self.log_path, errors="replace") as f:
                return "".join(f.readlines()[-lines:])
        except OSError:
            return ""

    def log_text(self):
        try:
            with open(self.log_path, errors="replace") as f:
                return f.read()
        except OSError:
            return ""

    def rss_kib(self):
        try:
            with open(f"/proc/{self.proc.pid}/status") as f:
                for line in f:
                    if line.startswith("VmRSS:"):
                        return int(line.split()[1])
        except OSError:
            pass
        return 0

    def open_fds(self):
        try:
            return len(os.listdir(f"/proc/{self.proc.pid}/fd"))
        except OSError:
            return -1

    def metric(self, name):
        reply = request(self.port, "GET", "/metrics")
        for line in reply.body.decode().splitlines():
            if line.startswith(name + " "):
                return float(line.split()[1])
        return None

    def login(self, email=ADMIN, password=PASSWORD):
        reply = request(self.port, "POST", "/api/auth/jwt/create/",
                        {"email": email, "password": password})
        if reply.status != 200:
            raise RuntimeError(f"login failed: {reply.status} {reply.body[:200]!r}")
        return reply.json()["access"]

    def cleanup(self):
        self.stop()
        shutil.rmtree(self.data_dir, ignore_errors=True)


def jwt(token):
    return {"Authorization": f"JWT {token}"}


def bearer(token):
    return {"Authorization": f"Bearer {token}"}


def first_profile_id(port, token):
    reply = request(port, "GET", "/api/v1/profiles?per_page=1", headers=bearer(token))
    return reply.json()["profiles"][0]["id"]


# --- an SMTP server -------------------------------------------------------------

SINK = """
import os, sys, time, uuid
from aiosmtpd.controller import Controller

class Save:
    async def handle_DATA(self, server, session, envelope):
        name = os.path.join(sys.argv[2], uuid.uuid4().hex + ".eml")
        with open(name + ".tmp", "wb") as f:
            f.write(envelope.content)
        os.rename(name + ".tmp", name)
        return "250 OK"

c = Controller(Save(), hostname="127.0.0.1", port=int(sys.argv[1]))
c.start()
print("ready", flush=True)
time.sleep(float(sys.argv[3]))
c.stop()
"""


class Inbox:
    """An SMTP server writing each message to a folder."""

    def __init__(self, port=None):
        self.dir = tempfile.mkdtemp(prefix="roster-inbox-")
        self.port = port or free_port()
        self.proc = subprocess.Popen([VENV_PYTHON, "-c", SINK, str(self.port), self.dir, "600"],
                                     stdout=subprocess.PIPE)
        assert self.proc.stdout.readline().strip() == b"ready"

    def messages(self):
        out = []
        for name in sorted(os.listdir(self.dir)):
            if name.endswith(".eml"):
                with open(os.path.join(self.dir, name), "rb") as f:
                    msg = email.message_from_bytes(f.read())
                body = msg.get_payload(decode=True) if not msg.is_multipart() else \
                    msg.get_payload(0).get_payload(decode=True)
                out.append((msg["To"], (body or b"").decode(errors="replace")))
        return out

    def wait_for(self, to, count=1, limit=30):
        deadline = time.monotonic() + limit
        while time.monotonic() < deadline:
            got = [b for t, b in self.messages() if t and to in t]
            if len(got) >= count:
                return got
            time.sleep(0.2)
        return [b for t, b in self.messages() if t and to in t]

    def stop(self):
        self.proc.kill()
        self.proc.wait()
        shutil.rmtree(self.dir, ignore_errors=True)


# --- PostgreSQL -------------------------------------------------------------------

class PgCluster:
    """A throwaway PostgreSQL cluster on a loopback port, trust auth, that
    scenarios may stop, crash and start (never the machine's own server)."""

    def __init__(self):
        bins = sorted(glob.glob("/usr/lib/postgresql/*/bin"),
                      key=lambda p: int(p.split("/")[-2]))
        if not bins:
            raise RuntimeError("PostgreSQL is not installed (/usr/lib/postgresql/*/bin)")
        self.bindir = bins[-1]
        self.dir = tempfile.mkdtemp(prefix="roster-fault-pg-")
        os.chmod(self.dir, 0o777)
        self.port = free_port()
        self._as_pg(f"{self.bindir}/initdb -D {self.dir}/data --auth=trust -U postgres")
        self.start()

    def _as_pg(self, command):
        if os.getuid() == 0:
            args = ["su", "postgres", "-s", "/bin/bash", "-c", command]
        else:
            args = ["bash", "-c", command]
        return subprocess.run(args, check=True, stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, timeout=120)

    def start(self):
        opts = f"-p {self.port} -k {self.dir} -c listen_addresses=127.0.0.1 -c max_connections=200"
        self._as_pg(f"{self.bindir}/pg_ctl -D {self.dir}/data -l {self.dir}/log -o '{opts}' -w start")

    def stop(self, mode="fast"):
        self._as_pg(f"{self.bindir}/pg_ctl -D {self.dir}/data -m {mode} -w stop")

    def url(self, db="postgres"):
        return f"postgres://postgres@127.0.0.1:{self.port}/{db}"

    def psql(self, sql, db="postgres"):
        out = subprocess.run(["psql", self.url(db), "-AtqX", "-c", sql], check=True,
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=60)
        return out.stdout.decode().strip()

    def fresh_database(self, name):
        self.psql(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
        self.psql(f"CREATE DATABASE {name}")
        return self.url(name)

    def destroy(self):
        try:
            self.stop("immediate")
        except Exception:
            pass
        shutil.rmtree(self.dir, ignore_errors=True)


# --- figures ------------------------------------------------------------------------

class Report:
    """The figures of one scenario: each metric with its target and whether
    it was met. Written to target/reliability/<name>.json and printed."""

    def __init__(self, name, stage="fault"):
        self.name = name
        self.stage = stage
        self.metrics = {}
        self.notes = []
        self.started = time.monotonic()

    def check(self, metric, value, target, ok):
        self.metrics[metric] = {"value": value, "target": target, "pass": bool(ok)}

    def info(self, metric, value):
        self.metrics[metric] = {"value": value}

    def note(self, text):
        self.notes.append(text)

    @property
    def passed(self):
        return all(m.get("pass", True) for m in self.metrics.values())

    def finish(self):
        os.makedirs(RESULTS, exist_ok=True)
        doc = {"scenario": self.name, "pass": self.passed,
               "seconds": round(time.monotonic() - self.started, 1),
               "metrics": self.metrics, "notes": self.notes}
        with open(os.path.join(RESULTS, f"{self.name}.json"), "w") as f:
            json.dump(doc, f, indent=2)
        failed = [k for k, m in self.metrics.items() if not m.get("pass", True)]
        figures = ", ".join(
            f"{k}={m['value']}" + ("" if m.get("pass", True) else " (MISS: target " + str(m["target"]) + ")")
            for k, m in self.metrics.items())
        verdict = "pass" if not failed else "FAIL"
        print(f"{self.stage} {self.name}: {verdict} ({doc['seconds']} s): {figures}", flush=True)
        for n in self.notes:
            print(f"  note: {n}", flush=True)
        return self.passed


class Load:
    """Threads calling `fn(i)` until stopped (or `limit` seconds pass), each
    call's (start, seconds, outcome) kept. `rate` spaces the calls of all
    threads together to that many a second."""

    def __init__(self, fn, threads=4, rate=None, limit=120):
        self.fn = fn
        self.threads = threads
        self.rate = rate
        self.limit = limit
        self.results = []
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._workers = []

    def _run(self, n):
        i = 0
        interval = (self.threads / self.rate) if self.rate else 0
        next_at = time.monotonic() + (interval * n / self.threads if interval else 0)
        ends = time.monotonic() + self.limit
        while not self._stop.is_set() and time.monotonic() < ends:
            if interval:
                delay = next_at - time.monotonic()
                if delay > 0:
                    self._stop.wait(delay)
                    if self._stop.is_set():
                        break
                next_at += interval
            started = time.monotonic()
            try:
                outcome = self.fn(n * 1_000_000 + i)
            except OSError as e:
                outcome = ("error", type(e).__name__)
            with self._lock:
                self.results.append((started, time.monotonic() - started, outcome))
            i += 1

    def start(self):
        for n in range(self.threads):
            t = threading.Thread(target=self._run, args=(n,), daemon=True)
            t.start()
            self._workers.append(t)
        return self

    def wait(self):
        """Lets the threads run out their `limit`, then returns the results."""
        for t in self._workers:
            t.join(timeout=self.limit + 30)
        return self.results

    def stop(self):
        self._stop.set()
        for t in self._workers:
            t.join(timeout=30)
        return self.results


def run_scenarios(scenarios, names):
    """Runs the scenarios named (all when none), each isolated: a scenario
    that raises is a failure with its error printed, and the rest still run."""
    ok = True
    for name in names or list(scenarios):
        if name not in scenarios:
            print(f"fault: unknown scenario {name!r}; known: {', '.join(scenarios)}")
            return False
        try:
            ok = scenarios[name]() and ok
        except Exception as e:  # a scenario that cannot run is a failure
            import traceback
            traceback.print_exc()
            print(f"fault {name}: FAIL (could not run: {e})", flush=True)
            ok = False
    return ok


random.seed(int(os.environ.get("FAULT_SEED", "42")))
sys.stdout.reconfigure(line_buffering=True)

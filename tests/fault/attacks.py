"""Hostile clients (reliability.md sections 6 and 7, goals G15-G18):
slowloris (slow headers and slow bodies), a login flood with spoofed
X-Forwarded-For, oversize and deeply nested inputs, and upload bombs.
"""

import io
import json
import multiprocessing
import os
import random
import socket
import struct
import threading
import time
import zipfile
import zlib

from faultlib import (Load, Report, Server, bearer, first_profile_id, jwt, multipart,
                      pdf_bytes, percentile, request)


def measure_gets(server, token, rate, seconds):
    """GET /api/departments/ at `rate` a second for `seconds`: latencies (s)
    and the count of answers that were not 200."""
    load = Load(lambda i: ("status", request(server.port, "GET", "/api/departments/",
                                             headers=jwt(token), timeout=10).status),
                threads=4, rate=rate, limit=seconds).start()
    results = load.wait()
    bad = sum(1 for _, _, o in results if o[0] != "status" or o[1] != 200)
    return [d for _, d, _ in results], bad


def latency_target(baseline_p99):
    """The p99 bound under attack: twice the baseline. On this 2-core box
    the load generator shares the cores with the server, so a baseline of
    a millisecond or two is within scheduling noise; the bound is never
    below 10 ms (recorded in docs/fault-tolerance.md)."""
    return max(2 * baseline_p99, 10.0)


# --- slowloris ------------------------------------------------------------------

def hold_slow(port, count, head, drip, interval, limit):
    """Opens `count` connections, sends `head`, then `drip` on each every
    `interval` seconds until the server closes it or `limit` passes.
    Returns the seconds each connection lived (None: still open)."""
    socks, opened = [], []
    for _ in range(count):
        try:
            s = socket.create_connection(("127.0.0.1", port), timeout=5)
            s.sendall(head)
            s.setblocking(False)
            socks.append(s)
            opened.append(time.monotonic())
        except OSError:
            pass
    closed = [None] * len(socks)
    ends = time.monotonic() + limit
    while time.monotonic() < ends and any(c is None for c in closed):
        for i, s in enumerate(socks):
            if closed[i] is not None:
                continue
            try:
                data = s.recv(4096)
                if data == b"" or data.startswith(b"HTTP/1.1 4"):
                    closed[i] = time.monotonic() - opened[i]
                    continue
            except BlockingIOError:
                pass
            except OSError:
                closed[i] = time.monotonic() - opened[i]
                continue
            try:
                s.send(drip)
            except BlockingIOError:
                pass
            except OSError:
                closed[i] = time.monotonic() - opened[i]
        time.sleep(interval)
    for s in socks:
        s.close()
    return closed


def slowloris():
    report = Report("slowloris")
    header_timeout, idle = 10, 10
    server = Server(env={"ROSTER_HEADER_READ_TIMEOUT": str(header_timeout),
                         "ROSTER_BODY_IDLE_TIMEOUT": str(idle)})
    try:
        server.seed()
        server.start()
        token = server.login()
        base_lat, _ = measure_gets(server, token, 50, 5)
        base_p99 = percentile(base_lat, 99) * 1000
        fds_before = server.open_fds()

        for kind, count, head, drip in [
            ("headers", 500, b"GET /healthz HTTP/1.1\r\nHost: x\r\n", b"X-a: b\r\n"),
            ("body", 200, b"POST /api/auth/jwt/create/ HTTP/1.1\r\nHost: x\r\n"
                          b"Content-Type: application/json\r\nContent-Length: 100000\r\n\r\n", b" "),
        ]:
            lived = {}
            attack = threading.Thread(target=lambda: lived.update(
                v=hold_slow(server.port, count, head, drip, 1.0, header_timeout + 8)), daemon=True)
            attack.start()
            time.sleep(1)
            fds_peak = server.open_fds()
            lat, bad = measure_gets(server, token, 50, header_timeout)
            attack.join()
            closed = [t for t in lived["v"] if t is not None]
            still_open = len(lived["v"]) - len(closed)
            longest = max(closed, default=0)
            p99 = percentile(lat, 99) * 1000
            time.sleep(1)
            fds_after = server.open_fds()
            report.info(f"{kind}_connections", len(lived["v"]))
            report.check(f"{kind}_still_open", still_open, 0, still_open == 0 and len(lived["v"]) > 0)
            report.check(f"{kind}_longest_lived_s", round(longest, 1), f"<= {header_timeout + 2}",
                         longest <= header_timeout + 2)
            report.info(f"{kind}_fds_peak", fds_peak)
            report.check(f"{kind}_fds_after", fds_after, f"<= {fds_before + 5}", fds_after <= fds_before + 5)
            report.info("baseline_get_p99_ms", round(base_p99, 2))
            report.check(f"{kind}_get_p99_ms", round(p99, 2), f"<= {latency_target(base_p99):.1f}",
                         p99 <= latency_target(base_p99))
            report.check(f"{kind}_get_failures", bad, 0, bad == 0)
    finally:
        server.cleanup()
    return report.finish()


# --- login flood --------------------------------------------------------------------

FLOOD_RATE = 275  # logins a second: 2,200 in 8 s


def _flood(port, out):
    """2,000 wrong-password logins from one address and 200 claiming 20
    other addresses in X-Forwarded-For, at FLOOD_RATE a second (a steady
    attacker; an unpaced Python client would mostly measure itself, taking
    a whole core of the two); puts the status counts in `out`."""
    counts = {}
    lock = threading.Lock()

    def one(i):
        headers = {}
        if i >= 2000:
            headers["X-Forwarded-For"] = f"203.0.113.{i % 20 + 1}"
        try:
            r = request(port, "POST", "/api/auth/jwt/create/",
                        {"email": f"flood{i % 50}@demo.example", "password": "wrong-password-1"},
                        headers=headers, timeout=30)
            key = r.status
        except OSError as e:
            key = type(e).__name__
        with lock:
            counts[key] = counts.get(key, 0) + 1

    queue = list(range(2200))
    random.shuffle(queue)
    qlock = threading.Lock()
    started = time.monotonic()
    sent = [0]

    def worker():
        while True:
            with qlock:
                if not queue:
                    return
                i = queue.pop()
                due = started + sent[0] / FLOOD_RATE
                sent[0] += 1
            delay = due - time.monotonic()
            if delay > 0:
                time.sleep(delay)
            one(i)

    threads = [threading.Thread(target=worker) for _ in range(16)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    out.update({str(k): v for k, v in counts.items()})


def login_flood():
    report = Report("login-flood")
    env = {"ROSTER_LOGIN_RATE_PER_MINUTE": "30", "ROSTER_LOGIN_FAILURES_PER_ACCOUNT": "10",
           "ROSTER_PASSWORD_HASH_CONCURRENCY": "2"}
    server = Server(env=env)
    try:
        server.seed()
        server.start()
        token = server.login()
        base_lat, _ = measure_gets(server, token, 100, 8)
        base_p99 = percentile(base_lat, 99) * 1000
        rss_before = server.rss_kib()
        hashes_before = server.metric("roster_password_hashes_total")

        manager = multiprocessing.Manager()
        counts = manager.dict()
        flood = multiprocessing.Process(target=_flood, args=(server.port, counts))
        # The limit counts per clock minute: start the 8 s flood early in
        # one, so that it meets a single allowance of 30.
        while time.time() % 60 > 50:
            time.sleep(0.5)
        started = time.monotonic()
        flood.start()
        rss_peak = [rss_before]
        sampling = threading.Event()

        def sample():
            while not sampling.is_set():
                rss_peak[0] = max(rss_peak[0], server.rss_kib())
                time.sleep(0.2)
        sampler = threading.Thread(target=sample, daemon=True)
        sampler.start()
        lat, bad = measure_gets(server, token, 100, 8)
        flood.join(timeout=120)
        flood_s = time.monotonic() - started
        sampling.set()
        sampler.join()
        counts = dict(counts)
        p99 = percentile(lat, 99) * 1000
        throttled = counts.get("429", 0)
        other = {k: v for k, v in counts.items() if k not in ("401", "429")}
        hashes = server.metric("roster_password_hashes_total") - hashes_before
        max_hashing = server.metric("roster_password_hashes_in_flight_max")

        report.info("logins", sum(counts.values()))
        report.info("flood_seconds", round(flood_s, 1))
        report.info("statuses", counts)
        report.check("throttled_429", throttled, ">= 2170", throttled >= 2200 - 30)
        report.check("not_401_or_429", sum(other.values()), 0, not other)
        report.check("passwords_hashed", int(hashes), "<= 31", hashes <= 31)
        report.check("hashes_in_flight_max", int(max_hashing), "<= 2", max_hashing <= 2)
        report.info("baseline_get_p99_ms", round(base_p99, 2))
        report.check("flood_get_p99_ms", round(p99, 2), f"<= {latency_target(base_p99):.1f}",
                     p99 <= latency_target(base_p99))
        report.check("flood_get_failures", bad, 0, bad == 0)
        growth = (rss_peak[0] - rss_before) / 1024
        report.check("rss_growth_mib", round(growth, 1), "<= 64", growth <= 64)
        server.stop()

        # Behind a trusted proxy, X-Forwarded-For names the client: each
        # client has its own allowance, and the proxy's is not shared.
        proxied = Server(data_dir=server.data_dir,
                         env={**env, "ROSTER_TRUSTED_PROXIES": "127.0.0.1"})
        proxied.start()

        def attempt(ip, n):
            return request(proxied.port, "POST", "/api/auth/jwt/create/",
                           {"email": f"proxied{n}@demo.example", "password": "wrong-password-1"},
                           headers={"X-Forwarded-For": ip}).status
        first = [attempt("198.51.100.7", n) for n in range(32)]
        other_client = attempt("198.51.100.8", 99)
        report.check("trusted_proxy_one_client_throttled", first[-1], 429, first[-1] == 429)
        report.check("trusted_proxy_other_client_not_throttled", other_client, 401, other_client == 401)
        proxied.stop()
    finally:
        server.cleanup()
    return report.finish()


# --- big inputs -------------------------------------------------------------------------

def raw_exchange(port, data, limit=5):
    """Sends raw bytes and returns the status of the answer (or None)."""
    with socket.create_connection(("127.0.0.1", port), timeout=limit) as s:
        try:
            s.sendall(data)
        except OSError:
            pass
        answer = b""
        try:
            while b"\r\n" not in answer:
                chunk = s.recv(4096)
                if not chunk:
                    break
                answer += chunk
        except OSError:
            pass
    line = answer.split(b"\r\n", 1)[0].split()
    return int(line[1]) if len(line) > 1 else None


def big_inputs():
    report = Report("big-inputs")
    server = Server()
    try:
        server.seed(members=150)
        server.start()
        token = server.login()
        auth = jwt(token)
        port = server.port
        three_mib = json.dumps({"name": "x" * (3 * 1024 * 1024)}).encode()
        nested_100 = ("[" * 100 + "]" * 100).encode()
        nested_100k = ("[" * 100_000 + "]" * 100_000).encode()
        chunked = (b"POST /api/departments/ HTTP/1.1\r\nHost: x\r\nAuthorization: " +
                   auth["Authorization"].encode() + b"\r\nContent-Type: application/json\r\n"
                   b"Transfer-Encoding: chunked\r\n\r\n" +
                   b"".join(b"%x\r\n%s\r\n" % (65536, b"a" * 65536) for _ in range(48)) + b"0\r\n\r\n")
        upload_body, upload_headers = multipart("file", "big.pdf", pdf_bytes(10 * 1024 * 1024 + 1, "big"))
        upload_headers.update(bearer(token))
        profile = first_profile_id(port, token)
        cases = [
            # The server answers 413 from the declared length and stops
            # reading, so the answer is read while the body is still going.
            ("json_3mib", lambda: raw_exchange(port, b"POST /api/departments/ HTTP/1.1\r\nHost: x\r\n"
                                               b"Authorization: " + auth["Authorization"].encode() +
                                               b"\r\nContent-Type: application/json\r\nContent-Length: " +
                                               str(len(three_mib)).encode() + b"\r\n\r\n" + three_mib),
             (413,)),
            ("chunked_3mib", lambda: raw_exchange(port, chunked), (413,)),
            ("array_10k", lambda: request(port, "POST", "/api/departments/",
                                          {"name": "arr", "members": list(range(10_000))}, auth).status,
             (201, 400)),
            ("nesting_100", lambda: request(port, "POST", "/api/departments/", nested_100,
                                            {**auth, "Content-Type": "application/json"}).status, (400,)),
            ("nesting_100k", lambda: request(port, "POST", "/api/departments/", nested_100k,
                                             {**auth, "Content-Type": "application/json"}).status, (400,)),
            ("query_8kib", lambda: request(port, "GET", "/api/departments/?search=" + "a" * 8192,
                                           headers=auth).status, (200, 400)),
            ("query_64kib", lambda: request(port, "GET", "/api/departments/?search=" + "a" * 65536,
                                            headers=auth).status, (200, 400, 414, 431)),
            ("header_64kib", lambda: request(port, "GET", "/api/departments/",
                                             headers={**auth, "X-Big": "a" * 65536}).status, (431,)),
            ("headers_200", lambda: raw_exchange(port, b"GET /healthz HTTP/1.1\r\nHost: x\r\n" +
                                                 b"".join(b"X-H%d: v\r\n" % i for i in range(200)) +
                                                 b"\r\n"), (431,)),
            ("upload_10mib_plus_1", lambda: request(port, "POST",
                                                    f"/api/v1/profiles/{profile}/documents/documents",
                                                    upload_body, upload_headers).status, (413,)),
        ]
        fives = 0
        for name, call, expected in cases:
            started = time.monotonic()
            try:
                status = call()
            except OSError as e:
                status = type(e).__name__
            ms = (time.monotonic() - started) * 1000
            fives += int(isinstance(status, int) and status >= 500)
            report.check(name, f"{status} in {ms:.0f} ms", f"{'/'.join(map(str, expected))} in < 1000 ms",
                         status in expected and ms < 1000)
        page = request(port, "GET", "/api/myTeams/?page_size=100000", headers=auth).json()
        size = len(page.get("results", []))
        report.check("page_size_clamped", size, 100, size == 100)
        report.check("answers_5xx", fives, 0, fives == 0)
        alive = request(port, "GET", "/healthz").status
        report.check("alive_after", alive, 200, alive == 200)
    finally:
        server.cleanup()
    return report.finish()


# --- upload bombs ---------------------------------------------------------------------------

def png_header(width, height):
    """A PNG whose header declares width x height (a decompression bomb's)."""
    def chunk(kind, data):
        return (struct.pack(">I", len(data)) + kind + data +
                struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF))
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    idat = zlib.compress(b"\0" * 1024)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", idat) + chunk(b"IEND", b"")


def zip_bomb():
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as z:
        z.writestr("word/document.xml", b"\0" * (50 * 1024 * 1024))
    return buf.getvalue()


def upload_bombs():
    report = Report("upload-bombs")
    server = Server(env={"ROSTER_FILE_URL_LIFETIME": "2"})
    try:
        server.seed()
        server.start()
        token = server.login()
        port = server.port
        profile = first_profile_id(port, token)
        path = f"/api/v1/profiles/{profile}/documents/documents"

        def upload(filename, content, content_type="application/pdf"):
            body, headers = multipart("file", filename, content, content_type)
            headers.update(bearer(token))
            started = time.monotonic()
            r = request(port, "POST", path, body, headers)
            return r, (time.monotonic() - started) * 1000

        rss_before = server.rss_kib()
        bomb = zip_bomb()
        refused_cases = [
            ("pixel_bomb_png", "bomb.png", png_header(100_000, 100_000), "image/png"),
            ("zip_bomb_as_pdf", "bomb.pdf", bomb, "application/pdf"),
            ("zip_bomb_as_docx", "bomb.docx", bomb, "application/octet-stream"),
            ("html", "page.html", b"<!doctype html><script>alert(1)</script>", "text/html"),
            ("html_as_pdf", "page.pdf", b"<html><script>alert(1)</script></html>", "application/pdf"),
            ("svg", "image.svg", b"<svg xmlns='http://www.w3.org/2000/svg' onload='alert(1)'/>", "image/svg+xml"),
            ("php_as_pdf", "shell.php.pdf", b"<?php system($_GET['c']); ?>", "application/pdf"),
            ("pdf_named_png", "doc.png", pdf_bytes(2000, "spoof"), "image/png"),
            ("empty", "empty.pdf", b"", "application/pdf"),
        ]
        for name, filename, content, ctype in refused_cases:
            r, ms = upload(filename, content, ctype)
            report.check(f"refused_{name}", f"{r.status} in {ms:.0f} ms", "4xx in < 1000 ms",
                         400 <= r.status < 500 and ms < 1000)
        growth = (server.rss_kib() - rss_before) / 1024
        report.check("rss_growth_mib", round(growth, 1), "<= 64", growth <= 64)

        hostile_names = ["../../etc/passwd.pdf", "..\\..\\x.pdf", "/abs.pdf", "CON.pdf",
                         "a.php%00.pdf", "a\r\nX-Injected: 1.pdf", "n" * 1000 + ".pdf",
                         "\u202egpj.pdf", "a\0b.pdf"]
        stored, header_ok, refused_names = 0, 0, []
        urls = []
        for i, filename in enumerate(hostile_names):
            r, _ = upload(filename, pdf_bytes(3000, f"name-{i}"))
            doc = r.json() or {}
            if r.status == 201:
                stored += 1
                url = doc["url"]
                url = url[url.index("/files/"):]
                urls.append(url)
                d = request(port, "GET", url)
                disposition = d.headers.get("content-disposition", "")
                if (d.status == 200 and disposition.startswith("attachment")
                        and d.headers.get("x-content-type-options") == "nosniff"
                        and "sandbox" in d.headers.get("content-security-policy", "")
                        and "x-injected" not in d.headers
                        and "\r" not in disposition and "\n" not in disposition):
                    header_ok += 1
            elif 400 <= r.status < 500:
                refused_names.append(filename[:20])
            else:
                report.note(f"name {filename[:20]!r}: {r.status}")
        report.info("hostile_names_stored", stored)
        report.info("hostile_names_refused", refused_names)
        report.check("downloads_attachment_nosniff_sandbox", header_ok, stored, header_ok == stored and stored > 0)

        # Every file the server wrote is under its files directory.
        outside = 0
        allowed_top = {"files", "outbox", "roster.db", "roster.db-wal", "roster.db-shm",
                       "server.log", "secret_key"}
        for dirpath, _, files in os.walk(server.data_dir):
            rel = os.path.relpath(dirpath, server.data_dir)
            top = rel.split(os.sep)[0] if rel != "." else None
            for name in files:
                if top not in ("files", "outbox") and name not in allowed_top:
                    outside += 1
                    report.note(f"unexpected file {os.path.join(rel, name)}")
        report.check("files_outside_root", outside, 0, outside == 0)
        outside_fs = sum(1 for p in ["/etc/passwd.pdf", "/abs.pdf"] if os.path.exists(p))
        report.check("files_written_elsewhere", outside_fs, 0, outside_fs == 0)

        # Signed links: tampered and expired are refused.
        url = urls[0]
        prefix, rest = url[len("/files/"):].split("/", 1)
        tampered = "/files/" + prefix[:-1] + ("A" if prefix[-1] != "A" else "B") + "/" + rest
        t = request(port, "GET", tampered).status
        report.check("tampered_link", t, 404, t == 404)
        time.sleep(3)
        e = request(port, "GET", url).status
        report.check("expired_link", e, 404, e == 404)
    finally:
        server.cleanup()
    return report.finish()

"""Graceful shutdown (reliability.md section 7, goal G12).

Fifty slow uploads (10 KiB/s) are in flight when the server gets SIGTERM:
`/readyz` must turn 503 at once while requests are still served for the
shutdown delay, then new connections are refused, all fifty uploads finish
with 2xx, and the process exits 0 well within the drain deadline. A second
part sends uploads that outlast the drain deadline: they are cut there and
the process still exits on time.
"""

import signal
import socket
import threading
import time

from faultlib import Report, Server, first_profile_id, multipart, pdf_bytes, request


def slow_upload(port, token, profile, tag, size, rate, outcome):
    """Uploads a `size`-byte PDF at `rate` bytes a second on a raw socket;
    puts ("status", code) or ("error", name) in `outcome`."""
    body, headers = multipart("file", f"{tag}.pdf", pdf_bytes(size, tag))
    head = (f"POST /api/v1/profiles/{profile}/documents/documents HTTP/1.1\r\n"
            f"Host: 127.0.0.1\r\nAuthorization: Bearer {token}\r\n"
            f"Content-Type: {headers['Content-Type']}\r\nContent-Length: {len(body)}\r\n"
            f"Connection: close\r\n\r\n").encode()
    piece = 1024
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=30) as s:
            s.sendall(head)
            for at in range(0, len(body), piece):
                s.sendall(body[at:at + piece])
                time.sleep(piece / rate)
            answer = b""
            while True:
                chunk = s.recv(65536)
                if not chunk:
                    break
                answer += chunk
            line = answer.split(b"\r\n", 1)[0].split()
            outcome.append(("status", int(line[1])) if len(line) > 1 else ("error", "EmptyAnswer"))
    except OSError as e:
        outcome.append(("error", type(e).__name__))


def run():
    report = Report("drain")
    delay, drain = 1, 10
    server = Server(env={"ROSTER_SHUTDOWN_DELAY": str(delay), "ROSTER_DRAIN_TIMEOUT": str(drain)})
    try:
        server.seed()
        server.start()
        token = server.login()
        profile = first_profile_id(server.port, token)
        outcome = []
        threads = [threading.Thread(target=slow_upload, daemon=True,
                                    args=(server.port, token, profile, f"drain-{i}", 30_000, 10_240, outcome))
                   for i in range(50)]
        for t in threads:
            t.start()
        time.sleep(0.8)
        sigterm = time.monotonic()
        server.kill(signal.SIGTERM)
        first_503_ms = None
        served_during_delay = False
        refused_after_delay = False
        while time.monotonic() - sigterm < delay + 3:
            try:
                r = request(server.port, "GET", "/readyz", timeout=1)
                if r.status == 503 and first_503_ms is None:
                    first_503_ms = (time.monotonic() - sigterm) * 1000
                h = request(server.port, "GET", "/healthz", timeout=1)
                served_during_delay = served_during_delay or h.status == 200
            except ConnectionRefusedError:
                if time.monotonic() - sigterm >= delay:
                    refused_after_delay = True
                    break
            except OSError:
                pass
            time.sleep(0.05)
        code = server.wait_exit(limit=delay + drain + 5)
        exit_ms = (time.monotonic() - sigterm) * 1000
        for t in threads:
            t.join(timeout=30)
        ok = sum(1 for o in outcome if o[0] == "status" and 200 <= o[1] < 300)
        errors = sorted({o[1] for o in outcome if o[0] == "error"})
        report.check("uploads_2xx", ok, 50, ok == 50)
        report.check("uploads_failed", 50 - ok, 0, ok == 50)
        if errors:
            report.note(f"upload errors: {errors}")
        report.check("readyz_503_after_ms", round(first_503_ms or -1), "<= 500",
                     first_503_ms is not None and first_503_ms <= 500)
        report.check("served_during_delay", served_during_delay, True, served_during_delay)
        report.check("new_connections_refused_after_delay", refused_after_delay, True, refused_after_delay)
        report.check("exit_code", code, 0, code == 0)
        report.check("exit_after_sigterm_ms", round(exit_ms), f"<= {(delay + drain + 1) * 1000}",
                     exit_ms <= (delay + drain + 1) * 1000)
        server.stop()

        # Requests that outlast the drain deadline are cut there.
        short = Server(data_dir=server.data_dir, env={"ROSTER_SHUTDOWN_DELAY": "0", "ROSTER_DRAIN_TIMEOUT": "2"})
        short.start()
        outcome = []
        threads = [threading.Thread(target=slow_upload, daemon=True,
                                    args=(short.port, token, profile, f"long-{i}", 100_000, 10_240, outcome))
                   for i in range(5)]
        for t in threads:
            t.start()
        time.sleep(0.5)
        sigterm = time.monotonic()
        short.kill(signal.SIGTERM)
        code = short.wait_exit(limit=10)
        exit_ms = (time.monotonic() - sigterm) * 1000
        for t in threads:
            t.join(timeout=30)
        cut = sum(1 for o in outcome if not (o[0] == "status" and 200 <= o[1] < 300))
        report.check("long_requests_cut", cut, 5, cut == 5)
        report.check("long_exit_code", code, 0, code == 0)
        report.check("long_exit_after_sigterm_ms", round(exit_ms), "<= 3000", exit_ms <= 3000)
    finally:
        server.cleanup()
    return report.finish()

"""The email outbox through an SMTP outage (reliability.md section 7):
twenty sign-ups queue activation emails while the mail server is down, the
server is killed (-9) and restarted during the outage, then the mail server
comes up: every email arrives, none twice, and the backlog empties.
"""

import os
import signal
import subprocess
import time

from faultlib import ROOT, Report, Server, free_port, request

SINK = """
import os, sys, time, uuid
from aiosmtpd.controller import Controller

class Save:
    async def handle_DATA(self, server, session, envelope):
        for rcpt in envelope.rcpt_tos:
            name = os.path.join(sys.argv[2], uuid.uuid4().hex + ".eml")
            with open(name, "wb") as f:
                f.write(("X-Rcpt: " + rcpt + "\\r\\n").encode() + envelope.content)
        return "250 OK"

c = Controller(Save(), hostname="127.0.0.1", port=int(sys.argv[1]))
c.start()
print("ready", flush=True)
time.sleep(float(sys.argv[3]))
c.stop()
"""


def venv_python():
    """The Python with aiosmtpd (scripts/test makes .venv)."""
    path = os.path.join(ROOT, ".venv", "bin", "python")
    if not os.path.exists(path):
        raise RuntimeError("no .venv with aiosmtpd: run scripts/test once first")
    return path


def run():
    report = Report("outbox-smtp-outage")
    smtp_port = free_port()
    env = {"SMTP_URL": f"smtp://127.0.0.1:{smtp_port}", "ROSTER_OUTBOX_POLL_SECONDS": "1"}
    server = Server(env=env)
    inbox = os.path.join(server.data_dir, "inbox")
    os.makedirs(inbox)
    sink = None
    try:
        server.seed()
        server.start()
        recipients = [f"outage{i}@example.org" for i in range(20)]
        accepted = 0
        for email in recipients:
            r = request(server.port, "POST", "/api/auth/users/",
                        {"email": email, "password": "Outage-Pass-2024!",
                         "re_password": "Outage-Pass-2024!", "first_name": "Out", "last_name": "Age",
                         "role": "Coach"})
            accepted += int(r.status == 201)
        report.check("signups", accepted, 20, accepted == 20)
        time.sleep(3)
        pending_before_kill = server.metric("roster_outbox_pending")
        report.check("pending_during_outage", pending_before_kill, 20, pending_before_kill == 20)
        server.kill(signal.SIGKILL)
        server.wait_exit()
        server.start()
        time.sleep(2)
        sink = subprocess.Popen([venv_python(), "-c", SINK, str(smtp_port), inbox, "90"],
                                stdout=subprocess.PIPE)
        assert sink.stdout.readline().strip() == b"ready"
        mail_up = time.monotonic()
        deadline = mail_up + 60
        while time.monotonic() < deadline:
            if server.metric("roster_outbox_pending") == 0:
                break
            time.sleep(0.5)
        delivered_s = time.monotonic() - mail_up
        time.sleep(2)  # anything sent twice would arrive now
        got = {}
        for name in os.listdir(inbox):
            with open(os.path.join(inbox, name), "rb") as f:
                rcpt = f.readline().decode().split(":", 1)[1].strip()
            got[rcpt] = got.get(rcpt, 0) + 1
        lost = sum(1 for r in recipients if r not in got)
        twice = sum(1 for n in got.values() if n > 1)
        pending = server.metric("roster_outbox_pending")
        report.check("lost", lost, 0, lost == 0)
        report.check("sent_twice", twice, 0, twice == 0)
        report.check("pending_after", pending, 0, pending == 0)
        report.info("delivered_within_s", round(delivered_s, 1))
    finally:
        if sink:
            sink.kill()
        server.cleanup()
    return report.finish()

"""The email outbox through an SMTP outage (reliability.md section 7):
twenty sign-ups queue activation emails while the mail server is down, the
server is killed (-9) and restarted during the outage, then the mail server
comes up: every email arrives, none twice, and the backlog empties.
"""

import os
import signal
import time

from faultlib import VENV_PYTHON, Inbox, Report, Server, free_port, request

def run():
    report = Report("outbox-smtp-outage")
    smtp_port = free_port()
    env = {"SMTP_URL": f"smtp://127.0.0.1:{smtp_port}", "ROSTER_OUTBOX_POLL_SECONDS": "1"}
    server = Server(env=env)
    inbox = None
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
        if not os.path.exists(VENV_PYTHON):
            raise RuntimeError("no .venv with aiosmtpd: run scripts/test once first")
        inbox = Inbox(port=smtp_port)
        mail_up = time.monotonic()
        deadline = mail_up + 60
        while time.monotonic() < deadline:
            if server.metric("roster_outbox_pending") == 0:
                break
            time.sleep(0.5)
        delivered_s = time.monotonic() - mail_up
        time.sleep(2)  # anything sent twice would arrive now
        got = {}
        for to, _ in inbox.messages():
            got[to] = got.get(to, 0) + 1
        lost = sum(1 for r in recipients if r not in got)
        twice = sum(1 for n in got.values() if n > 1)
        pending = server.metric("roster_outbox_pending")
        report.check("lost", lost, 0, lost == 0)
        report.check("sent_twice", twice, 0, twice == 0)
        report.check("pending_after", pending, 0, pending == 0)
        report.info("delivered_within_s", round(delivered_s, 1))
    finally:
        if inbox:
            inbox.stop()
        server.cleanup()
    return report.finish()

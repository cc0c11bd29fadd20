"""Makes the state that some operations need before they can succeed, and
prints it as `export FUZZ_...=...` lines for tests/fuzz/run.sh, whose
schemathesis.toml fixes those operations' parameters to these values:
a stored document (its attachment id, signed id and download link),
profile records, a program with a member, refresh tokens, emailed
activation and reset links, a coach under review, and throwaway users for
the operations that change or delete their own account.

    python3 tests/fuzz/fixtures.py http://127.0.0.1:8420 WORKDIR

Reads ADMIN and MEMBER (access tokens) from the environment.
"""

import email
import glob
import http.client
import json
import os
import sys
import time
import urllib.parse
import uuid

BASE, WORK = sys.argv[1], sys.argv[2]
URL = urllib.parse.urlparse(BASE)
ADMIN, MEMBER = os.environ["ADMIN"], os.environ["MEMBER"]
THROWAWAY_PASSWORD = "Throwaway-Pass-2024!"
PDF = b"%PDF-1.4\n% roster fuzz fixture\n1 0 obj << >> endobj\n%%EOF\n"


def call(method, path, body=None, token=None, scheme="JWT", raw=None, content_type=None):
    headers = {}
    if token:
        headers["Authorization"] = f"{scheme} {token}"
    data = raw
    if body is not None:
        data = json.dumps(body).encode()
        headers["Content-Type"] = "application/json"
    if content_type:
        headers["Content-Type"] = content_type
    conn = http.client.HTTPConnection(URL.hostname, URL.port, timeout=30)
    conn.request(method, path, body=data, headers=headers)
    resp = conn.getresponse()
    text = resp.read().decode()
    conn.close()
    if resp.status >= 300:
        raise SystemExit(f"fixtures: {method} {path} answered {resp.status}: {text[:300]}")
    return json.loads(text) if text else {}


def upload(path, token):
    boundary = uuid.uuid4().hex
    body = (f"--{boundary}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"fixture.pdf\"\r\n"
            "Content-Type: application/pdf\r\n\r\n").encode() + PDF + f"\r\n--{boundary}--\r\n".encode()
    return call("POST", path, token=token, scheme="Bearer", raw=body,
                content_type=f"multipart/form-data; boundary={boundary}")


def login(email_address, password):
    return call("POST", "/api/auth/jwt/create/", {"email": email_address, "password": password})


def team_member(email_address, role="Member"):
    created = call("POST", "/api/myTeams/", {"email": email_address, "first_name": "Fix", "last_name": "Ture",
                                            "password": THROWAWAY_PASSWORD, "role": role}, token=ADMIN)
    return created


def emailed_link(to, marker, limit=20):
    """uid and token from the link in the newest mail to `to` (the outbox
    folder, as the server writes mail without SMTP)."""
    deadline = time.monotonic() + limit
    while time.monotonic() < deadline:
        for path in sorted(glob.glob(os.path.join(WORK, "outbox", "*.eml")), reverse=True):
            msg = email.message_from_bytes(open(path, "rb").read())
            if to not in (msg["To"] or ""):
                continue
            part = msg.get_payload(0) if msg.is_multipart() else msg
            text = (part.get_payload(decode=True) or b"").decode(errors="replace")
            if marker in text:
                rest = text[text.index(marker) + len(marker):].split()[0]
                uid, token = rest.split("/", 1)
                return uid, token.rstrip("/")
        time.sleep(0.2)
    raise SystemExit(f"fixtures: no mail to {to} with {marker}")


out = {}
# Three demo members' profiles, so that no fixed operation undoes another's
# fixture: one holds a document to delete by id and the records to delete,
# one has whole kinds emptied, one holds the document to download.
profiles = call("GET", "/api/v1/profiles?per_page=3", token=ADMIN, scheme="Bearer")["profiles"]
profile, emptied, served = (p["id"] for p in profiles)
doc = upload(f"/api/v1/profiles/{profile}/documents/documents", ADMIN)
kept = upload(f"/api/v1/profiles/{served}/documents/documents", ADMIN)
token, name = kept["url"].split("/files/", 1)[1].split("/", 1)
out.update(PROFILE_ID=profile, EMPTIED_PROFILE_ID=emptied, SERVED_PROFILE_ID=served,
           ATTACHMENT_ID=doc["id"], SIGNED_ID=kept["signed_id"], FILE_TOKEN=token, FILE_NAME=name)
# The fuzz member's own document (a list kind; whole-kind deletes use a slot).
own = upload("/api/v1/profile/documents/driving_license", MEMBER)
out["OWN_ATTACHMENT_ID"] = own["id"]
# Profile records to delete.
interview = call("POST", f"/api/v1/profiles/{profile}/interviews", {"interview": {"date": "2024-03-01"}},
                 token=ADMIN, scheme="Bearer")
review = call("POST", f"/api/v1/profiles/{profile}/reviews", {"review": {"rating": 4}},
              token=ADMIN, scheme="Bearer")
experience = call("POST", f"/api/v1/profiles/{profile}/experiences", {"experience": {"company": "Fuzz Ltd"}},
                  token=ADMIN, scheme="Bearer")
out.update(INTERVIEW_ID=interview["interview"]["id"], REVIEW_ID=review["review"]["id"],
           EXPERIENCE_ID=experience["experience"]["id"])
# A program with one member, and a user who is not in it yet.
program = call("POST", "/programs", {"name": "Fuzz Program"}, token=ADMIN, scheme="Bearer")["program"]["id"]
inside = team_member("fuzz.program.in@demo.example")
outside = team_member("fuzz.program.out@demo.example")
call("POST", f"/programs/{program}/members", {"user": str(inside["id"])}, token=ADMIN, scheme="Bearer")
out.update(PROGRAM_ID=program, PROGRAM_MEMBER_ID=inside["id"], PROGRAM_NEW_USER=outside["id"])
# Departments and team members to change and to delete.
out["DEPARTMENT_ID"] = call("POST", "/api/departments/", {"name": "Fuzz Department"}, token=ADMIN)["id"]
out["DEPARTMENT_DELETE_ID"] = call("POST", "/api/departments/", {"name": "Fuzz Leaving"}, token=ADMIN)["id"]
out["TEAM_MEMBER_ID"] = team_member("fuzz.team.changed@demo.example")["id"]
out["TEAM_DELETE_ID"] = team_member("fuzz.team.deleted@demo.example")["id"]
# Refresh tokens: one to refresh and verify with, one to log out with.
team_member("fuzz.tokens@demo.example")
out["REFRESH"] = login("fuzz.tokens@demo.example", THROWAWAY_PASSWORD)["refresh"]
out["REFRESH_LOGOUT"] = login("fuzz.tokens@demo.example", THROWAWAY_PASSWORD)["refresh"]
# Emailed links: an activation and a password reset.
call("POST", "/api/auth/users/", {"email": "fuzz.signup@example.org", "first_name": "Sign", "last_name": "Up",
                                  "role": "Coach", "password": THROWAWAY_PASSWORD,
                                  "re_password": THROWAWAY_PASSWORD})
out["ACTIVATION_UID"], out["ACTIVATION_TOKEN"] = emailed_link("fuzz.signup@example.org", "/activate/")
team_member("fuzz.reset@demo.example")
call("POST", "/api/auth/users/reset_password/", {"email": "fuzz.reset@demo.example"})
out["RESET_UID"], out["RESET_TOKEN"] = emailed_link("fuzz.reset@demo.example", "/password/reset/confirm/")
# A coach under review (submitted for vetting), for staff to decide on.
vetted = team_member("fuzz.vetting@demo.example", role="Coach")
coach = login("fuzz.vetting@demo.example", THROWAWAY_PASSWORD)["access"]
call("POST", "/auth/coach/vetting/", token=coach)
out["VETTING_PK"] = vetted["id"]
# Throwaway users whose own password is changed and whose account is deleted.
team_member("fuzz.set.password@demo.example")
out["SET_PASSWORD_TOKEN"] = login("fuzz.set.password@demo.example", THROWAWAY_PASSWORD)["access"]
team_member("fuzz.delete.me@demo.example")
out["DELETE_ME_TOKEN"] = login("fuzz.delete.me@demo.example", THROWAWAY_PASSWORD)["access"]
out["THROWAWAY_PASSWORD"] = THROWAWAY_PASSWORD

for key, value in out.items():
    print(f"export FUZZ_{key}='{value}'")

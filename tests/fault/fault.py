"""The fault stage: runs the scenarios named on the command line (all when
none) against the release binary and exits non-zero on any miss.

    python3 tests/fault/fault.py                 # everything
    python3 tests/fault/fault.py killnine-sqlite drain

Figures go to target/reliability/<scenario>.json; docs/fault-tolerance.md
says what each scenario does and what it found.
"""

import atexit
import sys

import faultlib
import attacks
import database
import drain
import killnine
import outbox

_pg = None


def pg():
    """The throwaway PostgreSQL cluster, made on first use."""
    global _pg
    if _pg is None:
        _pg = faultlib.PgCluster()
        atexit.register(_pg.destroy)
    return _pg


SCENARIOS = {
    "killnine-sqlite": lambda: killnine.run("sqlite"),
    "killnine-sqlite-normal": lambda: killnine.run("sqlite-normal"),
    "killnine-postgres": lambda: killnine.run("postgres", pg()),
    "drain": drain.run,
    "pg-outage": lambda: database.pg_outage(pg()),
    "sqlite-locked": database.sqlite_locked,
    "slowloris": attacks.slowloris,
    "login-flood": attacks.login_flood,
    "big-inputs": attacks.big_inputs,
    "upload-bombs": attacks.upload_bombs,
    "outbox-smtp-outage": outbox.run,
    "pool-exhaustion-sqlite": lambda: database.pool_exhaustion("sqlite"),
    "pool-exhaustion-postgres": lambda: database.pool_exhaustion("postgres", pg()),
}

if __name__ == "__main__":
    ok = faultlib.run_scenarios(SCENARIOS, sys.argv[1:])
    sys.exit(0 if ok else 1)

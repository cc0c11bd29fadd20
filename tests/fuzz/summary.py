"""Reads schemathesis NDJSON reports: counts requests and failed checks per
operation, and lists operations that never answered 2xx in any pass.

Exits 1 on any server error (the `not_a_server_error` check). With
`--require-2xx`, also when an operation never succeeded (what CI runs);
with `--strict`, also on any other failed check (see docs/fuzzing.md)."""
import collections
import json
import sys

args = sys.argv[1:]
strict = "--strict" in args
require_2xx = strict or "--require-2xx" in args
args = [a for a in args if a not in ("--strict", "--require-2xx")]
backend, paths = args[0], args[1:]
requests = 0
statuses = collections.defaultdict(collections.Counter)
failures = collections.Counter()
operations = set()
operations_total = 0
for path in paths:
    for line in open(path):
        event = json.loads(line)
        if "LoadingFinished" in event:
            stats = event["LoadingFinished"]["statistic"]["operations"]
            operations_total = stats["selected"]
        finished = event.get("ScenarioFinished")
        if not finished:
            continue
        recorder = finished["recorder"]
        label = recorder["label"]
        operations.add(label)
        for interaction in recorder.get("interactions", {}).values():
            response = interaction.get("response")
            if response:
                requests += 1
                statuses[label][response["status_code"] // 100] += 1
        for checks in recorder.get("checks", {}).values():
            for check in checks:
                if check["status"] == "failure":
                    failures[(label, check["name"])] += 1

# A redirect is the success of the operations that answer one (a blob's
# signed id redirects to a download link).
without_2xx = sorted(op for op in operations if statuses[op][2] + statuses[op][3] == 0)
print(f"fuzz {backend}: {len(operations)} operations, {requests} requests, "
      f"{sum(failures.values())} failed checks, {len(without_2xx)} operations without a 2xx")
for (label, check), n in sorted(failures.items()):
    print(f"  failed: {label}: {check} x{n}")
for label in without_2xx:
    print(f"  no 2xx: {label} {dict(statuses[label])}")
server_errors = sum(n for (_, check), n in failures.items() if check == "not_a_server_error")
print(f"fuzz {backend}: server errors: {server_errors}")
if strict and failures:
    sys.exit(1)
if require_2xx and without_2xx:
    sys.exit(1)
sys.exit(1 if server_errors else 0)

"""What a hostile 64 MB frame of tiny lists costs the grader: json.loads vs the bounded decoder.

Each variant runs in a fresh process (so peak memory is its own) and prints its time and its peak
resident memory growth; then the ratios. Run: ``.venv/bin/python benchmarks/decode_limits.py``.
"""

from __future__ import annotations

import json
import subprocess
import sys

CHILD = r"""
import json, resource, sys, time
from autograder import proxy

body = b'{"id": 1, "type": "done", "status": "ok", "value": [' + b"[]," * 21_000_000 + b"[]]}"
before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
started = time.monotonic()
outcome = "decoded"
try:
    if sys.argv[1] == "bounded":
        proxy.unpack_body(body)
    else:
        json.loads(body.decode("utf-8"))
except proxy.FrameTooComplex:
    outcome = "refused"
seconds = time.monotonic() - started
growth = (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before) / 1024
result = {"mib": len(body) / 2**20, "seconds": seconds, "growth_mib": growth}
print(json.dumps(dict(result, outcome=outcome)))
"""


def measure(variant: str) -> dict:
    out = subprocess.run(
        [sys.executable, "-c", CHILD, variant], capture_output=True, text=True, check=True
    )
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    results = {v: measure(v) for v in ("plain", "bounded")}
    for variant, r in results.items():
        print(
            f"{variant:8s} {r['mib']:.0f} MiB frame: {r['outcome']} in {r['seconds']:.2f} s, "
            f"peak memory +{r['growth_mib']:.0f} MiB"
        )
    plain, bounded = results["plain"], results["bounded"]
    print(
        f"memory ratio plain/bounded: {plain['growth_mib'] / max(bounded['growth_mib'], 1):.1f}x; "
        f"time ratio plain/bounded: {plain['seconds'] / max(bounded['seconds'], 1e-3):.1f}x"
    )


if __name__ == "__main__":
    main()

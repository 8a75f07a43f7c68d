"""``python -m deepfake_serving.drain``: wait until no request is in flight, before SIGTERM.

Triton 2.51 cannot finish an in-flight *ensemble* request once it has received
SIGTERM: the composing models stop accepting the request's next step
(``RELIABILITY.md``, "Shutdown"). So the SIGTERM must come when nothing is in
flight. In Kubernetes this runs as Triton's ``preStop`` hook, next to the edge
sidecar (``deploy/k8s/components/edge``), which counts the requests it is
proxying (``caddy_http_requests_in_flight``):

1. wait ``--settle`` seconds, while the endpoints controller takes the pod out
   of the Services, so no new requests arrive;
2. poll the edge's metrics until no request has been in flight for two
   consecutive polls (or ``--timeout``);
3. touch ``--done-file``, which the edge's own ``preStop`` waits for, so the
   edge keeps proxying until Triton's work is done.

Then the kubelet sends SIGTERM to both with nothing left to cut. Exit status 0
when drained, 1 on timeout or when the edge cannot be read (the hook then ends
and shutdown goes on as before).
"""

from __future__ import annotations

import argparse
import re
import sys
import time
import urllib.request
from pathlib import Path

IN_FLIGHT = "caddy_http_requests_in_flight"
_SAMPLE = re.compile(r"^(?P<name>[a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(?P<labels>[^}]*)\})?\s+(?P<value>\S+)")


def requests_in_flight(metrics_text: str) -> int:
    """Requests the edge is proxying now, from its Prometheus metrics (its own scrape excluded)."""
    total = 0.0
    for line in metrics_text.splitlines():
        match = _SAMPLE.match(line)
        if not match or match["name"] != IN_FLIGHT:
            continue
        if 'handler="metrics"' in (match["labels"] or ""):
            continue  # the scrape that is reading this
        total += float(match["value"])
    return int(total)


def read_in_flight(url: str) -> int:
    with urllib.request.urlopen(url, timeout=2) as response:
        return requests_in_flight(response.read().decode())


def drain(metrics_url: str, *, settle_s: float, timeout_s: float, poll_s: float = 0.5) -> bool:
    """True once nothing has been in flight for two consecutive polls within ``timeout_s``."""
    time.sleep(settle_s)
    deadline = time.monotonic() + timeout_s
    idle_polls = 0
    while time.monotonic() < deadline:
        in_flight = read_in_flight(metrics_url)
        idle_polls = idle_polls + 1 if in_flight == 0 else 0
        if idle_polls >= 2:
            return True
        time.sleep(poll_s)
    return False


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--edge-metrics", default="http://127.0.0.1:2020/metrics", help="the edge's metrics URL")
    parser.add_argument("--settle", type=float, default=10.0, help="seconds to wait for endpoint removal first")
    parser.add_argument("--timeout", type=float, default=30.0, help="longest wait for in-flight requests")
    parser.add_argument("--poll", type=float, default=0.5, help="seconds between polls")
    parser.add_argument("--done-file", type=Path, help="touched when the drain ends, drained or not")
    args = parser.parse_args(argv)
    try:
        drained = drain(args.edge_metrics, settle_s=args.settle, timeout_s=args.timeout, poll_s=args.poll)
        if not drained:
            print(f"drain: requests still in flight after {args.timeout:g} s; stopping anyway", file=sys.stderr)
    except OSError as error:
        print(f"drain: cannot read {args.edge_metrics} ({error}); stopping without waiting", file=sys.stderr)
        drained = False
    finally:
        if args.done_file is not None:
            args.done_file.parent.mkdir(parents=True, exist_ok=True)
            args.done_file.touch()
    return 0 if drained else 1


if __name__ == "__main__":
    sys.exit(main())

"""Requests per second of a running server (`make serve`), for a few simple pages, on loopback.

Usage, with `make serve` running in another terminal:

    .venv/bin/python benchmarks/http_requests.py --requests 2000 --clients 8

Each page is asked for `--requests` times by `--clients` clients at once (one keep-alive
connection each), and stops after `--seconds` whatever the count. Only loopback addresses are
accepted. Figures are printed, not asserted.
"""

from __future__ import annotations

import argparse
import ipaddress
import statistics
import sys
import threading
import time
from urllib.parse import urlsplit

import requests

PAGES = ("/healthz?live", "/healthz", "/login/")


def loopback(url: str) -> bool:
    host = urlsplit(url).hostname or ""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def measure(base: str, path: str, *, count: int, clients: int, seconds: float) -> dict:
    lock = threading.Lock()
    remaining = [count]
    times: list[float] = []
    statuses: dict[int, int] = {}
    deadline = time.monotonic() + seconds

    def client() -> None:
        session = requests.Session()
        while time.monotonic() < deadline:
            with lock:
                if remaining[0] <= 0:
                    return
                remaining[0] -= 1
            started = time.perf_counter()
            response = session.get(base + path, timeout=30, allow_redirects=False)
            elapsed = time.perf_counter() - started
            with lock:
                times.append(elapsed)
                statuses[response.status_code] = statuses.get(response.status_code, 0) + 1

    threads = [threading.Thread(target=client) for _ in range(clients)]
    started = time.perf_counter()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    wall = time.perf_counter() - started
    times.sort()
    return {
        "path": path,
        "requests": len(times),
        "per_second": len(times) / wall if wall else 0.0,
        "median_ms": statistics.median(times) * 1000 if times else 0.0,
        "p95_ms": times[int(len(times) * 0.95) - 1] * 1000 if times else 0.0,
        "statuses": statuses,
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--url", default="http://127.0.0.1:8000")
    parser.add_argument("--requests", type=int, default=2000, help="per page (default 2000)")
    parser.add_argument("--clients", type=int, default=8, help="at once (default 8)")
    parser.add_argument("--seconds", type=float, default=60, help="at most, per page")
    args = parser.parse_args()
    if not loopback(args.url):
        parser.error("only a server on this machine (a loopback address) may be measured")
    for path in PAGES:
        result = measure(
            args.url, path, count=args.requests, clients=args.clients, seconds=args.seconds
        )
        print(
            f"{result['path']:<16} {result['requests']:>6} requests  "
            f"{result['per_second']:>7.1f}/s  median {result['median_ms']:.1f} ms  "
            f"p95 {result['p95_ms']:.1f} ms  statuses {result['statuses']}"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())

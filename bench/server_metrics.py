"""What the Temporal server did for a benchmark's runs, from its own metrics: requests per run by kind.

The dev server serves Prometheus counters (``--metrics-port``): ``service_requests`` counts the RPCs
each of its services handled (frontend: what clients and workers asked; history and matching: its
internal calls), ``persistence_requests`` the database operations. Their increase over a benchmark,
divided by its runs, says where the server's CPU per run goes and what differs from the raw baseline
(a heartbeat, a marker, a search-attribute upsert each show up here)."""

from __future__ import annotations

import re
import time
import urllib.request

COUNTERS = ("service_requests", "persistence_requests")
# The server hands its counters to the Prometheus endpoint every second or two (a new one reads 0 until
# then): a scrape that must include what just happened waits this long first.
FLUSH_SECONDS = 3.0
_LINE = re.compile(r'^(\w+)\{([^}]*)\}\s+([0-9.eE+-]+)$')
_LABEL = re.compile(r'(\w+)="([^"]*)"')


def scrape(url: str, timeout: float = 10.0) -> dict[str, float]:
    """The counters of :data:`COUNTERS` at ``url``, summed over namespaces, keyed
    ``"<counter> <service> <operation>"``, read after the server's next flush."""
    time.sleep(FLUSH_SECONDS)
    with urllib.request.urlopen(url, timeout=timeout) as resp:  # noqa: S310 - a local http:// URL we built
        text = resp.read().decode()
    out: dict[str, float] = {}
    for line in text.splitlines():
        m = _LINE.match(line)
        if not m or m.group(1) not in COUNTERS:
            continue
        labels = dict(_LABEL.findall(m.group(2)))
        key = f"{m.group(1)} {labels.get('service_name', '?')} {labels.get('operation', '?')}"
        out[key] = out.get(key, 0.0) + float(m.group(3))
    return out


def per_run(before: dict[str, float], after: dict[str, float], runs: int, top: int = 15) -> dict[str, dict[str, float]]:
    """The increase of each counter per run, the ``top`` largest of each kind: ``{"frontend": {op: n},
    "history": ..., "matching": ..., "persistence": {op: n}}`` (persistence summed over services)."""
    grouped: dict[str, dict[str, float]] = {}
    for key, value in after.items():
        counter, service, operation = key.split(" ", 2)
        delta = (value - before.get(key, 0.0)) / max(runs, 1)
        if delta <= 0:
            continue
        group = "persistence" if counter == "persistence_requests" else service
        grouped.setdefault(group, {})
        grouped[group][operation] = grouped[group].get(operation, 0.0) + delta
    return {g: dict(sorted(((op, round(v, 2)) for op, v in ops.items()), key=lambda kv: -kv[1])[:top])
            for g, ops in sorted(grouped.items())}


def delta(base: dict[str, dict[str, float]] | None, run: dict[str, dict[str, float]] | None,
          top: int = 10) -> dict[str, dict[str, float]] | None:
    """Per kind, the operations whose count per run differs from ``base``'s, largest difference first."""
    if base is None or run is None:
        return None
    out: dict[str, dict[str, float]] = {}
    for group in sorted(set(base) | set(run)):
        a, b = base.get(group, {}), run.get(group, {})
        diffs = {op: round(b.get(op, 0.0) - a.get(op, 0.0), 2) for op in set(a) | set(b)}
        kept = sorted(((op, d) for op, d in diffs.items() if d), key=lambda kv: -abs(kv[1]))[:top]
        if kept:
            out[group] = dict(kept)
    return out

"""Deciding, tick by tick, which models in the drop folder are ready to benchmark.

This is the sensor's brain, kept free of Dagster so it can be reasoned about
(and tested) as plain data in, plain data out. The cursor remembers, per
model, the stat signature and content fingerprint it launched runs for,
entries seen once but not yet stable, and where the disk sweep stopped.

An entry is *stable* when its signature is unchanged since the previous tick,
or when nothing in it was modified for ``settle_seconds`` (a model copied in
long ago need not wait a tick). A file still being copied changes size between
ticks and waits.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Sequence

from bench_assets.models.registry import ModelEntry, fingerprint

DEFAULT_SETTLE_SECONDS = 10.0


@dataclass
class WatchState:
    """What the sensor cursor holds."""

    launched: dict[str, dict[str, str]] = field(default_factory=dict)
    pending: dict[str, str] = field(default_factory=dict)
    sweep: str = ""  # the partition ("model/category") the disk sweep checks next; "" = from the start
    suite: dict[str, str] = field(default_factory=dict)  # the suite's category digests at the last tick

    @classmethod
    def from_cursor(cls, cursor: str | None) -> "WatchState":
        if not cursor:
            return cls()
        data = json.loads(cursor)
        return cls(launched=data.get("launched", {}), pending=data.get("pending", {}), sweep=data.get("sweep", ""),
                   suite=data.get("suite", {}))

    def to_cursor(self) -> str:
        return json.dumps({"launched": self.launched, "pending": self.pending, "sweep": self.sweep,
                           "suite": self.suite}, sort_keys=True)


@dataclass(frozen=True)
class Launch:
    entry: ModelEntry
    fingerprint: str
    reason: str  # "new" or "changed"


@dataclass
class TickDecision:
    launches: list[Launch]
    waiting: list[ModelEntry]
    state: WatchState


def _is_stable(entry: ModelEntry, state: WatchState, now: float, settle_seconds: float) -> bool:
    if state.pending.get(entry.key) == entry.signature:
        return True
    return now - entry.newest_mtime >= settle_seconds


def decide(
    entries: list[ModelEntry],
    state: WatchState,
    now: float,
    cache_dir: Path | None = None,
    settle_seconds: float = DEFAULT_SETTLE_SECONDS,
) -> TickDecision:
    """Which entries to launch now, which to wait for, and the next cursor state.

    A changed signature whose content hash is unchanged (a ``touch``) updates
    the cursor without re-running anything.
    """
    launches: list[Launch] = []
    waiting: list[ModelEntry] = []
    new = WatchState(launched=dict(state.launched), pending={}, sweep=state.sweep, suite=dict(state.suite))
    for entry in entries:
        seen = state.launched.get(entry.key)
        if seen and seen["signature"] == entry.signature:
            continue
        if not _is_stable(entry, state, now, settle_seconds):
            new.pending[entry.key] = entry.signature
            waiting.append(entry)
            continue
        digest = fingerprint(entry, cache_dir)
        new.launched[entry.key] = {"signature": entry.signature, "fingerprint": digest}
        if seen and seen["fingerprint"] == digest:
            continue
        launches.append(Launch(entry, digest, "changed" if seen else "new"))
    return TickDecision(launches=launches, waiting=waiting, state=new)


def sweep_key(model: str, category: str) -> str:
    """A partition's place in the disk sweep's order (and in the cursor)."""
    return f"{model}/{category}"


def sweep_order(partitions: Sequence[tuple[str, str]], start: str) -> list[tuple[str, str]]:
    """Every partition once, in key order, beginning at the first at or after ``start`` and wrapping round.

    The disk sweep checks a few partitions per tick and keeps where it stopped
    in the cursor; resuming by key (not by position) keeps a pass going while
    models are added or removed, and a removed model's place is simply skipped.
    """
    ordered = sorted(partitions, key=lambda p: sweep_key(*p))
    first = next((i for i, p in enumerate(ordered) if sweep_key(*p) >= start), 0)
    return ordered[first:] + ordered[:first]

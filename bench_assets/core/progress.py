"""Progress lines for long steps: done / total, seconds per item, time left.

Generation and scoring log one of these per batch into the run's event log,
so a user watching a 40-minute step in the Dagster UI sees it move.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass
class Progress:
    label: str  # e.g. "clip_score: scored" or "images written"
    total: int
    done: int = 0
    seconds: float = 0.0

    def advance(self, items: int, seconds: float) -> str:
        """Count a finished batch and return the line to log."""
        self.done += items
        self.seconds += seconds
        return self.line()

    @property
    def seconds_per_item(self) -> float:
        return self.seconds / self.done if self.done else 0.0

    @property
    def seconds_left(self) -> float:
        return self.seconds_per_item * max(self.total - self.done, 0)

    def line(self) -> str:
        percent = 100.0 * self.done / self.total if self.total else 100.0
        return (f"{self.label} {self.done}/{self.total} ({percent:.0f}%), "
                f"{self.seconds_per_item:.2f} s/image, about {_duration(self.seconds_left)} left")

    def as_metadata(self) -> dict[str, float]:
        return {"done": self.done, "total": self.total, "seconds_per_image": round(self.seconds_per_item, 4)}


def _duration(seconds: float) -> str:
    seconds = int(round(seconds))
    if seconds < 90:
        return f"{seconds} s"
    minutes, seconds = divmod(seconds, 60)
    if minutes < 90:
        return f"{minutes} min {seconds:02d} s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours} h {minutes:02d} min"

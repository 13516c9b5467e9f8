"""The reference sensor's decisions, tick by tick: which model × reference partitions to (re)score.

Plain data in, plain data out (the Dagster sensor in ``defs/distribution.py``
only turns them into requests). The cursor remembers each reference set's
fingerprint and a stamp of each model's generated images (their manifest
files' sizes and mtimes). A new or changed reference set asks for every model
with images × that set; a model whose images are new or changed asks for that
model × every reference set. Nothing else is requested, so an unchanged
reference set is never re-scored, and a changed one invalidates exactly its
own partitions (the feature cache then re-extracts only its changed images).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Mapping


@dataclass
class ReferenceWatch:
    """The cursor: reference set -> fingerprint, model -> stamp of its images."""

    references: dict[str, str] = field(default_factory=dict)
    models: dict[str, str] = field(default_factory=dict)

    @classmethod
    def from_cursor(cls, cursor: str | None) -> "ReferenceWatch":
        data = json.loads(cursor) if cursor else {}
        return cls(dict(data.get("references", {})), dict(data.get("models", {})))

    def to_cursor(self) -> str:
        return json.dumps({"references": self.references, "models": self.models}, sort_keys=True)


@dataclass(frozen=True)
class ReferenceDecision:
    requests: list[tuple[str, str]]  # (model, reference) partitions to score
    new_references: list[str]  # partition keys to add
    removed_references: list[str]  # partition keys to delete (their folder or card is gone)
    state: ReferenceWatch


def decide_references(state: ReferenceWatch, references: Mapping[str, str], models: Mapping[str, str]) -> ReferenceDecision:
    """What to request given the current reference fingerprints and model image stamps (models without images: no stamp)."""
    changed_refs = sorted(name for name, fp in references.items() if state.references.get(name) != fp)
    changed_models = sorted(model for model, stamp in models.items() if state.models.get(model) != stamp)
    pairs = {(model, ref) for ref in changed_refs for model in models}
    pairs |= {(model, ref) for model in changed_models for ref in references}
    return ReferenceDecision(
        requests=sorted(pairs),
        new_references=sorted(set(references) - set(state.references)),
        removed_references=sorted(set(state.references) - set(references)),
        state=ReferenceWatch(dict(references), dict(models)),
    )

"""What a proposer is and what it proposes: the interface of the captioner and the tagger, and a proposal.

A proposer is shaped like a metric (``metrics/base.py``): a name, a
``version``, options over ``default_options``, a ``scorer_id`` naming its
weights and options, a ``tiny_scorer`` building random weights in code for
the demo and the tests, ``load(device, dtype)`` once per worker (through
``ensure_loaded``, which counts real loads) and then ``propose(images)``, one
answer per image. Instead of a score it returns what the person starts a
prompt from: a caption (the captioner) or objects with counts and colours
(the tagger). ``propose.propose_prompt`` merges the two into a
:class:`Proposal`, whose ``as_prompt_fields`` are a prompt line's ``prompt``
and ``metadata`` in the schema of ``prompts/prompt.py``: exactly what the
GenEval and TIFA metrics read (``objects: [{name, count, colour}]``).
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, ClassVar, Generic, Literal, Sequence, TypeVar

from bench_assets.metrics.base import TinyScorer, checked_options, options_id

if TYPE_CHECKING:
    from PIL import Image

Answer = TypeVar("Answer")
TextSource = Literal["caption", "objects", "none"]


@dataclass(frozen=True)
class ProposedObject:
    """One kind of object found in the image: its name, how many, and their colour (None when not told)."""

    name: str
    count: int = 1
    color: str | None = None

    def as_metadata(self) -> dict[str, Any]:
        """The object as prompt metadata writes it (``colour``, the key GenEval's importer and metric use)."""
        entry: dict[str, Any] = {"name": self.name, "count": self.count}
        if self.color:
            entry["colour"] = self.color
        return entry


@dataclass(frozen=True)
class Proposal:
    """A prompt proposed for an image: its text, its objects, and which proposers (and weights) said so.

    ``text_source``: "caption" (the captioner's text), "objects" (built from
    the tagged objects because the caption was empty or unusable) or "none"
    (neither had anything; the text is a placeholder the person replaces).
    ``caption`` is the captioner's raw answer, kept for the person to see.
    """

    text: str
    objects: list[ProposedObject] = field(default_factory=list)
    scorer_ids: dict[str, str] = field(default_factory=dict)
    text_source: TextSource = "caption"
    caption: str = ""

    def as_prompt_fields(self) -> dict[str, Any]:
        """``prompt`` and ``metadata`` of a prompt line; the caller adds ``id`` and ``category``."""
        metadata = {"objects": [obj.as_metadata() for obj in self.objects]} if self.objects else {}
        return {"prompt": self.text, "metadata": metadata}

    def as_json(self) -> dict[str, Any]:
        """Everything the workbench page shows: the prompt fields, where the text came from, the raw caption."""
        return {**self.as_prompt_fields(), "text_source": self.text_source, "caption": self.caption,
                "scorer_ids": dict(self.scorer_ids)}


class Proposer(ABC, Generic[Answer]):
    """Base class: subclasses set the class attributes and implement ``load`` and ``_propose``."""

    name: ClassVar[str]
    version: ClassVar[str]  # bump when what it proposes for the same image and weights changes
    default_options: ClassVar[dict[str, Any]] = {}
    cache_exempt_options: ClassVar[tuple[str, ...]] = ("batch_size",)
    description: ClassVar[str] = ""
    tiny_scorer: ClassVar[TinyScorer]
    # The metric whose configured options (``data/config.yaml``'s ``metrics:``) name this proposer's
    # weights, and which of its option keys they are: the proposer loads what that metric loads.
    borrows_from: ClassVar[str] = ""
    borrowed_options: ClassVar[tuple[str, ...]] = ()

    def __init__(self, options: dict[str, Any] | None = None) -> None:
        self.options: dict[str, Any] = checked_options(f"proposer {self.name}", self.default_options, options)
        self.loads = 0  # real loads of this instance: one per worker is the target
        self._loaded_on: tuple[str, str] | None = None

    @property
    def scorer_id(self) -> str:
        """``name@version:`` and the identity of its weights and options (files by size and mtime)."""
        return f"{self.name}@{self.version}:{options_id(self.options, self.cache_exempt_options)}"

    @classmethod
    def options_from_metrics(cls, metric_options: dict[str, dict[str, Any]]) -> dict[str, Any]:
        """This proposer's options taken from the metrics' configured options (the weights they name)."""
        borrowed = metric_options.get(cls.borrows_from) or {}
        return {key: borrowed[key] for key in cls.borrowed_options if key in borrowed}

    @abstractmethod
    def load(self, device: str, dtype: str = "fp32") -> None:
        """Load the model(s) onto ``device``; called through :meth:`ensure_loaded`."""

    def ensure_loaded(self, device: str, dtype: str = "fp32") -> bool:
        """Load unless already loaded on (device, dtype); True when it really loaded (counted in ``loads``)."""
        if self._loaded_on == (str(device), dtype):
            return False
        self.load(str(device), dtype)
        self._loaded_on = (str(device), dtype)
        self.loads += 1
        return True

    def propose(self, images: Sequence["Image.Image"]) -> list[Answer]:
        """One answer per image, in order; the proposer must be loaded."""
        if self._loaded_on is None:
            raise RuntimeError(f"proposer {self.name}: call ensure_loaded() before propose()")
        if not images:
            return []
        return self._propose([image.convert("RGB") for image in images])

    @abstractmethod
    def _propose(self, images: list["Image.Image"]) -> list[Answer]:
        """One answer per RGB image."""

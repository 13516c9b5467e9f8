"""The Modal backend's Dagster side: the Pipes client and the messages that come back.

Each call runs ``modal run bench_assets/compute/modal_app.py::run_partition``
through ``dagster_modal.ModalClient`` (a Pipes subprocess): the request goes
in as Pipes extras (``generation_extras``/``scoring_extras``), logs stream
back into the step's log, and the result (a generation report, or score
rows) comes back as one Pipes message, decoded here (``generation_report``/
``score_outcome``), from which the asset writes the warehouse exactly as for
a local run.

``local_invocation=True`` runs the same entrypoint with ``python -m`` and
Modal's ``.local()`` calls: what the tests use, and a way to debug the Modal
path on a laptop.

This module imports Dagster (Pipes is how the step talks to the entrypoint);
``compute.backend`` imports it only when the ``modal`` backend is built, and
the Modal containers never import it.
"""

from __future__ import annotations

import dataclasses
import sys
from contextlib import nullcontext
from pathlib import Path
from typing import Any, ContextManager, Mapping, Sequence

import dagster as dg
from dagster_modal import ModalClient

from bench_assets.compute.protocol import Log, StopCheck
from bench_assets.compute.modal_auth import ModalAuthError, require_modal_token, secrets_env
from bench_assets.storage.store import store_spec
from bench_assets.generation.generate import GenerationFailure, GenerationReport, GenerationRequest
from bench_assets.generation.pipelines import ModelLoadError
from bench_assets.generation.runtime import RuntimeOptions
from bench_assets.metrics.base import ImageItem
from bench_assets.metrics.runner import ScoreOutcome

APP_FILE = Path(__file__).resolve().with_name("modal_app.py")
ENTRYPOINT = f"{APP_FILE}::run_partition"


class BenchModalClient(ModalClient):
    """``ModalClient`` that finds the ``modal`` CLI next to this Python, or runs ``.local()``.

    ``dagster dev`` started from the Makefile does not have the virtualenv on
    PATH, so a bare ``modal`` would not be found.
    """

    def __init__(self, local_invocation: bool = False, env: Mapping[str, str] | None = None):
        super().__init__(project_directory=str(APP_FILE.parents[2]), env=env)
        self.local_invocation = local_invocation

    def run(self, *, func_ref: str, context: Any, extras: Any = None, env: Any = None) -> Any:  # type: ignore[override]
        if self.local_invocation:
            command = [sys.executable, "-m", "bench_assets.compute.modal_app"]
        else:
            command = [str(Path(sys.executable).parent / "modal"), "run", func_ref]
        return dg.PipesSubprocessClient.run(self, command=command, context=context, extras=extras, env=env)


# --------------------------------------------------------------------------- requests (Pipes extras)


def generation_extras(request: GenerationRequest, data_dir: str, runtime: RuntimeOptions) -> dict[str, Any]:
    """The entrypoint's ``generate`` request: plain JSON, the model named by its key in ``data_dir``."""
    return {
        "op": "generate",
        "data_dir": data_dir,
        "model": request.entry.key,
        "model_fingerprint": request.model_fingerprint,
        "category": request.category,
        "prompts": [dataclasses.asdict(p) for p in request.prompts],
        "settings": request.settings.as_dict(),
        "runtime": runtime.as_dict(),
        # The image store (a bucket: containers write it directly) and the rows already there.
        "images": store_spec(request.images), "known": list(request.known),
    }


def _item_json(item: ImageItem) -> dict[str, Any]:
    return item.as_json()


def scoring_extras(metric_name: str, options: dict[str, Any], items: Sequence[ImageItem],
                   existing: list[dict[str, Any]], data_dir: str) -> dict[str, Any]:
    """The entrypoint's ``score`` request: the items by key (and their store), the rows already stored."""
    return {
        "op": "score",
        "data_dir": data_dir,
        "metric": metric_name,
        "options": options,
        "items": [_item_json(i) for i in items],
        "images": store_spec(items[0].store) if items and items[0].store else None,
        "existing": existing,
    }


# --------------------------------------------------------------------------- results (Pipes messages)


def result_message(messages: Sequence[Any], kind: str) -> dict[str, Any]:
    """The entrypoint's result of ``kind``; a model that failed to load there fails here the same way."""
    messages = [m for m in messages if isinstance(m, dict)]
    for message in messages:
        if message.get("kind") == "model_load_error":
            raise ModelLoadError(message["message"])
        if message.get("kind") == kind:
            return message
    raise dg.Failure(description=f"the Modal entrypoint sent no {kind} result (messages: {len(messages)})")


def generation_report(message: dict[str, Any]) -> GenerationReport:
    data = dict(message["report"])
    data["failures"] = [GenerationFailure(**f) for f in data["failures"]]
    return GenerationReport(**data)


def score_outcome(message: dict[str, Any]) -> ScoreOutcome:
    return ScoreOutcome(
        rows=message["rows"],
        computed=message["computed"],
        cached=message["cached"],
        skipped_prompts=message["skipped_prompts"],
        gpu_seconds=message["gpu_seconds"],
    )


# --------------------------------------------------------------------------- the backend


@dataclasses.dataclass
class ModalPipesCompute:
    """One step's handle on the Modal backend (``ComputeBackend``; it needs the step's context for Pipes)."""

    context: Any
    data_dir: str
    runtime: RuntimeOptions
    local_invocation: bool = False
    modal_secret: str = ""  # the Modal Secret holding the object store's credentials, by name

    def _exchange(self, extras: dict[str, Any], kind: str) -> dict[str, Any]:
        """One Pipes session: the request out as extras, the result of ``kind`` back as a message."""
        if not self.local_invocation:
            try:
                require_modal_token()
            except ModalAuthError as exc:
                raise dg.Failure(description=str(exc), allow_retries=False) from None
        client = BenchModalClient(local_invocation=self.local_invocation)
        invocation = client.run(func_ref=ENTRYPOINT, context=self.context, extras=extras,
                                env=secrets_env(self.modal_secret))
        return result_message(invocation.get_custom_messages(), kind)

    def generate(self, request: GenerationRequest, log: Log = lambda _: None,
                 should_stop: StopCheck = lambda: False) -> GenerationReport:
        message = self._exchange(generation_extras(request, self.data_dir, self.runtime), "generation")
        report = generation_report(message)
        log(f"Modal: {report.generated} images in {message['wall_seconds']:.1f} s on {message['gpu_names']}")
        return report

    def score(self, metric_name: str, options: dict[str, Any], items: Sequence[ImageItem],
              existing: list[dict[str, Any]], log: Log = lambda _: None) -> ScoreOutcome:
        message = self._exchange(scoring_extras(metric_name, options, items, existing, self.data_dir), "scores")
        log(f"Modal: {message['computed']} rows computed on {message['gpu_names']}")
        return score_outcome(message)

    def stop_signals(self) -> ContextManager[StopCheck]:
        """Nothing to defer here: an interrupt goes straight to the ``modal run`` subprocess, which
        cancels the remote calls; images already returned stay."""
        return nullcontext(lambda: False)

"""Image -> proposal: the captioner's text and the tagger's objects, merged into one valid prompt.

The text is the caption when it is one (``captioner.usable_caption``); a
random-weight captioner's token soup, or an empty answer, is replaced by a
text built from the tagged objects ("two red cups and a dog"), and with no
objects either by a placeholder, so the proposal is always a prompt the
suite file accepts. The metadata are the tagged objects, whatever the text.

Both proposers must be loaded first (``ensure_loaded``, once per worker);
they run in this process on the device they were loaded on. The compute
backends' protocol (``compute/protocol.py``) has calls for a partition's
generation and scoring only, so there is no backend call to send this small
job through: the caller resolves the configured device and loads there.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Sequence

from bench_assets.metrics.proposers.base import Proposal, ProposedObject, Proposer
from bench_assets.metrics.proposers.captioner import usable_caption

if TYPE_CHECKING:
    from PIL import Image

PLACEHOLDER_TEXT = "an image"
NUMBER_WORDS = ("zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine", "ten",
                "eleven", "twelve", "thirteen", "fourteen", "fifteen", "sixteen")
# Plurals English spells otherwise than with -s/-es (COCO-80's irregular ones, last word of the name).
IRREGULAR_PLURALS = {"person": "people", "sheep": "sheep", "skis": "skis", "scissors": "scissors",
                     "mouse": "mice", "knife": "knives", "glasses": "glasses"}


def plural(name: str) -> str:
    """The plural of an object name (its last word): cup -> cups, bus -> buses, person -> people."""
    head, _, last = name.rpartition(" ")
    if last in IRREGULAR_PLURALS:
        word = IRREGULAR_PLURALS[last]
    elif last.endswith(("s", "x", "z", "ch", "sh")):
        word = last + "es"
    elif last.endswith("y") and last[-2:-1] not in tuple("aeiou"):
        word = last[:-1] + "ies"
    else:
        word = last + "s"
    return f"{head} {word}" if head else word


def object_phrase(obj: ProposedObject) -> str:
    """"a dog", "an orange cup", "two red cups"."""
    words = f"{obj.color} {obj.name}" if obj.color else obj.name
    if obj.count == 1:
        return f"{'an' if words[:1].lower() in 'aeiou' else 'a'} {words}"
    number = NUMBER_WORDS[obj.count] if obj.count < len(NUMBER_WORDS) else str(obj.count)
    return f"{number} {obj.color + ' ' if obj.color else ''}{plural(obj.name)}"


def objects_text(objects: Sequence[ProposedObject]) -> str:
    """The objects as a prompt: "a dog", "a cat and a dog", "two red cups, a dog and a kite" ("" if none)."""
    phrases = [object_phrase(obj) for obj in objects]
    if len(phrases) <= 1:
        return "".join(phrases)
    return f"{', '.join(phrases[:-1])} and {phrases[-1]}"


def merge_proposal(caption: str, objects: list[ProposedObject], scorer_ids: dict[str, str]) -> Proposal:
    """The proposal from one image's caption and objects: the caption's text if usable, else the objects'."""
    text, source = usable_caption(caption), "caption"
    if not text:
        text, source = objects_text(objects), "objects"
    if not text:
        text, source = PLACEHOLDER_TEXT, "none"
    return Proposal(text=text, objects=list(objects), scorer_ids=scorer_ids, text_source=source, caption=caption)


def propose_prompts(
    images: Sequence["Image.Image"], captioner: Proposer[str], tagger: Proposer[list[ProposedObject]]
) -> list[Proposal]:
    """One proposal per image: both proposers run on the whole list (batched), then merge per image."""
    captions = captioner.propose(images)
    tags = tagger.propose(images)
    scorer_ids = {captioner.name: captioner.scorer_id, tagger.name: tagger.scorer_id}
    return [merge_proposal(caption, objects, dict(scorer_ids)) for caption, objects in zip(captions, tags)]


def propose_prompt(
    image: "Image.Image", captioner: Proposer[str], tagger: Proposer[list[ProposedObject]]
) -> Proposal:
    """The proposal for one image (see ``propose_prompts``)."""
    return propose_prompts([image], captioner, tagger)[0]

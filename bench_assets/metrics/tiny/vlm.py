"""A tiny random-weight LLaVA (CLIP vision tower + Llama language model), built in code.

It has the architecture class of the default VQAScore/TIFA scorer
(``llava-hf/llava-1.5-7b-hf``: ``LlavaForConditionalGeneration`` loaded through
``AutoModelForImageTextToText``), a LLaVA-1.5 style chat template and a small
byte-level BPE tokenizer trained offline on a fixed word list, so that the
metrics load it through exactly the code path a real checkpoint takes
(``from_pretrained`` on a local folder) while nothing is downloaded.

"Yes", " Yes", "No", " No", colour names and small numbers are single tokens.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

IMAGE_TOKEN = "<image>"
# The same turn layout as llava-hf/llava-1.5-7b-hf's chat template:
# "USER: <image>\n{question} ASSISTANT:".
LLAVA_15_CHAT_TEMPLATE = (
    "{% for message in messages %}"
    "{% if message['role'] != 'system' %}{{ message['role'].upper() + ': ' }}{% endif %}"
    "{% for content in message['content'] | selectattr('type', 'equalto', 'image') %}{{ '<image>\n' }}{% endfor %}"
    "{% for content in message['content'] | selectattr('type', 'equalto', 'text') %}{{ content['text'] + ' ' }}{% endfor %}"
    "{% endfor %}"
    "{% if add_generation_prompt %}{{ 'ASSISTANT:' }}{% endif %}"
)

_WORDS = (
    "Yes No yes no USER ASSISTANT Does this figure show Please answer or Is there a an the How many are What "
    "color is Does image contain text left of right above below on top red orange yellow green blue purple "
    "pink brown black white gray grey 0 1 2 3 4 5 6 7 8 9 10 one two three four five cat dog car bicycle "
    "person bench book kite cup vase umbrella photo of"
).split()


def _tokenizer(special: list[str]) -> Any:
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    tok = Tokenizer(models.BPE(unk_token=None))
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    corpus = [" ".join(_WORDS)] * 20 + [w for w in _WORDS for _ in range(5)] + [f" {w}" for w in _WORDS for _ in range(5)]
    trainer = trainers.BpeTrainer(
        vocab_size=600,
        special_tokens=special,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tok.train_from_iterator(corpus, trainer=trainer)
    return PreTrainedTokenizerFast(
        tokenizer_object=tok,
        bos_token="<s>",
        eos_token="</s>",
        pad_token="<pad>",
        unk_token=None,
        extra_special_tokens={"image_token": IMAGE_TOKEN},
    )


def _llava_config(tokenizer: Any, image_size: int, patch_size: int) -> Any:
    """LLaVA-1.5's layout at tiny widths: a 2-layer CLIP vision tower and a 2-layer Llama."""
    from transformers import CLIPVisionConfig, LlamaConfig, LlavaConfig

    vision = CLIPVisionConfig(
        hidden_size=32,
        intermediate_size=64,
        num_hidden_layers=2,
        num_attention_heads=2,
        image_size=image_size,
        patch_size=patch_size,
        projection_dim=32,
    )
    text = LlamaConfig(
        vocab_size=len(tokenizer),
        hidden_size=32,
        intermediate_size=64,
        num_hidden_layers=2,
        num_attention_heads=2,
        num_key_value_heads=2,
        max_position_embeddings=256,
        pad_token_id=tokenizer.pad_token_id,
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
    )
    return LlavaConfig(
        vision_config=vision,
        text_config=text,
        image_token_index=tokenizer.convert_tokens_to_ids(IMAGE_TOKEN),
        vision_feature_select_strategy="default",
        vision_feature_layer=-2,
        projector_hidden_act="gelu",
    )


def _llava_processor(tokenizer: Any, image_size: int, patch_size: int) -> Any:
    from transformers import CLIPImageProcessor, LlavaProcessor

    image_processor = CLIPImageProcessor(
        size={"shortest_edge": image_size},
        crop_size={"height": image_size, "width": image_size},
        do_center_crop=True,
    )
    return LlavaProcessor(
        image_processor=image_processor,
        tokenizer=tokenizer,
        patch_size=patch_size,
        vision_feature_select_strategy="default",
        num_additional_image_tokens=1,
        chat_template=LLAVA_15_CHAT_TEMPLATE,
    )


def build_tiny_vlm(out_dir: Path, seed: int = 0) -> dict[str, Any]:
    """Write a tiny random-weight LLaVA + processor to ``out_dir``; return VqaScore/TifaScore/DsgScore options.

    The global torch RNG is left untouched. The folder holds ``config.json``,
    ``model.safetensors`` and the processor files (tokenizer, image processor,
    chat template).
    """
    import torch
    from transformers import LlavaForConditionalGeneration

    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    tokenizer = _tokenizer(["<pad>", "<s>", "</s>", IMAGE_TOKEN])
    tokenizer.add_bos_token = True
    image_size, patch_size = 32, 8
    config = _llava_config(tokenizer, image_size, patch_size)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = LlavaForConditionalGeneration(config)
        # Random init is small (std 0.02): scale the LM head so that answers differ visibly.
        with torch.no_grad():
            model.lm_head.weight.mul_(20.0)
    model.eval()
    model.save_pretrained(out_dir, safe_serialization=True)
    _llava_processor(tokenizer, image_size, patch_size).save_pretrained(out_dir)
    return {"model": str(out_dir)}

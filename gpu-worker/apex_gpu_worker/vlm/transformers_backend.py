"""In-process vision-language model (SmolVLM / Idefics3 class) with constrained JSON decoding."""

import threading

import torch
from PIL import Image
from transformers import AutoModelForImageTextToText, AutoProcessor

from .answers import max_new_tokens
from .compiled_decoding import MAX_ROWS, check_compiled_decoding, decode_options
from .json_decoding import JsonConstraint


class TransformersBackend:
    def __init__(self, model: str, device: str, dtype: torch.dtype, max_new_tokens: int, compile: bool = False,
                 cache_length: int = 4096):
        check_compiled_decoding(compile, device)  # before the model loads
        self._decoding = decode_options(compile, cache_length)
        self._processor = AutoProcessor.from_pretrained(model)
        self._processor.tokenizer.padding_side = "left"  # a batch's answers all start where its prompts end
        self._model = AutoModelForImageTextToText.from_pretrained(model, dtype=dtype).to(device).eval()
        self._device = device
        self._max_new_tokens = max_new_tokens
        stop = self._model.generation_config.eos_token_id
        self._json = JsonConstraint(
            self._processor.tokenizer,
            vocab_size=self._model.config.text_config.vocab_size,
            stop_token_ids=stop if isinstance(stop, list) else [stop],
        )
        self._lock = threading.Lock()  # one generation at a time on the shared model

    def warm(self, schemas: tuple[dict, ...]) -> dict:
        """Every schema's JSON grammar compiled before the first job, which would otherwise pay it;
        with compiled decoding, the decoding graph of every batch size too (a few tokens each)."""
        for schema in schemas:
            self._json.compile(schema)
        warmed = {"backend": "transformers", "grammars_compiled": self._json.grammars_compiled}
        if self._decoding:
            blank = Image.new("RGB", (512, 512), "grey")
            for rows in range(1, MAX_ROWS + 1):
                self.complete_batch([([blank], "Describe the image.")] * rows, schemas[0], 0.0, tokens=4)
            warmed["decoding_compiled_for_rows"] = MAX_ROWS
        return warmed

    def complete(self, images: list[Image.Image], instruction: str, schema: dict, temperature: float) -> str:
        return self.complete_batch([(images, instruction)], schema, temperature)[0]

    def complete_batch(self, requests: list[tuple[list[Image.Image], str]], schema: dict, temperature: float,
                       tokens: int | None = None) -> list[str]:
        """One generate for every request: the prompts are left-padded to the longest (a candidate's
        images at one size tile alike, so a validation's prompts are the same length and nothing is
        padded), each row decoded under its own copy of the schema's grammar, for up to the schema's
        answer budget in tokens (`tokens`: fewer, for the warm-up)."""
        texts = [self._processor.apply_chat_template(
            [{"role": "user", "content": [{"type": "image"} for _ in images] + [{"type": "text", "text": instruction}]}],
            add_generation_prompt=True) for images, instruction in requests]
        images = [list(images) for images, _ in requests]
        inputs = self._processor(text=texts, images=images if any(images) else None, padding=True, return_tensors="pt").to(self._device)
        prompt_length = inputs["input_ids"].shape[1]
        sampling = {"do_sample": True, "temperature": temperature} if temperature > 0 else {"do_sample": False}
        with self._lock, torch.inference_mode():
            output = self._model.generate(
                **inputs,
                max_new_tokens=tokens or max_new_tokens(schema, self._max_new_tokens),
                logits_processor=[self._json.logits_processor(schema)],
                pad_token_id=self._processor.tokenizer.pad_token_id,
                **sampling,
                **self._decoding,
            )
        return self._processor.tokenizer.batch_decode(output[:, prompt_length:], skip_special_tokens=True)

"""In-process vision-language model (SmolVLM / Idefics3 class) with constrained JSON decoding."""

import threading

import torch
from PIL import Image
from transformers import AutoModelForImageTextToText, AutoProcessor

from .json_decoding import JsonConstraint


class TransformersBackend:
    def __init__(self, model: str, device: str, dtype: torch.dtype, max_new_tokens: int):
        self._processor = AutoProcessor.from_pretrained(model)
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

    def complete(self, images: list[Image.Image], instruction: str, schema: dict, temperature: float) -> str:
        content = [{"type": "image"} for _ in images] + [{"type": "text", "text": instruction}]
        text = self._processor.apply_chat_template([{"role": "user", "content": content}], add_generation_prompt=True)
        inputs = self._processor(text=text, images=images or None, return_tensors="pt").to(self._device)
        prompt_length = inputs["input_ids"].shape[1]
        sampling = {"do_sample": True, "temperature": temperature} if temperature > 0 else {"do_sample": False}
        with self._lock, torch.inference_mode():
            output = self._model.generate(
                **inputs,
                max_new_tokens=self._max_new_tokens,
                logits_processor=[self._json.logits_processor(schema)],
                **sampling,
            )
        return self._processor.tokenizer.decode(output[0, prompt_length:], skip_special_tokens=True)

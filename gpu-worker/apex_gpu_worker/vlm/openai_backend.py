"""Any OpenAI-compatible chat-completions server with image input and JSON-schema structured output
(vLLM serving SmolVLM2 in production)."""

import base64
import io
from concurrent.futures import ThreadPoolExecutor

import httpx
from PIL import Image

from ..contracts.step_errors import ModelServerRefused
from .answers import max_new_tokens


def _data_url(image: Image.Image) -> str:
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode()


class OpenAIBackend:
    def __init__(self, base_url: str, model: str, api_key: str | None, max_tokens: int, timeout_s: float):
        headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
        self._client = httpx.Client(base_url=base_url.rstrip("/"), headers=headers, timeout=timeout_s)
        self._model = model
        self._max_tokens = max_tokens

    def complete(self, images: list[Image.Image], instruction: str, schema: dict, temperature: float) -> str:
        content = [{"type": "image_url", "image_url": {"url": _data_url(image)}} for image in images]
        content.append({"type": "text", "text": instruction})
        response = self._client.post(
            "/chat/completions",
            json={
                "model": self._model,
                "messages": [{"role": "user", "content": content}],
                "max_tokens": max_new_tokens(schema, self._max_tokens),
                "temperature": temperature,
                "response_format": {"type": "json_schema", "json_schema": {"name": "answer", "schema": schema, "strict": True}},
            },
        )
        # 5xx, 408 and 429 raise plain errors that BullMQ retries; other 4xx are configuration errors.
        if 400 <= response.status_code < 500 and response.status_code not in (408, 429):
            raise ModelServerRefused(f"VLM server refused the request: HTTP {response.status_code} {response.text[:300]}")
        if response.is_error:  # not raise_for_status(): its message names the server's URL, and callers read it
            raise RuntimeError(f"VLM server error: HTTP {response.status_code}")
        return response.json()["choices"][0]["message"]["content"] or ""

    def complete_batch(self, requests: list[tuple[list[Image.Image], str]], schema: dict, temperature: float) -> list[str]:
        """Every request at once, each on its own connection: the server batches what arrives
        together (vLLM's continuous batching), so n answers take about the time of the longest."""
        if len(requests) == 1:
            return [self.complete(*requests[0], schema, temperature)]
        with ThreadPoolExecutor(max_workers=len(requests), thread_name_prefix="vlm-request") as pool:
            return list(pool.map(lambda request: self.complete(*request, schema, temperature), requests))

    def warm(self, schemas: tuple[dict, ...]) -> dict:
        """Nothing to build here: the server compiles its own grammars (vLLM caches them per schema)."""
        return {"backend": "openai", "grammars_compiled": 0}

    def close(self) -> None:
        self._client.close()

"""JSON-schema constrained decoding for in-process transformers models, through xgrammar: the model
can only emit tokens that keep its answer valid JSON for the schema, with no free whitespace (a
weak or random model otherwise pads forever)."""

import json
from functools import lru_cache

import xgrammar
from xgrammar.contrib.hf import LogitsProcessor


class JsonConstraint:
    def __init__(self, tokenizer, vocab_size: int, stop_token_ids: list[int]):
        info = xgrammar.TokenizerInfo.from_huggingface(tokenizer, vocab_size=vocab_size, stop_token_ids=stop_token_ids)
        self._compiler = xgrammar.GrammarCompiler(info, max_threads=2)
        self._compiled = lru_cache(maxsize=16)(self._compile)
        self.grammars_compiled = 0  # how many schemas' grammars this process has compiled (each once)

    def _compile(self, schema_text: str):
        self.grammars_compiled += 1
        return self._compiler.compile_json_schema(schema_text, any_whitespace=False)

    def compile(self, schema: dict):
        """The schema's grammar, compiled on first use (10-15 s for a full-size model's vocabulary)."""
        return self._compiled(json.dumps(schema, sort_keys=True))

    def logits_processor(self, schema: dict) -> LogitsProcessor:
        """A fresh processor for one `generate` call (it keeps per-call matcher state)."""
        return LogitsProcessor(self.compile(schema))

"""LoRA adapters on a resident diffusion pipeline (text-to-image or portrait editing): base adapters from config, loaded once; per-request
adapters downloaded from the Hugging Face Hub (the deployment's token), cached on disk by the Hub
client and in memory as loaded adapters, least recently used evicted past a bound."""

import hashlib
import logging
import os
from collections import OrderedDict
from dataclasses import dataclass, field

from huggingface_hub import hf_hub_download, list_repo_files
from huggingface_hub.errors import (
    EntryNotFoundError,
    GatedRepoError,
    LocalEntryNotFoundError,
    RepositoryNotFoundError,
    RevisionNotFoundError,
)

from ..contracts.step_errors import LoraUnusable

log = logging.getLogger("apex_gpu_worker.loras")

# Under torch.compile every adapter slot exists before compiling, as a zero LoRA on these modules;
# a request's LoRA is then hotswapped into a slot and must target a subset of them.
HOTSWAP_TARGETS = ["to_q", "to_k", "to_v", "to_out.0"]


@dataclass(frozen=True)
class LoraRequest:
    repo: str
    weight_name: str | None
    scale: float
    # A caller's own Hub token (opened from the job's sealed secrets) for a private repo.
    token: str | None = field(default=None, repr=False)

    @property
    def adapter_name(self) -> str:
        # A token is part of the identity: an adapter loaded with one caller's access is never
        # handed to a request that did not present the same token.
        digest = hashlib.sha256(f"{self.repo}|{self.weight_name or ''}|{self.token or ''}".encode()).hexdigest()[:12]
        return f"lora_{digest}"


class LoraRegistry:
    def __init__(self, pipe, cache_dir, token: str | None, max_loaded: int, namespace: str = "lora"):
        # Adapter names start with `namespace`: two pipelines sharing a text encoder must not load
        # two adapters under one name into it.
        self._namespace = namespace
        self._pipe = pipe
        self._cache_dir = str(cache_dir)
        self._token = token
        self._max_loaded = max_loaded
        self._hotswap = False
        self._base: list[LoraRequest] = []
        self._loaded: OrderedDict[str, str] = OrderedDict()  # adapter name -> slot it occupies
        self._free_slots = [f"{namespace}_slot_{i}" for i in range(max_loaded)]

    def _base_name(self, lora: LoraRequest) -> str:
        return f"{self._namespace}_base_{lora.adapter_name}"

    @property
    def loaded(self) -> list[str]:
        return list(self._loaded)

    def load_base(self, loras: list[LoraRequest]) -> None:
        for lora in loras:
            self._pipe.load_lora_weights(self._file(lora), adapter_name=self._base_name(lora))
        self._base = loras
        self.activate([])

    def reserve_slots_for_hotswap(self, rank: int) -> None:
        """Creates every slot as a zero adapter of the largest rank and pads for hotswap, so loading
        a request's LoRA later replaces weights in place and a compiled transformer is reused."""
        from peft import LoraConfig
        from peft.utils.hotswap import prepare_model_for_compiled_hotswap

        for slot in self._free_slots:
            self._pipe.transformer.add_adapter(LoraConfig(r=rank, lora_alpha=rank, target_modules=HOTSWAP_TARGETS), adapter_name=slot)
        prepare_model_for_compiled_hotswap(self._pipe.transformer, target_rank=rank)
        self._hotswap = True
        self.activate([])

    def activate(self, requested: list[LoraRequest]) -> None:
        """Makes exactly the base adapters plus `requested` active, with their scales."""
        names, weights = [], []
        for lora in self._base:
            names.append(self._base_name(lora))
            weights.append(lora.scale)
        for lora in requested:
            names.append(self._ensure_loaded(lora))
            weights.append(lora.scale)
        if names:
            self._pipe.set_adapters(names, adapter_weights=weights)
        elif self._loaded or self._base:
            self._pipe.disable_lora()

    def _ensure_loaded(self, lora: LoraRequest) -> str:
        name = lora.adapter_name
        if name in self._loaded:
            self._loaded.move_to_end(name)
            return self._loaded[name]
        path = self._file(lora)
        if self._free_slots:
            slot = self._free_slots.pop(0)
        else:
            evicted, slot = self._loaded.popitem(last=False)
            log.info("evicting LoRA adapter", extra={"fields": {"adapter": evicted}})
            if not self._hotswap:
                self._pipe.delete_adapters(slot)
        hotswap = self._hotswap
        # Adapters live in fixed slots: with hotswap the weights of a slot are replaced in place, so
        # a compiled transformer is not recompiled; without, an evicted slot is deleted and reloaded.
        try:
            self._pipe.load_lora_weights(path, adapter_name=slot, hotswap=hotswap)
        except Exception as err:
            self._free_slots.append(slot)  # with hotswap it still holds earlier weights, never activated
            reason = str(err).replace(path, os.path.basename(path))  # the caller sees it: no server path
            raise LoraUnusable(f"LoRA {lora.repo} cannot be applied to this model: {reason}", repo=lora.repo) from err
        if slot not in self._transformer_adapters():
            self._free_slots.append(slot)
            raise LoraUnusable(f"LoRA {lora.repo} has no weights for this model's transformer", repo=lora.repo)
        self._loaded[name] = slot
        return slot

    def _transformer_adapters(self) -> set[str]:
        return set(getattr(self._pipe.transformer, "peft_config", {}))

    def _file(self, lora: LoraRequest) -> str:
        try:
            token = lora.token or self._token
            weight_name = lora.weight_name or self._single_safetensors(lora.repo, token)
            return hf_hub_download(lora.repo, weight_name, token=token, cache_dir=self._cache_dir)
        except LocalEntryNotFoundError as err:  # first: it is a subclass of EntryNotFoundError
            raise LoraUnusable(f"LoRA {lora.repo} is not in the local cache and the Hub is offline", repo=lora.repo) from err
        except (RepositoryNotFoundError, GatedRepoError) as err:
            raise LoraUnusable(f"LoRA repo {lora.repo} does not exist or this deployment has no access to it", repo=lora.repo) from err
        except (EntryNotFoundError, RevisionNotFoundError) as err:
            raise LoraUnusable(f"LoRA repo {lora.repo} has no file {lora.weight_name!r}", repo=lora.repo) from err

    def _single_safetensors(self, repo: str, token: str | None) -> str:
        try:
            files = [f for f in list_repo_files(repo, token=token) if f.endswith(".safetensors")]
        except LocalEntryNotFoundError:
            files = []  # offline: only an explicit weight_name can be served from the cache
        if len(files) != 1:
            raise LoraUnusable(f"LoRA repo {repo} needs weight_name: it has {len(files)} .safetensors files", repo=repo)
        return files[0]

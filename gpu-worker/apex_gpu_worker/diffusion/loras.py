"""LoRA adapters on a resident diffusion pipeline (text-to-image or portrait editing): base adapters from config, loaded once; per-request
adapters downloaded from the Hugging Face Hub (the deployment's token), cached on disk by the Hub
client and in memory as loaded adapters, least recently used evicted past a bound; and an identity's
trained LoRA, read from the deployment's bucket into the same slots and cached with them."""

import hashlib
import logging
import os
import re
import tempfile
from collections import OrderedDict
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

from huggingface_hub import hf_hub_download, list_repo_files
from huggingface_hub.errors import (
    EntryNotFoundError,
    GatedRepoError,
    LocalEntryNotFoundError,
    RepositoryNotFoundError,
    RevisionNotFoundError,
)

from ..contracts.step_errors import IdentityLoraUnusable, LoraUnusable, StepError
from ..training.model_inputs import Flux1Inputs, Flux2Inputs

log = logging.getLogger("apex_gpu_worker.loras")

# Under torch.compile every adapter slot exists before compiling, as a zero LoRA on these modules;
# a request's LoRA is then hotswapped into a slot and must target a subset of them: the attention
# projections Hub LoRAs train and, on the portrait (editing) model only, every block linear an
# identity's LoRA is trained on (either FLUX family's; a pattern matches only the modules a model
# has). The text-to-image model never receives an identity's LoRA: its slots stay small.
ATTENTION_PROJECTIONS = ("to_q", "to_k", "to_v", "to_out.0")
HUB_HOTSWAP_TARGETS = rf".*\.(?:{'|'.join(map(re.escape, ATTENTION_PROJECTIONS))})"
IDENTITY_HOTSWAP_TARGETS = "|".join([HUB_HOTSWAP_TARGETS, f"(?:{Flux1Inputs.lora_targets})", f"(?:{Flux2Inputs.lora_targets})"])


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

    def unusable(self, detail: str) -> StepError:
        return LoraUnusable(f"LoRA {self.repo} {detail}", repo=self.repo)


@dataclass(frozen=True)
class StoredLoraRequest:
    """An identity's trained LoRA in the deployment's bucket, read by the worker's object store
    (`fetch`), never from the Hub. One version of the object is one adapter (its ETag is part of the
    name): a LoRA written again under the same key is loaded again, not served from the cache."""

    key: str
    etag: str
    scale: float
    fetch: Callable[[str], bytes | None] = field(compare=False, repr=False)  # None: no such object

    @property
    def adapter_name(self) -> str:
        digest = hashlib.sha256(f"s3|{self.key}|{self.etag}".encode()).hexdigest()[:12]
        return f"lora_{digest}"

    def unusable(self, detail: str) -> StepError:
        return IdentityLoraUnusable(f"the identity's LoRA {self.key} {detail}")


AnyLoraRequest = LoraRequest | StoredLoraRequest


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
        self.stored_fetches = 0  # identity LoRAs read from the bucket (the rest were loaded already)

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

    def reserve_slots_for_hotswap(self, rank: int, targets: str = HUB_HOTSWAP_TARGETS) -> None:
        """Creates every slot as a zero adapter of the largest rank on `targets` and pads for
        hotswap, so loading a request's LoRA later replaces weights in place and a compiled
        transformer is reused."""
        from peft import LoraConfig
        from peft.utils.hotswap import prepare_model_for_compiled_hotswap

        for slot in self._free_slots:
            self._pipe.transformer.add_adapter(LoraConfig(r=rank, lora_alpha=rank, target_modules=targets), adapter_name=slot)
        prepare_model_for_compiled_hotswap(self._pipe.transformer, target_rank=rank)
        self._hotswap = True
        self.activate([])

    def activate(self, requested: list[AnyLoraRequest]) -> None:
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

    def _ensure_loaded(self, lora: AnyLoraRequest) -> str:
        name = lora.adapter_name
        if name in self._loaded:
            self._loaded.move_to_end(name)
            return self._loaded[name]
        with self._weights(lora) as path:
            return self._load_into_slot(lora, path)

    def _load_into_slot(self, lora: AnyLoraRequest, path: str) -> str:
        name = lora.adapter_name
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
            raise lora.unusable(f"cannot be applied to this model: {reason}") from err
        if slot not in self._transformer_adapters():
            self._free_slots.append(slot)
            raise lora.unusable("has no weights for this model's transformer")
        self._loaded[name] = slot
        return slot

    def _transformer_adapters(self) -> set[str]:
        return set(getattr(self._pipe.transformer, "peft_config", {}))

    @contextmanager
    def _weights(self, lora: AnyLoraRequest) -> Iterator[str]:
        """The LoRA as a file diffusers loads (its safetensors metadata, such as lora_alpha, is read
        from the file): a Hub LoRA's file in the Hub cache; an identity's in a private temporary
        folder that is gone once it is loaded, so no copy of a person's LoRA outlives its erasure on disk."""
        if isinstance(lora, LoraRequest):
            yield self._file(lora)
            return
        data = lora.fetch(lora.key)  # any other failure may pass: the step is retried
        if data is None:
            raise lora.unusable("is not in the bucket")
        self.stored_fetches += 1
        with tempfile.TemporaryDirectory(prefix="apex-identity-lora-") as folder:
            path = os.path.join(folder, "lora.safetensors")
            with open(path, "wb") as file:
                file.write(data)
            self._check_fits(lora, path)
            yield path

    def _check_fits(self, lora: StoredLoraRequest, path: str) -> None:
        """An identity's LoRA must name this transformer's layers with their shapes: diffusers loads
        the layers that match and only warns about the rest, so a LoRA trained on another model
        family (a training base other than the portrait model's) would be applied in part."""
        from safetensors import safe_open

        try:
            with safe_open(path, "pt") as file:
                shapes = {key: file.get_slice(key).get_shape() for key in file.keys()}
        except Exception as err:
            raise lora.unusable("is not a safetensors file") from err
        modules = dict(self._pipe.transformer.named_modules())
        downs = [key for key in shapes if key.endswith(".lora_A.weight")]
        if not downs:
            raise lora.unusable("has no LoRA layers")
        misfits = [key for key in downs if not _fits(modules.get(key.removeprefix("transformer.").removesuffix(".lora_A.weight")),
                                                     shapes[key], shapes.get(key.replace(".lora_A.weight", ".lora_B.weight")))]
        if misfits:
            raise lora.unusable(f"was not made for this model: {len(misfits)} of its {len(downs)} layers do not fit the transformer's")

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


def _fits(module, down_shape: list[int], up_shape: list[int] | None) -> bool:
    """A LoRA layer's down (rank x in) and up (out x rank) projections fit a linear layer."""
    return (module is not None and up_shape is not None and len(down_shape) == 2 and len(up_shape) == 2
            and down_shape[1] == getattr(module, "in_features", None) and up_shape[0] == getattr(module, "out_features", None))

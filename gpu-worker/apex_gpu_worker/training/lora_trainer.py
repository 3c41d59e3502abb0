"""Our own LoRA training loop on a pipeline's transformer: latents and text embeddings computed
once, the flow-matching loss, AdamW (8-bit on CUDA where bitsandbytes is installed), bf16 weights
with fp32 LoRA parameters on CUDA, gradient checkpointing, a checkpoint every N steps, cancellation
between steps, and a diffusers-loadable LoRA at the end."""

import logging
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import torch
from PIL import Image

from .checkpoint import TrainingCheckpoint
from .flow_matching import noisy_latents, sample_sigmas, velocity_target
from .model_inputs import Sample, inputs_for
from .recipe import TrainingRecipe

log = logging.getLogger("apex_gpu_worker.training")

ADAPTER = "identity-training"
LORA_FILE = "pytorch_lora_weights.safetensors"


@dataclass
class TrainingProgress:
    step: int
    total: int
    loss: float


@dataclass
class TrainingOutcome:
    steps_done: int
    cancelled: bool
    losses: list[float]


def encode_photo(pipe, family, image: Image.Image, caption: str, side: int) -> Sample:
    """A prepared photo at the training resolution (square: the prepare step frames it)."""
    pixels = pipe.image_processor.preprocess(image.convert("RGB"), height=side, width=side)
    return family.encode(pixels, caption)


def flow_matching_loss(family, transformer, sample: Sample, noise: torch.Tensor, sigmas: torch.Tensor) -> torch.Tensor:
    clean = sample.latents.float()
    prediction = family.predict(transformer, noisy_latents(clean, noise, sigmas), sigmas, sample)
    return torch.nn.functional.mse_loss(prediction.float(), velocity_target(clean, noise))


@torch.no_grad()
def evaluation_loss(family, transformer, samples: list[Sample], seed: int = 1234, draws: int = 8) -> float:
    """The loss over fixed noise and noise levels: comparable before and after training, and for
    a transformer with a LoRA loaded from its file."""
    generator = torch.Generator("cpu").manual_seed(seed)
    total = 0.0
    for sample in samples:
        for _ in range(draws):
            sigmas = sample_sigmas(1, generator, transformer.device)
            noise = torch.randn(sample.latents.shape, generator=generator).to(transformer.device)
            total += float(flow_matching_loss(family, transformer, sample, noise, sigmas))
    return total / (len(samples) * draws)


class LoraTrainer:
    """Trains one adapter on `pipe`'s transformer. The pipeline is the trainer's own (training runs
    in its own worker pool): its base weights stay frozen, and `close()` removes the adapter."""

    def __init__(self, pipe, recipe: TrainingRecipe, images: list[Image.Image], captions: list[str]):
        if len(images) != len(captions) or not images:
            raise ValueError("training needs one caption per photo, and at least one photo")
        self.pipe = pipe
        self.recipe = recipe
        self.family = inputs_for(pipe)
        self.transformer = pipe.transformer
        self.device = self.transformer.device
        self.samples = [encode_photo(pipe, self.family, image, caption, recipe.resolution) for image, caption in zip(images, captions)]
        self._add_adapter()
        self.optimizer = self._optimizer()
        self.generator = torch.Generator("cpu").manual_seed(recipe.seed)
        self.step = 0
        self.losses: list[float] = []

    def _add_adapter(self):
        from peft import LoraConfig

        self.transformer.requires_grad_(False)
        rank = self.recipe.rank
        config = LoraConfig(r=rank, lora_alpha=rank, init_lora_weights="gaussian", target_modules=self.family.lora_targets)
        with torch.random.fork_rng(devices=[]):  # the same seed, the same starting adapter: runs are repeatable
            torch.manual_seed(self.recipe.seed)
            self.transformer.add_adapter(config, adapter_name=ADAPTER)
        self.transformer.set_adapter(ADAPTER)
        self.parameters = [p for n, p in self.transformer.named_parameters() if ADAPTER in n]
        for parameter in self.parameters:
            parameter.requires_grad_(True)
            parameter.data = parameter.data.float()  # fp32 LoRA weights beside bf16 base weights
        if self.recipe.gradient_checkpointing:
            self.transformer.enable_gradient_checkpointing()
        self.transformer.train()

    def _optimizer(self) -> torch.optim.Optimizer:
        """8-bit AdamW on CUDA (bitsandbytes, in the GPU image: requirements-cuda.txt), torch's
        AdamW elsewhere; which one is logged, since a missing bitsandbytes only costs memory."""
        if self.device.type == "cuda":
            try:
                import bitsandbytes as bnb

                log.info("training optimizer", extra={"fields": {"optimizer": "AdamW8bit"}})
                return bnb.optim.AdamW8bit(self.parameters, lr=self.recipe.learning_rate, weight_decay=1e-4)
            except ImportError:
                log.warning("bitsandbytes is not installed: training with torch's AdamW (fp32 optimizer state)")
        log.info("training optimizer", extra={"fields": {"optimizer": "AdamW"}})
        return torch.optim.AdamW(self.parameters, lr=self.recipe.learning_rate, weight_decay=1e-4)

    def adapter_state(self) -> dict[str, torch.Tensor]:
        from peft.utils import get_peft_model_state_dict

        return {k: v.detach().cpu().clone() for k, v in get_peft_model_state_dict(self.transformer, adapter_name=ADAPTER).items()}

    def checkpoint(self) -> TrainingCheckpoint:
        return TrainingCheckpoint(self.step, self.adapter_state(), self.optimizer.state_dict(), self.generator.get_state(), list(self.losses))

    def resume(self, checkpoint: TrainingCheckpoint):
        from peft.utils import set_peft_model_state_dict

        set_peft_model_state_dict(self.transformer, checkpoint.adapter, adapter_name=ADAPTER)  # copied into the fp32 parameters
        self.optimizer.load_state_dict(checkpoint.optimizer)
        self.generator.set_state(checkpoint.generator)
        self.step = checkpoint.step
        self.losses = list(checkpoint.losses)

    def loss(self, sample: Sample, noise: torch.Tensor, sigmas: torch.Tensor) -> torch.Tensor:
        return flow_matching_loss(self.family, self.transformer, sample, noise, sigmas)

    def train_step(self) -> float:
        index = int(torch.randint(len(self.samples), (1,), generator=self.generator))
        sample = self.samples[index]
        sigmas = sample_sigmas(1, self.generator, self.device)
        noise = torch.randn(sample.latents.shape, generator=self.generator).to(self.device)
        with torch.autocast(self.device.type, dtype=torch.bfloat16, enabled=self.device.type == "cuda"):
            loss = self.loss(sample, noise, sigmas)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(self.parameters, 1.0)
        self.optimizer.step()
        self.optimizer.zero_grad(set_to_none=True)
        self.step += 1
        value = float(loss.detach())
        self.losses = (self.losses + [value])[-50:]
        return value

    def run(
        self,
        on_progress: Callable[[TrainingProgress], None] = lambda progress: None,
        should_stop: Callable[[], bool] = lambda: False,
        on_checkpoint: Callable[[TrainingCheckpoint], None] = lambda checkpoint: None,
    ) -> TrainingOutcome:
        """Steps until `recipe.steps`, checking `should_stop` between steps (cancellation ends the
        run within one step) and handing a checkpoint over every `checkpoint_every` steps."""
        total = self.recipe.steps
        while self.step < total:
            if should_stop():
                return TrainingOutcome(self.step, True, self.losses)
            loss = self.train_step()
            on_progress(TrainingProgress(self.step, total, loss))
            if self.step % self.recipe.checkpoint_every == 0 and self.step < total:
                on_checkpoint(self.checkpoint())
        return TrainingOutcome(self.step, False, self.losses)

    def evaluation_loss(self) -> float:
        self.transformer.eval()
        try:
            return evaluation_loss(self.family, self.transformer, self.samples)
        finally:
            self.transformer.train()

    def export_lora(self) -> bytes:
        """The adapter as the `.safetensors` file diffusers' `load_lora_weights` reads."""
        with tempfile.TemporaryDirectory() as folder:
            type(self.pipe).save_lora_weights(folder, transformer_lora_layers=self.adapter_state(), safe_serialization=True)
            return (Path(folder) / LORA_FILE).read_bytes()

    def close(self):
        """Takes the adapter out again, so the pipeline can train the next identity."""
        self.transformer.eval()
        if self.recipe.gradient_checkpointing:
            self.transformer.disable_gradient_checkpointing()
        self.transformer.delete_adapters(ADAPTER)

"""What a training run is asked to do, and the bounds it must stay within."""

from dataclasses import dataclass


@dataclass(frozen=True)
class TrainingRecipe:
    """Defaults near the trainers users compare us with: Replicate's flux-dev-lora-trainer's 1,000
    steps, rank 16 and batch 1, and diffusers' klein script's more cautious lr 1e-4 at 512 px
    (Replicate uses 4e-4); not tuned here, where no real weights can be trained. A checkpoint every
    `checkpoint_every` steps bounds the work a killed worker repeats."""

    steps: int = 1000
    rank: int = 16
    learning_rate: float = 1e-4
    resolution: int = 512
    seed: int = 0
    checkpoint_every: int = 100
    gradient_checkpointing: bool = True

    def __post_init__(self):
        bounds = {
            "steps": (1, 10_000),
            "rank": (1, 128),
            "resolution": (64, 2048),
            "checkpoint_every": (1, 10_000),
        }
        for name, (low, high) in bounds.items():
            value = getattr(self, name)
            if not low <= value <= high:
                raise ValueError(f"{name} must be within {low}..{high}, got {value}")
        if not 0 <= self.learning_rate <= 1e-2:
            raise ValueError(f"learning_rate must be within 0..0.01, got {self.learning_rate}")
        if self.resolution % 16:
            raise ValueError(f"resolution must be a multiple of 16 (the VAE's 8x and the 2x2 packing), got {self.resolution}")

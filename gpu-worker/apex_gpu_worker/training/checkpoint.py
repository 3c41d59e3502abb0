"""A training run's resumable state as bytes (for S3): the adapter's weights, the optimizer's
moments, the step reached and the random stream, so a resumed run continues exactly where the
checkpoint left it instead of starting again."""

import io
from dataclasses import dataclass

import torch


@dataclass
class TrainingCheckpoint:
    step: int
    adapter: dict[str, torch.Tensor]
    optimizer: dict
    generator: torch.Tensor
    losses: list[float]

    def to_bytes(self) -> bytes:
        buffer = io.BytesIO()
        torch.save(
            {"step": self.step, "adapter": self.adapter, "optimizer": self.optimizer, "generator": self.generator, "losses": self.losses},
            buffer,
        )
        return buffer.getvalue()

    @classmethod
    def from_bytes(cls, data: bytes) -> "TrainingCheckpoint":
        # weights_only: a checkpoint is data, never code, even if someone swapped the object.
        state = torch.load(io.BytesIO(data), map_location="cpu", weights_only=True)
        return cls(step=state["step"], adapter=state["adapter"], optimizer=state["optimizer"], generator=state["generator"], losses=state["losses"])

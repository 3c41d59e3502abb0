"""The rectified-flow objective FLUX.1 and FLUX.2 are trained with: a point on the straight line
between the clean latents (sigma 0) and noise (sigma 1), and the velocity along it as the target."""

import torch


def sample_sigmas(batch_size: int, generator: torch.Generator, device: torch.device) -> torch.Tensor:
    """Logit-normal noise levels (mean 0, std 1), SD3's choice and one of the FLUX scripts' options: most
    steps in the middle of the path, where the model learns most."""
    normal = torch.randn(batch_size, generator=generator, device="cpu").to(device)
    return torch.sigmoid(normal)


def noisy_latents(clean: torch.Tensor, noise: torch.Tensor, sigmas: torch.Tensor) -> torch.Tensor:
    """x_sigma = (1 - sigma) * x0 + sigma * noise, sigma broadcast over every other dimension."""
    sigma = sigmas.view(-1, *([1] * (clean.dim() - 1))).to(clean.dtype)
    return (1.0 - sigma) * clean + sigma * noise


def velocity_target(clean: torch.Tensor, noise: torch.Tensor) -> torch.Tensor:
    """d x_sigma / d sigma: what the transformer predicts."""
    return noise - clean

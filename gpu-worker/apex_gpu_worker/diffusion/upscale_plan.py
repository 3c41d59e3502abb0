"""How a requested size splits into what the diffusion model renders and what an upscale adds.

The model renders within its native budget (about 1 MP for FLUX). A super-resolution model multiplies
by whole factors, so with one the render is width/f x height/f for the smallest power of two f that
fits the budget (and is at least the factor a generation asked for): 1632x2048 (2k) is 816x1024 at
x2, 3264x4096 (4k) is 816x1024 at x4. A plain resize takes any factor, so without a model the render
fills the budget instead, as it always has."""

from dataclasses import dataclass

from .engine import native_size


@dataclass(frozen=True)
class UpscalePlan:
    native_width: int
    native_height: int
    # Output side / rendered side: a power of two with a model, any ratio for a resize, 1 for none.
    factor: float


def plan_upscale(width: int, height: int, native_max_megapixels: float, minimum_factor: int = 1, by_model: bool = True) -> UpscalePlan:
    if not by_model:
        native_width, native_height = native_size(width // minimum_factor, height // minimum_factor, native_max_megapixels)
        return UpscalePlan(native_width, native_height, round(width / native_width, 3))
    factor = minimum_factor
    while (width / factor) * (height / factor) > native_max_megapixels * 1_000_000:
        factor *= 2
    # Sides stay multiples of 16 (the models' latent patches); the upscale's last step fits the rest.
    return UpscalePlan(max(16, width // factor // 16 * 16), max(16, height // factor // 16 * 16), factor)

"""The models the benchmarks time. Full size: the published architectures with random weights,
built directly on the GPU in bf16 (no checkpoint is loaded or downloaded; the arithmetic is the
real models', the pixels and words are noise). Tiny (--tiny): the development models, so the same
code runs on a CPU in seconds. Tokenizers and schedulers always come from the tiny models: token
ids do not change the arithmetic, and every text is padded to the length the pipeline fixes."""

from contextlib import contextmanager
from pathlib import Path

import torch
from diffusers import (
    AutoencoderKL, AutoencoderKLFlux2, DiffusionPipeline, Flux2Transformer2DModel, FluxTransformer2DModel,
)
from transformers import (
    AutoModelForImageTextToText, AutoProcessor, CLIPTextConfig, CLIPTextModel, Idefics3Config,
    Idefics3ForConditionalGeneration, Qwen3Config, Qwen3ForCausalLM, T5Config, T5EncoderModel,
)

from dev_support.tiny_models import ensure_tiny_models

# FLUX.1 [dev] and FLUX.1 Kontext [dev]: the 12B transformer (diffusers' defaults are FLUX.1-dev's),
# CLIP-L, T5-XXL and the 16-channel VAE.
CLIP_L = dict(hidden_size=768, intermediate_size=3072, num_hidden_layers=12, num_attention_heads=12, projection_dim=768)
T5_XXL = dict(d_model=4096, d_kv=64, d_ff=10240, num_layers=24, num_heads=64, feed_forward_proj="gated-gelu", vocab_size=32128)
FLUX_VAE = dict(in_channels=3, out_channels=3, latent_channels=16, block_out_channels=(128, 256, 512, 512),
                down_block_types=("DownEncoderBlock2D",) * 4, up_block_types=("UpDecoderBlock2D",) * 4, layers_per_block=2,
                use_quant_conv=False, use_post_quant_conv=False, shift_factor=0.1159, scaling_factor=0.3611)
# FLUX.2 [klein] 4B: its transformer/config.json, and Qwen3-4B as the text encoder; the VAE is
# diffusers' FLUX.2 default (32 latent channels).
KLEIN_4B = dict(patch_size=1, in_channels=128, num_layers=5, num_single_layers=20, attention_head_dim=128,
                num_attention_heads=24, joint_attention_dim=7680, timestep_guidance_channels=256, mlp_ratio=3.0,
                axes_dims_rope=(32, 32, 32, 32), rope_theta=2000, guidance_embeds=False)
QWEN3_4B = dict(hidden_size=2560, intermediate_size=9728, num_hidden_layers=36, num_attention_heads=32,
                num_key_value_heads=8, head_dim=128, vocab_size=151936, max_position_embeddings=40960,
                rope_theta=1_000_000, tie_word_embeddings=True)
# SmolVLM 2.2B (Idefics3 layout): a SigLIP so400m tower on 384-px tiles, pixel shuffle by 3 (81
# tokens a tile), SmolLM2-1.7B. An image is resized to 1536 px on its longest side and cut into
# 384-px tiles plus one global tile: 17 tiles, 1377 image tokens for a square photo.
SMOLVLM_VISION = dict(hidden_size=1152, intermediate_size=4304, num_hidden_layers=27, num_attention_heads=16,
                      image_size=384, patch_size=14)
SMOLVLM_TEXT = dict(model_type="llama", vocab_size=49280, hidden_size=2048, intermediate_size=8192, num_hidden_layers=24,
                    num_attention_heads=32, num_key_value_heads=32, max_position_embeddings=16384, rope_theta=273768.0)
SMOLVLM_PROCESSOR = dict(size={"longest_edge": 4 * 384}, max_image_size={"longest_edge": 384}, image_seq_len=(384 // 14) ** 2 // 3**2)

# Each diffusion model by the name the benches use: its tiny folder, and the arguments its model
# card gives (Kontext: 28 steps, guidance 2.5; klein is step-distilled: 4 steps, no guidance).
DIFFUSION_MODELS = {
    "flux": {"steps": 28, "guidance": 3.5},
    "kontext": {"steps": 28, "guidance": 2.5},
    "klein": {"steps": 4, "guidance": 1.0},
}


def tiny_models(root: str | None) -> dict[str, Path]:
    return ensure_tiny_models(Path(root or "/tmp/apex-bench-tiny"))


@contextmanager
def built_on(device: str, dtype: torch.dtype):
    """Modules constructed inside are allocated and randomly initialised on `device` in `dtype`:
    no float32 copy in host memory first."""
    previous = torch.get_default_dtype()
    torch.set_default_dtype(dtype)
    try:
        with torch.device(device):
            yield
    finally:
        torch.set_default_dtype(previous)


def diffusion_pipeline(name: str, device: str, dtype: torch.dtype, tiny_root: str | None, full_size: bool) -> DiffusionPipeline:
    """FLUX.1 [dev] (`flux`), FLUX.1 Kontext [dev] (`kontext`) or FLUX.2 [klein] 4B (`klein`), the same
    weights on every call (seed 0)."""
    tiny = DiffusionPipeline.from_pretrained(tiny_models(tiny_root)[name])
    if not full_size:
        return tiny.to(device, dtype)
    torch.manual_seed(0)
    ids = lambda encoder, *names: {n: getattr(encoder.config, n) for n in names}  # noqa: E731  the tiny tokenizer's special ids
    with built_on(device, dtype):
        if name == "klein":
            parts = {"transformer": Flux2Transformer2DModel(**KLEIN_4B), "vae": AutoencoderKLFlux2(),
                     "text_encoder": Qwen3ForCausalLM(Qwen3Config(**QWEN3_4B, **ids(tiny.text_encoder, "pad_token_id", "bos_token_id", "eos_token_id")))}
            extra = {"is_distilled": tiny.config.is_distilled}
        else:
            parts = {"transformer": FluxTransformer2DModel(guidance_embeds=True), "vae": AutoencoderKL(**FLUX_VAE),
                     "text_encoder": CLIPTextModel(CLIPTextConfig(**CLIP_L, **ids(tiny.text_encoder, "pad_token_id", "bos_token_id", "eos_token_id"))),
                     "text_encoder_2": T5EncoderModel(T5Config(**T5_XXL, **ids(tiny.text_encoder_2, "pad_token_id", "eos_token_id")))}
            extra = {}
    return type(tiny)(**{**tiny.components, **parts}, **extra)


def vlm(device: str, dtype: torch.dtype, tiny_root: str | None, full_size: bool):
    """SmolVLM (Idefics3 layout) and its processor, as AutoProcessor gives it in production."""
    folder = tiny_models(tiny_root)["smolvlm"]
    if not full_size:
        return AutoModelForImageTextToText.from_pretrained(folder, dtype=dtype).to(device).eval(), AutoProcessor.from_pretrained(folder)
    processor = AutoProcessor.from_pretrained(folder, **SMOLVLM_PROCESSOR)
    tiny = Idefics3Config.from_pretrained(folder)
    special = {"pad_token_id": tiny.text_config.pad_token_id, "eos_token_id": tiny.text_config.eos_token_id}
    config = Idefics3Config(vision_config=SMOLVLM_VISION, text_config={**SMOLVLM_TEXT, **special}, image_token_id=tiny.image_token_id,
                            scale_factor=3, pad_token_id=tiny.pad_token_id)
    torch.manual_seed(0)
    with built_on(device, dtype):
        model = Idefics3ForConditionalGeneration(config).eval()
    model.generation_config.eos_token_id = special["eos_token_id"]
    model.generation_config.pad_token_id = special["pad_token_id"]
    return model, processor

"""What the training loop needs from a pipeline family: its photos as packed latents with their
position ids, its captions as text embeddings, and one transformer call. FLUX.1 (FluxPipeline,
FluxKontextPipeline: trained text-to-image, as identity LoRAs are) and FLUX.2 (Flux2KleinPipeline)
pack latents and position ids differently; the objective is the same."""

from dataclasses import dataclass

import torch


@dataclass
class Sample:
    """One photo, encoded once: the clean latents (1, tokens, channels) and everything the
    transformer takes beside them."""

    latents: torch.Tensor
    conditioning: dict


# Every linear layer inside the transformer blocks (attention, feed-forward, the single blocks'
# fused projections), as the common FLUX LoRA trainers do for a likeness; not the embedders, the
# modulations or the final projection.
BLOCK_LINEARS = r".*transformer_blocks\.\d+\.(attn\.(to_k|to_q|to_v|to_out\.0|add_k_proj|add_q_proj|add_v_proj|to_add_out|to_qkv_mlp_proj)|{extra})$"


class Flux1Inputs:
    lora_targets = BLOCK_LINEARS.format(extra=r"ff\.net\.0\.proj|ff\.net\.2|ff_context\.net\.0\.proj|ff_context\.net\.2|proj_mlp|proj_out")

    def __init__(self, pipe):
        self.pipe = pipe

    @torch.no_grad()
    def encode(self, pixels: torch.Tensor, caption: str) -> Sample:
        pipe = self.pipe
        vae = pipe.vae
        latents = vae.encode(pixels.to(vae.device, vae.dtype)).latent_dist.mode()
        latents = (latents - vae.config.shift_factor) * vae.config.scaling_factor
        b, c, h, w = latents.shape
        packed = pipe._pack_latents(latents, b, c, h, w)
        img_ids = pipe._prepare_latent_image_ids(b, h // 2, w // 2, packed.device, packed.dtype)
        prompt_embeds, pooled, text_ids = pipe.encode_prompt(prompt=caption, prompt_2=None, device=packed.device)
        return Sample(packed, {"encoder_hidden_states": prompt_embeds, "pooled_projections": pooled, "txt_ids": text_ids, "img_ids": img_ids})

    def predict(self, transformer, noisy: torch.Tensor, sigmas: torch.Tensor, sample: Sample) -> torch.Tensor:
        # FLUX.1 [dev]-style models embed a guidance value; trained at 1 here (scripts differ: diffusers' defaults to 3.5).
        guidance = torch.ones_like(sigmas) if transformer.config.guidance_embeds else None
        dtype = transformer.dtype
        cond = {k: v.to(dtype) if v.is_floating_point() else v for k, v in sample.conditioning.items()}
        return transformer(hidden_states=noisy.to(dtype), timestep=sigmas.to(dtype), guidance=guidance, return_dict=False, **cond)[0]


class Flux2Inputs:
    # The single blocks' attention output is `attn.to_out` itself (a Linear, not a list).
    lora_targets = BLOCK_LINEARS.format(extra=r"ff\.linear_in|ff\.linear_out|ff_context\.linear_in|ff_context\.linear_out") + r"|single_transformer_blocks\.\d+\.attn\.to_out$"

    def __init__(self, pipe):
        self.pipe = pipe

    @torch.no_grad()
    def encode(self, pixels: torch.Tensor, caption: str) -> Sample:
        pipe = self.pipe
        latents = pipe._encode_vae_image(pixels.to(pipe.vae.device, pipe.vae.dtype), generator=None)
        packed = pipe._pack_latents(latents)
        img_ids = pipe._prepare_latent_ids(latents).to(packed.device)
        prompt_embeds, text_ids = pipe.encode_prompt(prompt=caption, device=packed.device)
        return Sample(packed, {"encoder_hidden_states": prompt_embeds, "txt_ids": text_ids, "img_ids": img_ids})

    def predict(self, transformer, noisy: torch.Tensor, sigmas: torch.Tensor, sample: Sample) -> torch.Tensor:
        dtype = transformer.dtype
        cond = {k: v.to(dtype) if v.is_floating_point() else v for k, v in sample.conditioning.items()}
        return transformer(hidden_states=noisy.to(dtype), timestep=sigmas.to(dtype), guidance=None, return_dict=False, **cond)[0]


def inputs_for(pipe) -> Flux1Inputs | Flux2Inputs:
    """The family of a loaded pipeline; any other pipeline cannot be trained here."""
    name = type(pipe).__name__
    if name in ("FluxPipeline", "FluxKontextPipeline"):
        return Flux1Inputs(pipe)
    if name in ("Flux2KleinPipeline", "Flux2Pipeline"):
        return Flux2Inputs(pipe)
    raise ValueError(f"LoRA training supports the FLUX.1 and FLUX.2 pipelines, not {name}")

"""Tiny random-weight models with the production architectures (FluxPipeline, FluxKontextPipeline,
Flux2KleinPipeline, Idefics3/SmolVLM, Real-ESRGAN), built offline from configs with locally trained
tokenizers and saved as ordinary model folders and weight files, so tests, `npm run dev` and the demo
load them through the same `from_pretrained` and spandrel paths production uses.
The worker's model settings default to them; it does not build them itself:

    python -m dev_support.tiny_models [DIR]   # in gpu-worker/: writes DIR/flux, DIR/smolvlm, DIR/kontext,
                                              # DIR/klein and DIR/upscaler, skips what exists; DIR
                                              # defaults to where the settings look
"""

import sys
from pathlib import Path

from apex_gpu_worker.contracts.vocabulary import vocabulary_fields
from apex_gpu_worker.settings import TINY_MODELS, WorkerSettings

VLM_SPECIAL_TOKENS = [
    "<|im_start|>",
    "<fake_token_around_image>",
    "<image>",
    "<end_of_utterance>",
    "<global-img>",
    *[f"<row_{r}_col_{c}>" for r in range(1, 7) for c in range(1, 7)],
]
CHAT_TEMPLATE = (
    "<|im_start|>{% for message in messages %}{{ message['role'] | capitalize }}: "
    "{% for part in message['content'] %}{% if part['type'] == 'text' %}{{ part['text'] }}"
    "{% elif part['type'] == 'image' %}{{ '<image>' }}{% endif %}{% endfor %}<end_of_utterance>\n"
    "{% endfor %}{% if add_generation_prompt %}{{ 'Assistant:' }}{% endif %}"
)
QWEN_SPECIAL_TOKENS = ["<|im_start|>", "<|im_end|>", "<think>", "</think>"]
# Qwen3's own template, cut to what Flux2KleinPipeline sends: one user turn, no thinking.
QWEN3_CHAT_TEMPLATE = (
    "{% for message in messages %}<|im_start|>{{ message['role'] }}\n{{ message['content'] }}<|im_end|>\n"
    "{% endfor %}{% if add_generation_prompt %}<|im_start|>assistant\n"
    "{% if enable_thinking is defined and enable_thinking is false %}<think>\n\n</think>\n\n{% endif %}{% endif %}"
)


def _corpus() -> list[str]:
    """Text the tokenizers learn their merges from: English-ish portrait prompts and JSON."""
    lines = [phrase for field in vocabulary_fields(WorkerSettings().contracts_dir).values() for phrase in field.values()]
    lines += [
        '{"prompt": "a professional portrait photo of a person", "negative_prompt": "blurry, distorted"}',
        '{"passed": true, "ok": false, "note": "the background matches", "feedback": "make the lighting softer"}',
        "A studio photograph of a smiling person wearing a suit, sharp focus, 85mm lens, soft light.",
    ]
    return lines * 4


def _tokenizer(special_tokens: list[str], vocab_size: int, model_max_length: int):
    """A byte-level BPE tokenizer: every string round-trips, which constrained JSON decoding needs."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    core = Tokenizer(models.BPE(unk_token=None))
    core.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    core.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        special_tokens=["<pad>", "</s>", "<s>", *special_tokens],
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    core.train_from_iterator(_corpus(), trainer)
    return PreTrainedTokenizerFast(
        tokenizer_object=core,
        pad_token="<pad>",
        eos_token="</s>",
        bos_token="<s>",
        model_max_length=model_max_length,
    )


def _tiny_flux_components(transformer_seed: int | None = None) -> dict:
    """FLUX.1's components, tiny. The encoders, tokenizers and VAE come out the same on every call
    (seed 0), so FLUX.1 Kontext can share them with FLUX.1 as the real checkpoints do; the
    transformer continues the seed-0 stream unless given a seed of its own."""
    import torch
    from diffusers import AutoencoderKL, FlowMatchEulerDiscreteScheduler, FluxTransformer2DModel
    from transformers import CLIPTextConfig, CLIPTextModel, T5Config, T5EncoderModel

    torch.manual_seed(0)
    clip_tokenizer = _tokenizer([], 400, 77)  # CLIP's position table is 77 long
    t5_tokenizer = _tokenizer([], 400, 512)
    text_encoder = CLIPTextModel(
        CLIPTextConfig(
            vocab_size=len(clip_tokenizer), hidden_size=32, intermediate_size=37, num_attention_heads=4,
            num_hidden_layers=2, projection_dim=32, max_position_embeddings=77,
            pad_token_id=clip_tokenizer.pad_token_id, bos_token_id=clip_tokenizer.bos_token_id,
            eos_token_id=clip_tokenizer.eos_token_id,
        )
    )
    text_encoder_2 = T5EncoderModel(
        T5Config(vocab_size=len(t5_tokenizer), d_model=32, d_kv=8, d_ff=37, num_layers=2, num_heads=4,
                 pad_token_id=t5_tokenizer.pad_token_id, eos_token_id=t5_tokenizer.eos_token_id)
    )
    # Four VAE blocks give FLUX's 8x spatial compression, so the token count per pixel is the real one.
    vae = AutoencoderKL(
        in_channels=3, out_channels=3, latent_channels=4, block_out_channels=(8, 8, 8, 8), layers_per_block=1,
        down_block_types=("DownEncoderBlock2D",) * 4, up_block_types=("UpDecoderBlock2D",) * 4,
        norm_num_groups=4, sample_size=64, use_quant_conv=False, use_post_quant_conv=False,
        shift_factor=0.0609, scaling_factor=1.5035,
    )
    if transformer_seed is not None:
        torch.manual_seed(transformer_seed)
    transformer = FluxTransformer2DModel(
        patch_size=1, in_channels=16, num_layers=1, num_single_layers=1, attention_head_dim=16,
        num_attention_heads=2, joint_attention_dim=32, pooled_projection_dim=32, axes_dims_rope=[4, 4, 8],
        guidance_embeds=True,
    )
    return {
        "scheduler": FlowMatchEulerDiscreteScheduler(), "vae": vae, "text_encoder": text_encoder,
        "tokenizer": clip_tokenizer, "text_encoder_2": text_encoder_2, "tokenizer_2": t5_tokenizer,
        "transformer": transformer,
    }


def _sharpen_attention(transformer, gain: float = 4.0) -> None:
    """Random queries and keys attend almost uniformly, which averages an editing model's reference
    tokens away to a one-level change in the output; raising the QK-norm gains makes attention peaked,
    as in trained models, so the reference visibly steers the render."""
    import torch

    with torch.no_grad():
        for name, param in transformer.named_parameters():
            if any(f".{norm}." in name for norm in ("norm_q", "norm_k", "norm_added_q", "norm_added_k")):
                param.mul_(gain)


def build_tiny_flux(target: Path) -> None:
    from diffusers import FluxPipeline

    FluxPipeline(**_tiny_flux_components()).save_pretrained(target)


def build_tiny_kontext(target: Path) -> None:
    """FLUX.1 Kontext [dev] has FLUX.1 [dev]'s transformer architecture with its own weights, and
    ships FLUX.1 [dev]'s encoders and VAE unchanged."""
    from diffusers import FluxKontextPipeline

    components = _tiny_flux_components(transformer_seed=1)
    _sharpen_attention(components["transformer"])
    FluxKontextPipeline(**components).save_pretrained(target)


def build_tiny_klein(target: Path) -> None:
    """FLUX.2 [klein] 4B (the step-distilled Apache-2.0 one): a Qwen3 text encoder read at three
    hidden layers, the FLUX.2 VAE with batch-norm latent statistics, and the FLUX.2 transformer."""
    import torch
    from diffusers import (
        AutoencoderKLFlux2, FlowMatchEulerDiscreteScheduler, Flux2KleinPipeline, Flux2Transformer2DModel,
    )
    from transformers import Qwen3Config, Qwen3ForCausalLM

    torch.manual_seed(0)
    tokenizer = _tokenizer(QWEN_SPECIAL_TOKENS, 400, 512)
    tokenizer.chat_template = QWEN3_CHAT_TEMPLATE
    hidden_size = 16
    # The pipeline stacks hidden states 9, 18 and 27 by default, so the encoder needs 27 layers;
    # at width 16 they still cost nothing.
    text_encoder = Qwen3ForCausalLM(
        Qwen3Config(
            vocab_size=len(tokenizer), hidden_size=hidden_size, intermediate_size=32, num_hidden_layers=27,
            num_attention_heads=2, num_key_value_heads=2, head_dim=8, max_position_embeddings=512,
            pad_token_id=tokenizer.pad_token_id, bos_token_id=tokenizer.bos_token_id,
            eos_token_id=tokenizer.convert_tokens_to_ids("<|im_end|>"),
        )
    )
    # Four blocks for FLUX.2's 8x compression; the pipeline then packs 2x2 latent patches, so the
    # transformer sees 4 * latent_channels channels per token.
    vae = AutoencoderKLFlux2(
        in_channels=3, out_channels=3, latent_channels=4, block_out_channels=(8, 8, 8, 8), layers_per_block=1,
        down_block_types=("DownEncoderBlock2D",) * 4, up_block_types=("UpDecoderBlock2D",) * 4,
        norm_num_groups=4, sample_size=64, use_quant_conv=False, use_post_quant_conv=False,
    )
    transformer = Flux2Transformer2DModel(
        patch_size=1, in_channels=16, num_layers=1, num_single_layers=1, attention_head_dim=16,
        num_attention_heads=2, joint_attention_dim=3 * hidden_size, timestep_guidance_channels=32,
        axes_dims_rope=[4, 4, 4, 4], guidance_embeds=False,
    )
    _sharpen_attention(transformer)
    pipe = Flux2KleinPipeline(
        scheduler=FlowMatchEulerDiscreteScheduler(), vae=vae, text_encoder=text_encoder, tokenizer=tokenizer,
        transformer=transformer, is_distilled=True,
    )
    pipe.save_pretrained(target)


def build_tiny_vlm(target: Path) -> None:
    import torch
    from transformers import (
        Idefics3Config, Idefics3ForConditionalGeneration, Idefics3ImageProcessor, Idefics3Processor,
    )

    torch.manual_seed(0)
    tokenizer = _tokenizer(VLM_SPECIAL_TOKENS, 600, 4096)
    image_size, patch_size, scale_factor = 32, 8, 2
    config = Idefics3Config(
        vision_config={"hidden_size": 32, "intermediate_size": 37, "num_hidden_layers": 2, "num_attention_heads": 4,
                       "image_size": image_size, "patch_size": patch_size},
        text_config={"model_type": "llama", "vocab_size": len(tokenizer), "hidden_size": 32, "intermediate_size": 37,
                     "num_hidden_layers": 2, "num_attention_heads": 4, "num_key_value_heads": 2,
                     "max_position_embeddings": 4096, "pad_token_id": tokenizer.pad_token_id,
                     "eos_token_id": tokenizer.convert_tokens_to_ids("<end_of_utterance>")},
        image_token_id=tokenizer.convert_tokens_to_ids("<image>"),
        scale_factor=scale_factor,
        pad_token_id=tokenizer.pad_token_id,
    )
    model = Idefics3ForConditionalGeneration(config)
    model.generation_config.eos_token_id = config.text_config.eos_token_id
    model.generation_config.pad_token_id = tokenizer.pad_token_id
    processor = Idefics3Processor(
        image_processor=Idefics3ImageProcessor(size={"longest_edge": 2 * image_size},
                                               max_image_size={"longest_edge": image_size}),
        tokenizer=tokenizer,
        image_seq_len=(image_size // patch_size) ** 2 // scale_factor**2,
        chat_template=CHAT_TEMPLATE,
    )
    model.save_pretrained(target)
    processor.save_pretrained(target)


def real_esrgan(scale: int, num_feat: int, num_block: int, num_grow_ch: int = 32):
    """Real-ESRGAN's RRDBNet with its own layer names, the layout of RealESRGAN_x4plus.pth and
    RealESRGAN_x2plus.pth: dense blocks at the input resolution (x2 folds 2x2 pixels into channels
    first), then two nearest-neighbour x2 upsamplings. Built here rather than imported so the tiny
    files test that spandrel reads the released layout; spandrel's own RRDB fixes num_grow_ch at 32."""
    import torch
    from torch import nn
    from torch.nn import functional as F

    class DenseBlock(nn.Module):
        def __init__(self):
            super().__init__()
            for i in range(1, 6):
                setattr(self, f"conv{i}", nn.Conv2d(num_feat + (i - 1) * num_grow_ch, num_feat if i == 5 else num_grow_ch, 3, 1, 1))

        def forward(self, x):
            features = [x]
            for i in range(1, 5):
                features.append(F.leaky_relu(getattr(self, f"conv{i}")(torch.cat(features, 1)), 0.2))
            return self.conv5(torch.cat(features, 1)) * 0.2 + x

    class ResidualInResidualBlock(nn.Module):
        def __init__(self):
            super().__init__()
            self.rdb1, self.rdb2, self.rdb3 = DenseBlock(), DenseBlock(), DenseBlock()

        def forward(self, x):
            return self.rdb3(self.rdb2(self.rdb1(x))) * 0.2 + x

    class RRDBNet(nn.Module):
        def __init__(self):
            super().__init__()
            self.unshuffle = {4: 1, 2: 2, 1: 4}[scale]
            self.conv_first = nn.Conv2d(3 * self.unshuffle**2, num_feat, 3, 1, 1)
            self.body = nn.Sequential(*(ResidualInResidualBlock() for _ in range(num_block)))
            self.conv_body = nn.Conv2d(num_feat, num_feat, 3, 1, 1)
            self.conv_up1 = nn.Conv2d(num_feat, num_feat, 3, 1, 1)
            self.conv_up2 = nn.Conv2d(num_feat, num_feat, 3, 1, 1)
            self.conv_hr = nn.Conv2d(num_feat, num_feat, 3, 1, 1)
            self.conv_last = nn.Conv2d(num_feat, 3, 3, 1, 1)

        def forward(self, x):
            feat = self.conv_first(F.pixel_unshuffle(x, self.unshuffle) if self.unshuffle > 1 else x)
            feat = feat + self.conv_body(self.body(feat))
            for conv in (self.conv_up1, self.conv_up2):
                feat = F.leaky_relu(conv(F.interpolate(feat, scale_factor=2, mode="nearest")), 0.2)
            return self.conv_last(F.leaky_relu(self.conv_hr(feat), 0.2))

    return RRDBNet()


# The tiny upscalers: Real-ESRGAN at x2 and x4, 8 features and one block instead of 64 and 23.
TINY_UPSCALERS = {"realesrgan-x2-tiny.safetensors": 2, "realesrgan-x4-tiny.safetensors": 4}


def build_tiny_upscaler(target: Path) -> None:
    import torch
    from safetensors.torch import save_file

    target.mkdir(parents=True, exist_ok=True)
    for name, scale in TINY_UPSCALERS.items():
        torch.manual_seed(scale)
        model = real_esrgan(scale, num_feat=8, num_block=1)
        # Random weights give a near-black output; a stronger last layer around mid-grey spreads it
        # over many grey levels, so comparisons of outputs (tiled against one pass) mean something.
        with torch.no_grad():
            model.conv_last.weight.mul_(8)
            model.conv_last.bias.fill_(0.5)
        save_file(model.state_dict(), target / name)


BUILDERS = {
    "flux": build_tiny_flux, "smolvlm": build_tiny_vlm, "kontext": build_tiny_kontext, "klein": build_tiny_klein,
    "upscaler": build_tiny_upscaler,
}


def ensure_tiny_models(root: Path) -> dict[str, Path]:
    """Builds the tiny models under root once; later calls cost a directory check."""
    built = {name: root / name for name in BUILDERS}
    for name, builder in BUILDERS.items():
        if not (built[name] / ".complete").exists():
            builder(built[name])
            (built[name] / ".complete").touch()
    return built


if __name__ == "__main__":
    for name, path in ensure_tiny_models(Path(sys.argv[1]) if len(sys.argv) > 1 else TINY_MODELS).items():
        print(f"{name}={path}")

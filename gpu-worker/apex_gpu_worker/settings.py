import os
from pathlib import Path
from typing import Literal

from pydantic import AliasChoices, BaseModel, Field, SecretStr, ValidationInfo, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

REPO_ROOT = Path(__file__).resolve().parents[2]
DEFAULT_CACHE = Path.home() / ".cache" / "apex-portraits"
# Where the model settings point by default: tiny random-weight models for development, built by
# `python -m dev_support.tiny_models` (the worker does not build them).
TINY_MODELS = DEFAULT_CACHE / "tiny-models"
QuantizeMode = Literal["none", "bf16", "fp8"]  # bf16 is none by its other name


def _env(name: str, *shared: str) -> AliasChoices:
    """Reads APEX_GPU_<NAME> first, then the names the TypeScript processes use for the same thing,
    so one deployment environment configures both languages."""
    return AliasChoices(f"APEX_GPU_{name}", *shared)


class BaseLora(BaseModel):
    repo: str
    weight_name: str | None = None
    scale: float = 1.0


class WorkerSettings(BaseSettings):
    """Worker configuration from APEX_GPU_* variables (Redis, S3 and the queue prefix also read the
    TypeScript names)."""

    model_config = SettingsConfigDict(env_prefix="APEX_GPU_", populate_by_name=True)

    # --- queues
    redis_url: str = Field("redis://127.0.0.1:6379", validation_alias=_env("REDIS_URL", "REDIS_URL"))
    queue_prefix: str = Field("apex", validation_alias=_env("QUEUE_PREFIX", "QUEUE_PREFIX"))
    contracts_dir: Path = REPO_ROOT / "contracts"
    concurrency: int = Field(1, ge=1)
    # How long a SIGTERM waits for the job in hand before the worker gives it back to the queue.
    shutdown_grace_s: float = Field(60.0, ge=0)
    # How long a job's lock lasts unless renewed (at half of it), and how often lapsed locks are looked
    # for: a SIGKILLed worker's job goes back to the queue within about their sum (BullMQ's defaults).
    lock_duration_s: float = Field(30.0, gt=0)
    stalled_interval_s: float = Field(30.0, gt=0)

    # --- object store
    s3_endpoint: str | None = Field(None, validation_alias=_env("S3_ENDPOINT", "S3_ENDPOINT"))
    s3_region: str = Field("us-east-1", validation_alias=_env("S3_REGION", "S3_REGION"))
    s3_bucket: str = Field("apex-portraits", validation_alias=_env("S3_BUCKET", "S3_BUCKET"))
    s3_access_key_id: SecretStr | None = Field(None, validation_alias=_env("S3_ACCESS_KEY_ID", "S3_ACCESS_KEY_ID"))
    s3_secret_access_key: SecretStr | None = Field(None, validation_alias=_env("S3_SECRET_ACCESS_KEY", "S3_SECRET_ACCESS_KEY"))
    s3_force_path_style: bool = Field(True, validation_alias=_env("S3_FORCE_PATH_STYLE", "S3_FORCE_PATH_STYLE"))
    # A generation's own destination endpoint may be a loopback/private address (off: SSRF protection).
    destination_allow_private: bool = Field(False, validation_alias=_env("DESTINATION_ALLOW_PRIVATE", "DESTINATION_ALLOW_PRIVATE"))

    # --- diffusion
    # A diffusers folder or Hub id: black-forest-labs/FLUX.1-dev in production, FLUX.1-schnell works too.
    flux_model: str = str(TINY_MODELS / "flux")
    device: str = "auto"  # auto = cuda when available, else cpu
    dtype: Literal["auto", "bfloat16", "float16", "float32"] = "auto"  # auto = bf16 on GPU, fp32 on CPU
    default_steps: int = Field(28, ge=1, le=100)
    default_guidance: float = Field(3.5, ge=0, le=30)
    # Largest image the model renders itself; bigger requests are rendered within it and upscaled.
    native_max_megapixels: float = Field(1.05, gt=0)
    max_megapixels: float = Field(16.8, gt=0)
    output_format: Literal["png", "webp"] = "png"
    progress_every_s: float = Field(0.5, ge=0)
    compile: bool = False
    # Float8 (torchao) for the diffusion transformers on GPUs of compute capability 8.9+ (diffusion/quantization.py).
    quantize: QuantizeMode = Field("none", validation_alias=_env("QUANTIZE"))
    # The portrait model's step cache (diffusion/step_cache.py): none, first_block or taylorseer; opt-in.
    portrait_step_cache: Literal["none", "first_block", "taylorseer"] = "none"
    portrait_step_cache_threshold: float = Field(0.05, gt=0, le=1)  # first_block: how little a step may change to be reused
    # The image-editing model that renders portraits from the person's photo (FluxKontextPipeline,
    # Flux2KleinPipeline or QwenImageEditPlusPipeline folder or Hub id); empty renders portraits with
    # the text-to-image model from words alone (the person will not be the same).
    portrait_model: str = str(TINY_MODELS / "kontext")
    # The base the training pool learns identities' LoRAs on; empty: the portrait model, the one the
    # LoRA is applied to. BFL recommends training FLUX.2 [klein] LoRAs on the undistilled klein base
    # (black-forest-labs/FLUX.2-klein-base-4B) and applying them to the distilled model.
    training_model: str = ""
    # Super-resolution models that bring renders up to sizes above the native budget (Real-ESRGAN x2
    # and x4, or whatever else spandrel reads): .pth/.safetensors files, folders of them, or Hub files
    # written owner/repo/file.pth; one model per scale. Empty: a plain Lanczos resize (no detail).
    # Unset: the tiny upscaler beside the tiny diffusion models, none beside real ones (a random one
    # would turn real renders into noise).
    upscaler_models: list[str] = Field(None, validate_default=True)
    upscaler_dtype: Literal["auto", "bfloat16", "float16", "float32"] = "auto"  # auto = fp16 on GPU where supported, fp32 on CPU
    upscaler_tile: int = Field(512, ge=0)  # tile side in input pixels, so memory stays bounded at 4k; 0 = one pass
    upscaler_tile_overlap: int = Field(32, ge=0)  # context around each tile, so no seams show
    # Load components the two models share (text encoders, VAE) once.
    share_components: bool = True
    base_loras: list[BaseLora] = []
    hf_token: SecretStr | None = Field(None, validation_alias=_env("HF_TOKEN", "HF_TOKEN"))
    # Opens per-request secrets sealed by the API (the same SECRETS_KEY the TypeScript side uses).
    secrets_key: SecretStr | None = Field(None, validation_alias=_env("SECRETS_KEY", "SECRETS_KEY"))
    lora_cache_dir: Path = DEFAULT_CACHE / "loras"
    lora_max_loaded: int = Field(4, ge=1)  # per-request adapters kept in memory (LRU)
    lora_max_rank: int = Field(128, ge=1)  # hotswap pads every adapter to this rank

    # --- traces: off unless an OTLP/HTTP collector is named (the TypeScript processes read the same)
    otel_exporter_otlp_endpoint: str | None = Field(None, validation_alias=_env("OTEL_EXPORTER_OTLP_ENDPOINT", "OTEL_EXPORTER_OTLP_ENDPOINT"))
    otel_service_name: str = Field("apex-portraits", validation_alias=_env("OTEL_SERVICE_NAME", "OTEL_SERVICE_NAME"))

    # --- vision-language model
    vlm_backend: Literal["transformers", "openai"] = "transformers"
    vlm_model: str = str(TINY_MODELS / "smolvlm")  # folder or Hub id (transformers)
    vlm_base_url: str = "http://127.0.0.1:8000/v1"  # openai: a vLLM (or any compatible) server
    vlm_api_key: SecretStr | None = None
    vlm_served_model: str = "HuggingFaceTB/SmolVLM2-2.2B-Instruct"
    vlm_max_new_tokens: int = Field(1024, ge=16)  # a cap over each answer's own budget (vlm/answers.py)
    # In process on CUDA: static KV cache + torch.compile'd decoding (vlm/compiled_decoding.py), and its cache's length.
    vlm_compile: bool = False
    vlm_cache_length: int = Field(4096, ge=512)
    vlm_timeout_s: float = Field(120.0, gt=0)

    # --- validation thresholds
    face_min_score: float = 0.5  # dlib detector confidence; weaker detections are not faces
    face_min_side_ratio: float = Field(0.12, ge=0, le=1)  # face box side / image short side
    identity_max_distance: float = Field(0.6, ge=0)  # dlib's 128-d embedding, same person < 0.6
    blank_min_stddev: float = Field(6.0, ge=0)
    noise_max_ratio: float = Field(0.5, ge=0)  # high-frequency energy / total energy
    pass_score: float = Field(0.75, ge=0, le=1)
    # Checks that must pass, whatever the score; empty means every check.
    gating_checks: list[str] = []

    @field_validator("upscaler_models", mode="before")
    @classmethod
    def _default_upscaler(cls, value: list[str] | None, info: ValidationInfo) -> list[str]:
        if value is not None:
            return value
        tiny = all(Path(m).parent == TINY_MODELS for m in (info.data.get("flux_model"), info.data.get("portrait_model")) if m)
        return [str(TINY_MODELS / "upscaler")] if tiny else []


def model_name(model: str) -> str:
    """How a model setting appears in what callers see (image metadata): a Hub id as it is, a local
    folder by its name only, never the server's path."""
    return Path(model).name if os.path.isabs(model) or os.path.isdir(model) else model

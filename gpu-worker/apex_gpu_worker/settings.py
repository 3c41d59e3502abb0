from pathlib import Path

from pydantic import AliasChoices, Field
from pydantic_settings import BaseSettings, SettingsConfigDict

REPO_ROOT = Path(__file__).resolve().parents[2]


class WorkerSettings(BaseSettings):
    """Worker configuration from APEX_GPU_* variables; Redis and the queue prefix also read the
    names the TypeScript processes use, so one deployment environment configures both."""

    model_config = SettingsConfigDict(env_prefix="APEX_GPU_")

    redis_url: str = Field("redis://127.0.0.1:6379", validation_alias=AliasChoices("APEX_GPU_REDIS_URL", "REDIS_URL"))
    queue_prefix: str = Field("apex", validation_alias=AliasChoices("APEX_GPU_QUEUE_PREFIX", "QUEUE_PREFIX"))
    contracts_dir: Path = REPO_ROOT / "contracts"
    concurrency: int = Field(1, ge=1)

"""The deployment's S3 bucket, as the steps use it: read an object, write an image. Failures raise
ordinary exceptions, so BullMQ retries the step with backoff; nothing here swallows an error."""

import boto3
from botocore.config import Config

from .settings import WorkerSettings


def _client(endpoint: str | None, region: str | None, key_id: str | None, secret: str | None, session: str | None = None, path_style: bool = True):
    return boto3.client(
        "s3",
        endpoint_url=endpoint,
        region_name=region,
        aws_access_key_id=key_id,
        aws_secret_access_key=secret,
        aws_session_token=session,
        config=Config(
            s3={"addressing_style": "path" if path_style else "auto"},
            retries={"mode": "standard", "max_attempts": 3},
            connect_timeout=5,
            read_timeout=60,
        ),
    )


class ObjectStore:
    def __init__(self, settings: WorkerSettings):
        secret = lambda s: s.get_secret_value() if s else None  # noqa: E731
        self.bucket = settings.s3_bucket
        self._client = _client(settings.s3_endpoint, settings.s3_region, secret(settings.s3_access_key_id),
                               secret(settings.s3_secret_access_key), path_style=settings.s3_force_path_style)

    @classmethod
    def for_destination(cls, destination: dict, keys: dict) -> "ObjectStore":
        """A caller's own bucket, reached with the keys from the job's sealed secrets (never logged)."""
        store = cls.__new__(cls)
        store.bucket = destination["bucket"]
        store._client = _client(destination.get("endpoint"), destination.get("region", "us-east-1"), keys["access_key_id"],
                                keys["secret_access_key"], keys.get("session_token"), path_style=bool(destination.get("endpoint")))
        return store

    def get_bytes(self, key: str) -> bytes:
        return self._client.get_object(Bucket=self.bucket, Key=key)["Body"].read()

    def put_bytes(self, key: str, data: bytes, content_type: str, metadata: dict[str, str] | None = None) -> None:
        self._client.put_object(Bucket=self.bucket, Key=key, Body=data, ContentType=content_type, Metadata=metadata or {})

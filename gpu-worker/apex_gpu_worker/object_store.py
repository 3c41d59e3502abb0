"""The deployment's S3 bucket, as the steps use it: read an object, write an image. Failures raise
ordinary exceptions, so BullMQ retries the step with backoff; nothing here swallows an error."""

import boto3
from botocore.config import Config

from .settings import WorkerSettings


class ObjectStore:
    def __init__(self, settings: WorkerSettings):
        secret = lambda s: s.get_secret_value() if s else None  # noqa: E731
        self.bucket = settings.s3_bucket
        self._client = boto3.client(
            "s3",
            endpoint_url=settings.s3_endpoint,
            region_name=settings.s3_region,
            aws_access_key_id=secret(settings.s3_access_key_id),
            aws_secret_access_key=secret(settings.s3_secret_access_key),
            config=Config(
                s3={"addressing_style": "path" if settings.s3_force_path_style else "auto"},
                retries={"mode": "standard", "max_attempts": 3},
                connect_timeout=5,
                read_timeout=60,
            ),
        )

    def get_bytes(self, key: str) -> bytes:
        return self._client.get_object(Bucket=self.bucket, Key=key)["Body"].read()

    def put_bytes(self, key: str, data: bytes, content_type: str, metadata: dict[str, str] | None = None) -> None:
        self._client.put_object(Bucket=self.bucket, Key=key, Body=data, ContentType=content_type, Metadata=metadata or {})

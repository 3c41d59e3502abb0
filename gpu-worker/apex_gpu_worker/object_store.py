"""The deployment's S3 bucket, as the steps use it: read an object, write an image. Failures raise
ordinary exceptions, so BullMQ retries the step with backoff; nothing here swallows an error.
A caller's own bucket is reached only at the address its endpoint resolved to when it was checked."""

import socket

import boto3
from botocore.awsrequest import AWSHTTPConnectionPool, AWSHTTPSConnectionPool
from botocore.config import Config
from botocore.httpsession import URLLib3Session
from urllib3 import PoolManager

from .contracts.payloads import Destination
from .contracts.step_errors import DestinationRefused
from .outbound_target import OutboundTarget, Resolver, UnsafeTarget, resolve_outbound_target
from .settings import WorkerSettings

TIMEOUTS = (5, 60)  # connect, read (seconds)


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
            connect_timeout=TIMEOUTS[0],
            read_timeout=TIMEOUTS[1],
        ),
    )


class ObjectStore:
    def __init__(self, settings: WorkerSettings):
        secret = lambda s: s.get_secret_value() if s else None  # noqa: E731
        self.bucket = settings.s3_bucket
        self._client = _client(settings.s3_endpoint, settings.s3_region, secret(settings.s3_access_key_id),
                               secret(settings.s3_secret_access_key), path_style=settings.s3_force_path_style)

    @classmethod
    def for_destination(cls, destination: Destination, keys: dict[str, str], allow_private: bool = False,
                        resolve: Resolver = socket.getaddrinfo) -> "ObjectStore":
        """A caller's own bucket, reached with the keys from the job's sealed secrets (never logged).
        Its endpoint is resolved and checked once, here; every request then goes to that address."""
        endpoint = destination.get("endpoint")
        try:
            target = resolve_outbound_target(endpoint, allow_private, resolve) if endpoint else None
        except UnsafeTarget as err:
            raise DestinationRefused(f"destination.endpoint is refused: {err}") from None
        store = cls.__new__(cls)
        store.bucket = destination["bucket"]
        store._client = _client(endpoint, destination.get("region", "us-east-1"), keys["access_key_id"],
                                keys["secret_access_key"], keys.get("session_token"), path_style=bool(endpoint))
        store._sessions = [_pin(store._client, target)] if target else []
        return store

    def get_bytes(self, key: str) -> bytes:
        return self._client.get_object(Bucket=self.bucket, Key=key)["Body"].read()

    def etag(self, key: str) -> str | None:
        """The version of the object S3 names (its ETag), or None where there is no such object."""
        try:
            return self._client.head_object(Bucket=self.bucket, Key=key)["ETag"]
        except self._client.exceptions.ClientError as err:
            if err.response.get("Error", {}).get("Code") in ("404", "NoSuchKey", "NotFound"):
                return None
            raise

    def get_bytes_if_present(self, key: str) -> bytes | None:
        """The object's bytes, or None where there is no such object (other failures raise)."""
        try:
            return self.get_bytes(key)
        except self._client.exceptions.NoSuchKey:
            return None

    def close(self) -> None:
        """Closes the client's connections (a caller's bucket is used for one step only)."""
        self._client.close()
        for session in getattr(self, "_sessions", ()):
            session.close()

    def put_bytes(self, key: str, data: bytes, content_type: str, metadata: dict[str, str] | None = None) -> None:
        self._client.put_object(Bucket=self.bucket, Key=key, Body=data, ContentType=content_type, Metadata=metadata or {})


def _pin(client, target: OutboundTarget) -> "_PinnedSession":
    """Sends every request of `client` through botocore's own HTTP session, except that connections
    go to `target.address`. The request still names the URL's host: Host header (as signed), TLS
    server name and certificate check. No proxy either: a proxy would resolve the name again."""
    session = _PinnedSession(target)
    default_port = {"http": 80, "https": 443}[target.scheme]
    host = f"[{target.host}]" if ":" in target.host else target.host
    host_header = host if target.port == default_port else f"{host}:{target.port}"

    def send(request, **_):
        request.headers["Host"] = host_header  # urllib3 would otherwise send the pinned address
        return session.send(request)

    client.meta.events.register("before-send.s3", send)
    return session


class _PinnedSession(URLLib3Session):
    # botocore's session (TLS set-up, timeouts, error mapping that its retries rely on) with the one
    # method that picks the pool manager replaced; tests/test_outbound_target.py fails if an
    # upgrade stops calling it.
    def __init__(self, target: OutboundTarget):
        super().__init__(timeout=TIMEOUTS)
        self._pinned = _PinnedPoolManager(target, **self._get_pool_manager_kwargs())

    def _get_connection_manager(self, url, proxy_url=None):
        return self._pinned


class _PinnedPoolManager(PoolManager):
    def __init__(self, target: OutboundTarget, **pool_kwargs):
        super().__init__(**pool_kwargs)
        self.pool_classes_by_scheme = {"http": AWSHTTPConnectionPool, "https": AWSHTTPSConnectionPool}
        self._target = target

    def connection_from_host(self, host, port=None, scheme="http", pool_kwargs=None):
        target = self._target
        if (host.strip("[]"), port, scheme) != (target.host, target.port, target.scheme):
            raise UnsafeTarget(f"{scheme}://{host}:{port} is not the destination endpoint that was checked")
        return super().connection_from_host(target.address, port, scheme, {**(pool_kwargs or {}), "server_hostname": target.host})

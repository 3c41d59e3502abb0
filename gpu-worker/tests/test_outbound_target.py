"""A caller's destination endpoint: only public addresses, resolved once, and every upload goes to
the address that was checked (a DNS answer that changes afterwards is never connected to)."""

import datetime
import http.server
import socket
import ssl
import sys
import threading

import pytest
from botocore.exceptions import EndpointConnectionError, SSLError
from bullmq import UnrecoverableError

from apex_gpu_worker.contracts.addresses import address_examples
from apex_gpu_worker.object_store import ObjectStore
from apex_gpu_worker.outbound_target import is_public_address, resolve_outbound_target
from apex_gpu_worker.settings import WorkerSettings
from support.tcp_listener import Listener

KEYS = {"access_key_id": "AKIATENANTKEY", "secret_access_key": "tenant-secret", "session_token": "tenant-session-token"}
# The examples both languages' tests check (contracts/outbound-addresses.json).
EXAMPLES = address_examples(WorkerSettings().contracts_dir)
REFUSED = [*EXAMPLES["notPublic"], *EXAMPLES["notAddresses"]]
ACCEPTED = EXAMPLES["public"]


def answering(*addresses):
    """A resolver (socket.getaddrinfo's shape) that gives the next answer on each lookup."""
    answers, lookups = iter(addresses), []

    def resolve(host, port, *args, **kwargs):
        lookups.append(host)
        address = next(answers)
        family = socket.AF_INET6 if ":" in address else socket.AF_INET
        return [(family, socket.SOCK_STREAM, socket.IPPROTO_TCP, "", (address, port))]

    resolve.lookups = lookups
    return resolve


_blocked: dict[str, list] = {}


def _audit(event, args):
    # Connections to the test's public-looking addresses are refused before the system call, so
    # nothing leaves the machine; the attempt is recorded.
    if event == "socket.connect" and isinstance(args[1], tuple) and args[1][0] in _blocked:
        _blocked[args[1][0]].append(args[1][:2])
        raise ConnectionRefusedError(f"test: no connection to {args[1][0]}")


sys.addaudithook(_audit)


@pytest.mark.parametrize("address", REFUSED)
def test_a_non_public_address_or_a_name_resolving_to_one_is_refused(address):
    assert not is_public_address(address)
    if address != "not an address":
        with pytest.raises(ValueError, match="not a public address"):
            resolve_outbound_target("https://s3.tenant.example/", False, answering(address))
        literal = f"[{address.split('%')[0]}]" if ":" in address else address
        with pytest.raises(ValueError, match="not a public address"):
            resolve_outbound_target(f"http://{literal}:9000", False)


@pytest.mark.parametrize("address", ACCEPTED)
def test_a_public_address_or_a_name_resolving_to_one_is_accepted(address):
    assert is_public_address(address)
    target = resolve_outbound_target("https://s3.tenant.example/", False, answering(address))
    assert (target.host, target.port, target.address) == ("s3.tenant.example", 443, address)
    literal = f"[{address}]" if ":" in address else address
    assert resolve_outbound_target(f"http://{literal}:9000", False).address == address


def test_private_addresses_are_allowed_only_when_the_deployment_says_so(monkeypatch):
    assert resolve_outbound_target("http://minio.internal:9000", True, answering("10.0.0.5")).address == "10.0.0.5"
    monkeypatch.setenv("DESTINATION_ALLOW_PRIVATE", "true")
    assert WorkerSettings().destination_allow_private
    monkeypatch.delenv("DESTINATION_ALLOW_PRIVATE")
    assert not WorkerSettings().destination_allow_private


def test_an_endpoint_resolving_to_a_private_address_is_refused_before_any_connection():
    with pytest.raises(UnrecoverableError, match=r"destination\.endpoint is refused: s3\.tenant\.example \(resolved to 169\.254\.169\.254\) is not a public"):
        ObjectStore.for_destination({"bucket": "b", "endpoint": "https://s3.tenant.example"}, KEYS, False, answering("169.254.169.254"))
    for url in ("ftp://s3.tenant.example", "https://user:pass@s3.tenant.example"):
        with pytest.raises(UnrecoverableError, match=r"destination\.endpoint"):
            ObjectStore.for_destination({"bucket": "b", "endpoint": url}, KEYS, False, answering("8.8.8.8"))


def test_a_name_rebinding_to_loopback_after_the_check_gets_no_byte_of_the_upload():
    """The check sees a public address; a second lookup would give 127.0.0.1, where a listener
    waits. `localhost` is the name: boto3 looking it up again itself would reach the listener."""
    listener = Listener()
    resolve = answering("93.184.215.14", "127.0.0.1", "127.0.0.1", "127.0.0.1")
    _blocked["93.184.215.14"] = attempts = []
    try:
        store = ObjectStore.for_destination({"bucket": "b", "endpoint": f"http://localhost:{listener.port}"}, KEYS, False, resolve)
        with pytest.raises(EndpointConnectionError):
            store.put_bytes("renders/0.png", b"image", "image/png")
    finally:
        del _blocked["93.184.215.14"]
        listener.close()
    assert resolve.lookups == ["localhost"]
    assert attempts and set(attempts) == {("93.184.215.14", listener.port)}  # every attempt (botocore retries) went there
    assert listener.received == []


class _S3Stub(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # answers botocore's Expect: 100-continue

    def do_PUT(self):
        self.server.requests.append((self.path, self.headers["Host"], self.rfile.read(int(self.headers["Content-Length"]))))
        self.send_response(200)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, *args):
        pass


def test_with_private_addresses_allowed_the_upload_still_goes_to_the_address_that_was_checked():
    rebound = Listener()
    port = rebound.port
    checked = http.server.ThreadingHTTPServer(("127.0.0.2", port), _S3Stub)
    checked.requests = []
    threading.Thread(target=checked.serve_forever, daemon=True).start()
    try:
        resolve = answering("127.0.0.2", "127.0.0.1", "127.0.0.1")
        store = ObjectStore.for_destination({"bucket": "b", "endpoint": f"http://localhost:{port}"}, KEYS, True, resolve)
        store.put_bytes("renders/0.png", b"image-0", "image/png")
        store.put_bytes("renders/1.png", b"image-1", "image/png")
    finally:
        checked.shutdown()
        rebound.close()
    assert checked.requests == [("/b/renders/0.png", f"localhost:{port}", b"image-0"), ("/b/renders/1.png", f"localhost:{port}", b"image-1")]
    assert rebound.received == []


def test_over_https_the_pinned_connection_still_sends_and_verifies_the_endpoint_host_name(tmp_path):
    """TLS goes to the pinned address but names the URL's host (SNI) and checks the certificate:
    a server with a certificate nobody vouches for gets a handshake and no request."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(x509.NameOID.COMMON_NAME, "s3.tenant.example")])
    now = datetime.datetime.now(datetime.timezone.utc)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
            .serial_number(1).not_valid_before(now).not_valid_after(now + datetime.timedelta(days=1))
            .add_extension(x509.SubjectAlternativeName([x509.DNSName("s3.tenant.example")]), critical=False)
            .sign(key, hashes.SHA256()))
    (tmp_path / "cert.pem").write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    (tmp_path / "key.pem").write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()))
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(tmp_path / "cert.pem", tmp_path / "key.pem")
    server_names, received = [], []
    context.sni_callback = lambda sock, server_name, ctx: server_names.append(server_name)
    listener = socket.create_server(("127.0.0.1", 0))

    def serve():
        while True:
            try:
                conn, _ = listener.accept()
            except OSError:
                return
            try:
                with context.wrap_socket(conn, server_side=True) as tls:
                    received.append(tls.recv(65536))
            except (ssl.SSLError, OSError):
                pass

    threading.Thread(target=serve, daemon=True).start()
    endpoint = f"https://s3.tenant.example:{listener.getsockname()[1]}"
    store = ObjectStore.for_destination({"bucket": "b", "endpoint": endpoint}, KEYS, True, answering("127.0.0.1"))
    with pytest.raises(SSLError, match="CERTIFICATE_VERIFY_FAILED"):
        store.put_bytes("renders/0.png", b"image", "image/png")
    listener.close()
    assert server_names and set(server_names) == {"s3.tenant.example"}
    assert received == []

"""gRPC over TLS against the real server, with certificates made in the test."""

from __future__ import annotations

import subprocess
from pathlib import Path

import numpy as np
import pytest
import tritonclient.grpc as grpcclient
from tritonclient.utils import InferenceServerException

from deepfake_client import DeepfakeClient, TlsOptions
from deepfake_serving.testing.triton import MODEL_REPOSITORY, start_triton

pytestmark = pytest.mark.server


def make_certificates(directory: Path) -> dict[str, Path]:
    """A throwaway CA and a server certificate for 127.0.0.1/localhost, via openssl."""
    paths = {name: directory / f"{name}.pem" for name in ("ca", "ca_key", "server", "server_key", "csr")}

    def openssl(command: str, **files: Path) -> None:
        """``openssl`` with ``command``'s words, then ``-<option> <file>`` for each of ``files``."""
        paths_args = [arg for option, path in files.items() for arg in (f"-{option}", str(path))]
        subprocess.run(["openssl", *command.split(), *paths_args], check=True, capture_output=True)

    openssl("req -x509 -newkey rsa:2048 -nodes -days 1 -subj /CN=test-ca", keyout=paths["ca_key"], out=paths["ca"])
    openssl("req -newkey rsa:2048 -nodes -subj /CN=localhost", keyout=paths["server_key"], out=paths["csr"])
    extensions = directory / "san.cnf"
    extensions.write_text("subjectAltName=DNS:localhost,IP:127.0.0.1\n")
    openssl(
        "x509 -req -CAcreateserial -days 1",
        **{
            "in": paths["csr"],
            "CA": paths["ca"],
            "CAkey": paths["ca_key"],
            "extfile": extensions,
            "out": paths["server"],
        },
    )
    return paths


@pytest.fixture(scope="module")
def tls_server(tmp_path_factory):
    workdir = tmp_path_factory.mktemp("tls")
    certificates = make_certificates(workdir)
    repository = workdir / "repository"
    repository.mkdir()
    (repository / "forensic_classifier").symlink_to(MODEL_REPOSITORY / "forensic_classifier")
    server = start_triton(
        workdir,
        repository=repository,
        extra=[
            "--grpc-use-ssl=true",
            f"--grpc-server-cert={certificates['server']}",
            f"--grpc-server-key={certificates['server_key']}",
        ],
    )
    try:
        yield server, certificates
    finally:
        server.stop()


def classify(client: grpcclient.InferenceServerClient) -> np.ndarray:
    tensor = grpcclient.InferInput("input", [1, 12], "FP32")
    tensor.set_data_from_numpy(np.ones((1, 12), dtype=np.float32))
    return client.infer("forensic_classifier", [tensor]).as_numpy("output")


def test_a_client_trusting_the_ca_infers_over_tls(tls_server):
    server, certificates = tls_server
    client = grpcclient.InferenceServerClient(
        f"localhost:{server.options.grpc_port}", ssl=True, root_certificates=str(certificates["ca"])
    )
    assert client.is_server_ready()
    assert classify(client).shape == (1, 2)
    client.close()


def test_a_plaintext_client_is_refused(tls_server):
    server, _ = tls_server
    client = grpcclient.InferenceServerClient(server.grpc_url)
    with pytest.raises(InferenceServerException):
        classify(client)
    client.close()


def test_a_client_not_trusting_the_ca_is_refused(tls_server):
    server, _ = tls_server
    client = grpcclient.InferenceServerClient(f"localhost:{server.options.grpc_port}", ssl=True)
    with pytest.raises(InferenceServerException):
        classify(client)
    client.close()


def test_the_project_client_speaks_tls(tls_server):
    server, certificates = tls_server
    with DeepfakeClient(
        f"localhost:{server.options.grpc_port}", tls=TlsOptions(root_certificates=str(certificates["ca"]))
    ) as client:
        assert client.is_ready("forensic_classifier")

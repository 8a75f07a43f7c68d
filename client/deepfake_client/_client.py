"""The blocking client: one call per media file, retries and several endpoints handled here."""

from __future__ import annotations

import concurrent.futures
import threading
import time
from collections.abc import Iterable, Iterator, Sequence
from typing import Any

import numpy as np

from deepfake_client._common import (
    DEFAULT,
    Call,
    ClientBase,
    Media,
    grpc_tls,
    map_error,
    output_names,
)
from deepfake_client._errors import DeepfakeClientError, UnavailableError
from deepfake_client._results import AudioResult, DetectionResult, ImageResult, VideoResult
from deepfake_client._sniff import MediaKind

__all__ = ["DeepfakeClient"]


class DeepfakeClient(ClientBase):
    """Blocking client for the ``detect_image``/``detect_audio``/``detect_video`` ensembles.

    Encoded file bytes go to the server as they are (no client-side decoding),
    so the client stays thin and results match what any other caller gets.

    Args:
        url: ``host:port``, a list of them, or ``dns:///name:port`` (every address
            behind the name); requests are spread round-robin, one endpoint per request.
        protocol: ``"grpc"`` (default, port 8001) or ``"http"`` (port 8000).
        timeout: deadline in seconds for each request (None: wait forever); a retry gets a fresh one.
        retry: which failures are retried and how long to wait (see ``RetryPolicy``).
        max_bytes: media larger than this is refused before anything is sent. None (the
            default) applies the server's own limit for each kind of media, from
            ``deepfake_contract.MEDIA`` (32 MiB images, 64 MiB audio, 256 MiB video).
        headers: extra request headers (for example ``{"authorization": "Bearer ..."}``).
        tls: TLS towards the server: True (system trust store) or ``TlsOptions``.
        models: ensemble names, for deployments that rename them.
        dns_refresh_s: how often ``dns:///`` targets are resolved again.
    """

    # -- context management ------------------------------------------------
    def __enter__(self) -> DeepfakeClient:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def close(self) -> None:
        """Close every connection this client opened."""
        with self._lock:
            transports, self._transports = list(self._transports.values()), {}
            self._closed = True
        for transport in transports:
            try:
                transport.close()
            except Exception:  # noqa: BLE001 - closing is best effort
                pass

    # -- detection ---------------------------------------------------------
    def detect_image(self, media: Media, *, timeout: float | None = DEFAULT) -> ImageResult:  # type: ignore[assignment]
        """Faces, per-model probabilities and the fused verdict for one image file."""
        return self._detect(media, "image", timeout)  # type: ignore[return-value]

    def detect_audio(self, media: Media, *, timeout: float | None = DEFAULT) -> AudioResult:  # type: ignore[assignment]
        """Per-window probabilities and the verdict for one audio file."""
        return self._detect(media, "audio", timeout)  # type: ignore[return-value]

    def detect_video(self, media: Media, *, timeout: float | None = DEFAULT) -> VideoResult:  # type: ignore[assignment]
        """The frame timeline, sound verdict and fused verdict for one video file."""
        return self._detect(media, "video", timeout)  # type: ignore[return-value]

    def detect(self, media: Media, *, timeout: float | None = DEFAULT) -> DetectionResult:  # type: ignore[assignment]
        """Any media: the ensemble is chosen from the content's magic bytes, not the file name."""
        return self._detect(media, None, timeout)

    def detect_many(
        self,
        items: Iterable[Media],
        *,
        concurrency: int = 4,
        kind: MediaKind | None = None,
        timeout: float | None = DEFAULT,  # type: ignore[assignment]
        return_exceptions: bool = False,
    ) -> Iterator[DetectionResult | DeepfakeClientError]:
        """Keep ``concurrency`` requests in flight and yield each result as it finishes.

        Results come in completion order; each carries ``source`` to tell them
        apart. With ``return_exceptions`` a failed item yields its
        ``DeepfakeClientError`` (``.source`` set) instead of stopping the run.
        ``items`` is consumed lazily, so a huge folder is never loaded at once.
        """
        if concurrency < 1:
            raise ValueError("concurrency must be at least 1")
        iterator = iter(items)
        pending: set[concurrent.futures.Future[DetectionResult]] = set()
        with concurrent.futures.ThreadPoolExecutor(concurrency, thread_name_prefix="deepfake-detect") as pool:
            try:
                while True:
                    for media in iterator:
                        pending.add(pool.submit(self._detect, media, kind, timeout))
                        if len(pending) >= concurrency:
                            break
                    if not pending:
                        return
                    done, pending = concurrent.futures.wait(pending, return_when=concurrent.futures.FIRST_COMPLETED)
                    for future in done:
                        error = future.exception()
                        if error is None:
                            yield future.result()
                        elif return_exceptions and isinstance(error, DeepfakeClientError):
                            yield error
                        else:
                            raise error
            finally:
                for future in pending:
                    future.cancel()

    # -- health ------------------------------------------------------------
    def is_live(self) -> bool:
        """Whether every endpoint answers its liveness check."""
        return all(self._health(url, "is_server_live") for url in self.urls)

    def is_ready(self, model: str | None = None) -> bool:
        """Whether every endpoint is ready (and serves ``model`` ready, when given)."""
        check = "is_server_ready" if model is None else "is_model_ready"
        return all(self._health(url, check, *([model] if model else [])) for url in self.urls)

    def wait_until_ready(self, timeout: float = 60.0, *, models: Sequence[str] = ()) -> None:
        """Block until every endpoint (and each of ``models``) is ready; ``UnavailableError`` after ``timeout``."""
        deadline = time.monotonic() + timeout
        while True:
            if self.is_ready() and all(self.is_ready(model) for model in models):
                return
            if time.monotonic() >= deadline:
                raise UnavailableError(f"not ready after {timeout:.0f}s: {', '.join(self.urls)}", status="UNAVAILABLE")
            time.sleep(min(0.5, max(0.0, deadline - time.monotonic())))

    def model_metadata(self, model: str | None = None) -> dict[str, Any]:
        """The model's inputs and outputs as the server describes them (default: the image ensemble)."""
        url = self._settings.endpoints.next()
        transport = self._transport(url, self._settings.timeout)
        name = model or self._settings.models.image
        try:
            if self._settings.protocol == "grpc":
                return transport.get_model_metadata(name, headers=self._settings.headers, as_json=True)
            return transport.get_model_metadata(name, headers=self._settings.headers)
        except Exception as exc:
            raise map_error(exc, url=url) from exc

    # -- internals ---------------------------------------------------------
    def _health(self, url: str, method: str, *args: str) -> bool:
        try:
            return bool(
                getattr(self._transport(url, self._settings.timeout), method)(*args, headers=self._settings.headers)
            )
        except Exception:  # noqa: BLE001 - any failure means "not ready"
            return False

    def _detect(self, media: Media, kind: MediaKind | None, timeout: float | None | object) -> DetectionResult:
        settings = self._settings
        call = settings.prepare(media, kind, timeout)
        attempt = 0
        while True:
            attempt += 1
            url = settings.endpoints.next()
            try:
                return call.result(self._infer(url, call))
            except Exception as exc:
                error, again = settings.failure(exc, url=url, call=call, attempt=attempt)
                if not again:
                    raise error from exc
            time.sleep(settings.retry.backoff_s(attempt))

    def _infer(self, url: str, call: Call) -> dict[str, np.ndarray]:
        array = np.array([call.data], dtype=np.object_)
        transport = self._transport(url, call.deadline)
        headers = self._settings.headers
        if self._settings.protocol == "grpc":
            import tritonclient.grpc as grpcclient

            tensor = grpcclient.InferInput(call.input_name, [1], "BYTES")
            tensor.set_data_from_numpy(array)
            result = transport.infer(call.model, [tensor], client_timeout=call.deadline, headers=headers)
        else:
            import tritonclient.http as httpclient

            tensor = httpclient.InferInput(call.input_name, [1], "BYTES")
            tensor.set_data_from_numpy(array, binary_data=True)
            result = transport.infer(call.model, [tensor], headers=headers)
        return {name: result.as_numpy(name) for name in output_names(result.get_response())}

    def _transport(self, url: str, timeout: float | None) -> Any:
        """One tritonclient client per endpoint (gRPC channels are thread-safe);
        HTTP clients are per thread and per deadline, because geventhttpclient is neither."""
        settings = self._settings
        if settings.protocol == "grpc":
            key: tuple[Any, ...] = (url,)
        else:
            key = (url, threading.get_ident(), timeout)
        with self._lock:
            if self._closed:
                raise RuntimeError("the client is closed")
            transport = self._transports.get(key)
            if transport is None:
                transport = self._transports[key] = self._new_transport(url, timeout)
            return transport

    def _new_transport(self, url: str, timeout: float | None) -> Any:
        tls = self._settings.tls
        if self._settings.protocol == "grpc":
            import tritonclient.grpc as grpcclient

            return grpcclient.InferenceServerClient(url, **grpc_tls(tls))
        import tritonclient.http as httpclient

        ssl_options: dict[str, str] = {}
        if tls is not None:
            ssl_options = {
                k: v
                for k, v in (
                    ("ca_certs", tls.root_certificates),
                    ("keyfile", tls.private_key),
                    ("certfile", tls.certificate_chain),
                )
                if v
            }
        seconds = timeout if timeout is not None else 365 * 24 * 3600.0
        return httpclient.InferenceServerClient(
            url,
            connection_timeout=seconds,
            network_timeout=seconds,
            ssl=tls is not None,
            ssl_options=ssl_options or None,
        )

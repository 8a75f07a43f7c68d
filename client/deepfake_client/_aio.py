"""The asyncio client: the same methods as ``DeepfakeClient``, awaited."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterable, Sequence
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
from deepfake_client._errors import DeadlineExceededError, DeepfakeClientError, UnavailableError
from deepfake_client._results import AudioResult, DetectionResult, ImageResult, VideoResult
from deepfake_client._sniff import MediaKind

__all__ = ["AsyncDeepfakeClient"]


class AsyncDeepfakeClient(ClientBase):
    """Asyncio client over ``tritonclient.grpc.aio`` / ``tritonclient.http.aio``.

    Takes the same options as ``DeepfakeClient`` and has the same methods,
    each a coroutine; ``detect_many`` is an async generator. Use it with
    ``async with`` so its connections are closed on the loop that opened them.
    """

    async def __aenter__(self) -> AsyncDeepfakeClient:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.close()

    async def close(self) -> None:
        """Close every connection this client opened."""
        transports, self._transports = list(self._transports.values()), {}
        self._closed = True
        for transport in transports:
            try:
                await transport.close()
            except Exception:  # noqa: BLE001 - closing is best effort
                pass

    async def detect_image(self, media: Media, *, timeout: float | None = DEFAULT) -> ImageResult:  # type: ignore[assignment]
        """Faces, per-model probabilities and the fused verdict for one image file."""
        return await self._detect(media, "image", timeout)  # type: ignore[return-value]

    async def detect_audio(self, media: Media, *, timeout: float | None = DEFAULT) -> AudioResult:  # type: ignore[assignment]
        """Per-window probabilities and the verdict for one audio file."""
        return await self._detect(media, "audio", timeout)  # type: ignore[return-value]

    async def detect_video(self, media: Media, *, timeout: float | None = DEFAULT) -> VideoResult:  # type: ignore[assignment]
        """The frame timeline, sound verdict and fused verdict for one video file."""
        return await self._detect(media, "video", timeout)  # type: ignore[return-value]

    async def detect(self, media: Media, *, timeout: float | None = DEFAULT) -> DetectionResult:  # type: ignore[assignment]
        """Any media: the ensemble is chosen from the content's magic bytes, not the file name."""
        return await self._detect(media, None, timeout)

    async def detect_many(
        self,
        items: Iterable[Media],
        *,
        concurrency: int = 4,
        kind: MediaKind | None = None,
        timeout: float | None = DEFAULT,  # type: ignore[assignment]
        return_exceptions: bool = False,
    ) -> AsyncIterator[DetectionResult | DeepfakeClientError]:
        """Keep ``concurrency`` requests in flight and yield each result as it finishes (see ``DeepfakeClient``)."""
        if concurrency < 1:
            raise ValueError("concurrency must be at least 1")
        iterator = iter(items)
        pending: set[asyncio.Task[DetectionResult]] = set()
        try:
            while True:
                for media in iterator:
                    pending.add(asyncio.ensure_future(self._detect(media, kind, timeout)))
                    if len(pending) >= concurrency:
                        break
                if not pending:
                    return
                done, pending = await asyncio.wait(pending, return_when=asyncio.FIRST_COMPLETED)
                for task in done:
                    error = task.exception()
                    if error is None:
                        yield task.result()
                    elif return_exceptions and isinstance(error, DeepfakeClientError):
                        yield error
                    else:
                        raise error
        finally:
            for task in pending:
                task.cancel()

    async def is_live(self) -> bool:
        """Whether every endpoint answers its liveness check."""
        return all([await self._health(url, "is_server_live") for url in self.urls])

    async def is_ready(self, model: str | None = None) -> bool:
        """Whether every endpoint is ready (and serves ``model`` ready, when given)."""
        check = "is_server_ready" if model is None else "is_model_ready"
        return all([await self._health(url, check, *([model] if model else [])) for url in self.urls])

    async def wait_until_ready(self, timeout: float = 60.0, *, models: Sequence[str] = ()) -> None:
        """Wait until every endpoint (and each of ``models``) is ready; ``UnavailableError`` after ``timeout``."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while True:
            if await self.is_ready() and all([await self.is_ready(model) for model in models]):
                return
            if loop.time() >= deadline:
                raise UnavailableError(f"not ready after {timeout:.0f}s: {', '.join(self.urls)}", status="UNAVAILABLE")
            await asyncio.sleep(min(0.5, max(0.0, deadline - loop.time())))

    async def model_metadata(self, model: str | None = None) -> dict[str, Any]:
        """The model's inputs and outputs as the server describes them (default: the image ensemble)."""
        url = self._settings.endpoints.next()
        name = model or self._settings.models.image
        try:
            transport = self._transport(url)
            if self._settings.protocol == "grpc":
                return await transport.get_model_metadata(name, headers=self._settings.headers, as_json=True)
            return await transport.get_model_metadata(name, headers=self._settings.headers)
        except Exception as exc:
            raise map_error(exc, url=url) from exc

    async def _health(self, url: str, method: str, *args: str) -> bool:
        try:
            call = getattr(self._transport(url), method)(*args, headers=self._settings.headers)
            return bool(await asyncio.wait_for(call, self._settings.timeout))
        except Exception:  # noqa: BLE001 - any failure means "not ready"
            return False

    async def _detect(self, media: Media, kind: MediaKind | None, timeout: float | None | object) -> DetectionResult:
        settings = self._settings
        call = settings.prepare(media, kind, timeout)
        attempt = 0
        while True:
            attempt += 1
            url = settings.endpoints.next()
            try:
                return call.result(await self._infer(url, call))
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                error, again = settings.failure(exc, url=url, call=call, attempt=attempt)
                if not again:
                    raise error from exc
            await asyncio.sleep(settings.retry.backoff_s(attempt))

    async def _infer(self, url: str, call: Call) -> dict[str, np.ndarray]:
        array = np.array([call.data], dtype=np.object_)
        transport = self._transport(url)
        headers = self._settings.headers
        if self._settings.protocol == "grpc":
            import tritonclient.grpc.aio as grpcclient

            tensor = grpcclient.InferInput(call.input_name, [1], "BYTES")
            tensor.set_data_from_numpy(array)
            result = await transport.infer(call.model, [tensor], client_timeout=call.deadline, headers=headers)
        else:
            import tritonclient.http.aio as httpclient

            tensor = httpclient.InferInput(call.input_name, [1], "BYTES")
            tensor.set_data_from_numpy(array, binary_data=True)
            try:
                result = await asyncio.wait_for(transport.infer(call.model, [tensor], headers=headers), call.deadline)
            except TimeoutError as error:
                raise DeadlineExceededError(
                    f"no answer within {call.deadline}s", status="DEADLINE_EXCEEDED", url=url
                ) from error
        return {name: result.as_numpy(name) for name in output_names(result.get_response())}

    def _transport(self, url: str) -> Any:
        if self._closed:
            raise RuntimeError("the client is closed")
        transport = self._transports.get(url)
        if transport is None:
            transport = self._transports[url] = self._new_transport(url)
        return transport

    def _new_transport(self, url: str) -> Any:
        tls = self._settings.tls
        if self._settings.protocol == "grpc":
            import tritonclient.grpc.aio as grpcclient

            return grpcclient.InferenceServerClient(url, **grpc_tls(tls))
        import ssl

        import tritonclient.http.aio as httpclient

        context = None
        if tls is not None:
            context = ssl.create_default_context(cafile=tls.root_certificates)
            if tls.certificate_chain:
                context.load_cert_chain(tls.certificate_chain, tls.private_key)
        return httpclient.InferenceServerClient(
            url,
            conn_timeout=self._settings.timeout or 60.0,
            ssl=tls is not None,
            ssl_context=context,
        )

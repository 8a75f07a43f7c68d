"""The server a user would write from a model card's usage example: the naive baseline.

The usual example loads a model and runs one ``torch.no_grad()`` forward per
image; wrapping that in the standard library's web server is the obvious
deployment. So this is deliberately plain:

* ``http.server.HTTPServer`` (not ``ThreadingHTTPServer``): one process, one
  thread, requests served strictly one after another;
* per request: decode the posted JPEG with Pillow, preprocess as the visual
  detector's training code does (``cv2.resize`` to 224x224, /255, ImageNet mean/std, HWC->CHW), one PyTorch
  forward of ``VisualDetector`` (demo weights), softmax, JSON back;
* PyTorch's default threads (all cores), no batching, no ONNX.

The one concession: ``request_queue_size`` is raised from 5 to 128 so that at
concurrency 32 the benchmark measures queueing in the server rather than SYN
drops and the kernel's 1-second connect retry.

    .venv/bin/python -m perf.naive_server --port 8080
    curl --data-binary @face.jpg http://127.0.0.1:8080/detect
"""

from __future__ import annotations

import argparse
import io
import json
from http.server import BaseHTTPRequestHandler, HTTPServer

import cv2
import numpy as np
import torch
from PIL import Image

MEAN = np.array([0.485, 0.456, 0.406], dtype=np.float32)
STD = np.array([0.229, 0.224, 0.225], dtype=np.float32)


def preprocess(image: np.ndarray) -> np.ndarray:
    """The visual detector's reference ``preprocess`` (docs/models.md), verbatim apart from the dtype."""
    image = cv2.resize(image, (224, 224))
    image = image.astype(np.float32) / 255.0
    image = (image - MEAN) / STD
    image = np.transpose(image, (2, 0, 1))
    return image[np.newaxis, ...]


def decode(data: bytes) -> np.ndarray:
    """An encoded image as an RGB uint8 array, as a naive server would read it."""
    return np.asarray(Image.open(io.BytesIO(data)).convert("RGB"))


def load_model() -> torch.nn.Module:
    """VisualDetector with the same demo weights the ONNX export uses."""
    from deepfake_export.models import VisualDetector
    from deepfake_export.weights import load_weights

    model = VisualDetector()
    load_weights(model, "visual_detector", None)
    return model.eval()


class NaiveServer(HTTPServer):
    """A single-threaded HTTP server holding the PyTorch model; backlog raised to 128."""

    request_queue_size = 128

    def __init__(self, address: tuple[str, int], model: torch.nn.Module) -> None:
        super().__init__(address, Handler)
        self.model = model


class Handler(BaseHTTPRequestHandler):
    """``GET`` is a health check; ``POST /detect`` scores one encoded image."""

    server: NaiveServer

    def do_GET(self) -> None:  # noqa: N802 (http.server's naming)
        """Answer ``{"status": "ok"}``: the suite polls it until the model is loaded."""
        self._reply(200, {"status": "ok"})

    def do_POST(self) -> None:  # noqa: N802
        """Score the posted image: ``real_probability`` and ``fake_probability``, or 400 if it does not decode."""
        data = self.rfile.read(int(self.headers.get("Content-Length", 0)))
        try:
            x = torch.from_numpy(preprocess(decode(data)))
        except (OSError, ValueError) as error:
            self._reply(400, {"error": str(error)})
            return
        with torch.no_grad():
            probs = torch.softmax(self.server.model(x), dim=1)
        self._reply(200, {"real_probability": probs[0][0].item(), "fake_probability": probs[0][1].item()})

    def _reply(self, status: int, body: dict) -> None:
        payload = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)

    def log_message(self, format: str, *args: object) -> None:  # noqa: A002
        """Silent: a log line per request would be part of what we measure."""


def main() -> None:
    """Serve until interrupted."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8080)
    args = parser.parse_args()
    server = NaiveServer((args.host, args.port), load_model())
    print(f"naive server on http://{args.host}:{args.port}/detect", flush=True)
    server.serve_forever()


if __name__ == "__main__":
    main()

"""face_detector: encoded image -> faces (MTCNN), crops and visual-detector input.

The work lives in deepfake_serving.image_pipeline; this file only adapts it to
Triton. MTCNN's three ONNX stages sit next to this file (written by export).
"""

from pathlib import Path

import numpy as np
import triton_python_backend_utils as pb_utils

from deepfake_serving.image_pipeline import FaceDetector, FaceSettings
from deepfake_serving.triton_python import model_parameters, respond, single_bytes, work_budget


class TritonPythonModel:
    def initialize(self, args):
        self.parameters = p = model_parameters(args)
        settings = FaceSettings(
            min_face_size=int(p["min_face_size"]),
            min_confidence=float(p["min_confidence"]),
            max_faces=int(p["max_faces"]),
            margin=float(p["margin"]),
            max_pixels=int(p["max_pixels"]),
            max_bytes=int(p["max_bytes"]),
            max_jpeg_scans=int(p["max_jpeg_scans"]),
            max_tiff_chunks=int(p["max_tiff_chunks"]),
            max_candidates=tuple(int(n) for n in p["max_candidates"].split(",")),
        )
        version_dir = Path(args["model_repository"]) / args["model_version"]
        self.detector = FaceDetector(version_dir, settings, threads=int(p["onnx_threads"]))

    def execute(self, requests):
        return respond(pb_utils, "face_detector", requests, self._detect)

    def _detect(self, request):
        budget = work_budget(request, "IMAGE", self.parameters)
        faces = self.detector.detect(single_bytes(pb_utils, request, "IMAGE"), budget=budget)
        return {
            "FACE_BOXES": faces.boxes,
            "FACE_CONFIDENCE": faces.confidence,
            "FACE_CROPS": faces.crops,
            "VISUAL_INPUT": faces.visual_input,
            "FACE_FOUND": np.array([faces.face_found]),
            "FACES_DROPPED": np.array([faces.faces_dropped], dtype=np.int32),
        }

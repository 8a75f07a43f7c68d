"""detect_video: encoded video -> temporal, per-frame, audio and fused scores.

The work lives in deepfake_serving.video / video_pipeline / fusion; this file
decodes once, runs MTCNN in-process (one instance per model instance) and
calls the detectors as Triton models through BLS. Why BLS and not an
ensemble: see config.pbtxt.
"""

from pathlib import Path

import numpy as np
import triton_python_backend_utils as pb_utils

from deepfake_serving import video_pipeline as V
from deepfake_serving.audio_pipeline import AudioLimits
from deepfake_serving.fusion import NO_SCORE, AudioAggregation, FrameAggregation, VideoFusion
from deepfake_serving.image_pipeline import FaceDetector, FaceSettings
from deepfake_serving.provenance import any_demo
from deepfake_serving.triton_python import model_parameters, respond, single_bytes, work_budget
from deepfake_serving.video import sample_video

# The composing detectors' max_batch_size (their generated configs).
VISUAL_MAX_BATCH = 64
AUDIO_MAX_BATCH = 64


class TritonPythonModel:
    def initialize(self, args):
        self.parameters = p = model_parameters(args)
        repository = Path(args["model_repository"]).parent
        self.max_decode_pixels = int(p["max_decode_pixels"])
        self.max_bytes = int(p["max_bytes"])
        self.max_duration_s = float(p["max_duration_s"])
        self.max_pixels = int(p["max_pixels"])
        self.decode_threads = int(p["decode_threads"])
        settings = FaceSettings(
            min_face_size=int(p["min_face_size"]),
            min_confidence=float(p["min_confidence"]),
            max_faces=int(p["max_faces_per_frame"]),
            margin=float(p["margin"]),
            max_pixels=self.max_pixels,
        )
        self.faces = FaceDetector(repository / "face_detector" / "1", settings, threads=1)
        self.audio_limits = AudioLimits(
            max_duration_s=self.max_duration_s, max_native_samples=int(p["max_native_samples"])
        )
        self.audio_rule = AudioAggregation(float(p["audio_top_fraction"]))
        self.frame_rule = FrameAggregation(
            float(p["confident_fake_threshold"]),
            float(p["confident_fake_fraction"]),
            float(p["confident_real_threshold"]),
            float(p["confident_real_fraction"]),
        )
        self.fusion = VideoFusion(float(p["temporal_weight"]), float(p["frame_weight"]), float(p["audio_weight"]))
        self.demo = any_demo(repository, ["temporal_analyzer", "visual_detector", "audio_detector"])
        if self.demo:
            pb_utils.Logger.log_warn("detect_video: answers DEMO_WEIGHTS=true (untrained detectors)")

    def execute(self, requests):
        return respond(pb_utils, "detect_video", requests, self._detect)

    def _fake_probs(self, model, batch, max_batch):
        """Column 1 ("fake") of a detector's output, via BLS in chunks of its max batch."""
        out = []
        for chunk in V.batches(batch, max_batch):
            request = pb_utils.InferenceRequest(
                model_name=model,
                requested_output_names=["output"],
                inputs=[pb_utils.Tensor("input", np.ascontiguousarray(chunk, dtype=np.float32))],
            )
            response = request.exec()
            if response.has_error():
                raise RuntimeError(f"{model}: {response.error().message()}")
            out.append(pb_utils.get_output_tensor_by_name(response, "output").as_numpy()[:, 1])
        return np.concatenate(out).astype(np.float32) if out else np.empty(0, np.float32)

    def _detect(self, request):
        budget = work_budget(request, "VIDEO", self.parameters)
        sample = sample_video(
            single_bytes(pb_utils, request, "VIDEO"),
            max_bytes=self.max_bytes,
            max_duration_s=self.max_duration_s,
            max_pixels=self.max_pixels,
            threads=self.decode_threads,
            max_decode_pixels=self.max_decode_pixels,
            max_native_samples=self.audio_limits.max_native_samples,
            budget=budget,
        )
        if sample.audio_error:
            pb_utils.Logger.log_info(f"detect_video: audio track not scored: {sample.audio_error}")
        temporal = float(self._fake_probs("temporal_analyzer", V.temporal_input(sample), 1)[0])

        budget.check("the temporal analyzer")
        faces = V.detect_frame_faces(self.faces, sample, budget)
        face_probs = self._fake_probs("visual_detector", faces.visual_input, VISUAL_MAX_BATCH)
        frame_probs = V.frame_scores(face_probs, faces)
        frames_score = self.frame_rule.score(frame_probs, faces.has_face)

        windows = V.audio_track(sample, self.audio_limits)
        audio_score, audio_silent = None, False
        if windows is not None:
            voiced = ~windows.silent
            if voiced.any():
                probs = np.full(len(windows.silent), NO_SCORE, np.float32)
                probs[voiced] = self._fake_probs("audio_detector", windows.mel[voiced], AUDIO_MAX_BATCH)
                audio_score, _ = self.audio_rule.score(probs, windows.silent)
            else:
                audio_silent = True

        return {
            "TEMPORAL_FAKE_PROB": np.array([temporal], np.float32),
            "FRAME_TIME_S": sample.times_s.astype(np.float32),
            "FRAME_FAKE_PROB": frame_probs,
            "FRAME_HAS_FACE": faces.has_face,
            "FRAME_FACE_COUNT": faces.face_count,
            "FRAMES_FAKE_PROB": np.array([NO_SCORE if frames_score is None else frames_score], np.float32),
            "AUDIO_FAKE_PROB": np.array([NO_SCORE if audio_score is None else audio_score], np.float32),
            "HAS_AUDIO": np.array([windows is not None]),
            "AUDIO_SILENT": np.array([audio_silent]),
            "FAKE_PROB": np.array([self.fusion.score(temporal, frames_score, audio_score)], np.float32),
            "DEMO_WEIGHTS": np.array([self.demo]),
            "DISTINCT_FRAMES": np.array([sample.distinct_frames], np.int32),
        }

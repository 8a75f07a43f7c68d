"""detect_video: encoded video -> temporal, per-segment, per-frame, per-person, audio and fused scores.

The work lives in deepfake_serving.video / video_plan / video_pipeline /
tracking / fusion; this file opens the upload, runs MTCNN in-process (one
instance per model instance) and calls the detectors as Triton models
through BLS. Why BLS and not an
ensemble: see config.pbtxt.
"""

import functools
from pathlib import Path

import numpy as np
import triton_python_backend_utils as pb_utils

from deepfake_contract import AUDIO_DETECTOR, FACE_DETECTOR, TEMPORAL_ANALYZER, VISUAL_DETECTOR
from deepfake_contract import DETECT_VIDEO as SPEC
from deepfake_serving import video_pipeline as V
from deepfake_serving.audio_pipeline import AudioLimits, served_audio_input
from deepfake_serving.fusion import NO_SCORE, AudioAggregation, DecisionThreshold, FrameAggregation, VideoFusion
from deepfake_serving.image_pipeline import FaceDetector, FaceSettings
from deepfake_serving.provenance import demo_models, demo_models_tensor
from deepfake_serving.tracking import TrackSettings
from deepfake_serving.triton_python import model_parameters, respond, settings_from, single_bytes, work_budget
from deepfake_serving.video import VideoReader
from deepfake_serving.video_plan import CoverageSettings
from deepfake_serving.visual_preprocessing import served_preprocessing


class TritonPythonModel:
    """Score one video per request."""

    def initialize(self, args):
        """Load MTCNN and read every rule and limit from the config parameters."""
        self.threshold = DecisionThreshold.from_parameters(model_parameters(args))
        pb_utils.Logger.log_info(f"detect_video: THRESHOLD {self.threshold.value} ({self.threshold.source})")
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
        self.faces = FaceDetector(
            repository / FACE_DETECTOR.name / "1",
            settings,
            threads=1,
            workers=int(p["mtcnn_workers"]),
            preprocessing=served_preprocessing(repository),
        )
        self.faces.warm_up()  # the first request pays no first-call costs (deepfake_serving.warmup)
        self.audio_limits = AudioLimits(
            max_duration_s=self.max_duration_s, max_native_samples=int(p["max_native_samples"])
        )
        self.rules = V.VideoRules(
            coverage=settings_from(CoverageSettings, p),
            tracks=settings_from(TrackSettings, p, prefix="track_"),
            frames=settings_from(FrameAggregation, p),
            audio=settings_from(AudioAggregation, p, prefix="audio_", defaulted=("silent_score",)),
            audio_limits=self.audio_limits,
            audio_input=served_audio_input(repository),
        )
        self.detectors = V.Detectors(
            visual=functools.partial(self._fake_probs, VISUAL_DETECTOR),
            temporal=functools.partial(self._fake_probs, TEMPORAL_ANALYZER),
            audio=functools.partial(self._fake_probs, AUDIO_DETECTOR),
            visual_batch=VISUAL_DETECTOR.max_batch_size,
            temporal_batch=TEMPORAL_ANALYZER.max_batch_size,
        )
        self.fusion = settings_from(VideoFusion, p)
        self.demo_models = demo_models(
            repository, [d.name for d in (TEMPORAL_ANALYZER, VISUAL_DETECTOR, AUDIO_DETECTOR)]
        )
        if self.demo_models:
            pb_utils.Logger.log_warn("detect_video: answers DEMO_WEIGHTS=true (untrained detectors)")

    def execute(self, requests):
        """One response per request."""
        return respond(pb_utils, SPEC, requests, self._detect)

    def _fake_probs(self, detector, batch):
        """Column 1 ("fake") of a detector's output, via BLS in chunks of its max batch."""
        out = []
        for chunk in V.batches(batch, detector.max_batch_size):
            request = pb_utils.InferenceRequest(
                model_name=detector.name,
                requested_output_names=[detector.output.name],
                inputs=[pb_utils.Tensor(detector.input.name, np.ascontiguousarray(chunk, dtype=np.float32))],
            )
            response = request.exec()
            if response.has_error():
                raise RuntimeError(f"{detector.name}: {response.error().message()}")
            out.append(pb_utils.get_output_tensor_by_name(response, detector.output.name).as_numpy()[:, 1])
        return np.concatenate(out).astype(np.float32) if out else np.empty(0, np.float32)

    def _detect(self, request):
        budget = work_budget(request, SPEC.VIDEO.name, self.parameters)
        data = single_bytes(pb_utils, request, SPEC.VIDEO.name)
        with VideoReader(
            data,
            max_bytes=self.max_bytes,
            max_duration_s=self.max_duration_s,
            max_pixels=self.max_pixels,
            threads=self.decode_threads,
            max_decode_pixels=self.max_decode_pixels,
            budget=budget,
        ) as reader:
            result = V.analyze_video(reader, self.faces, self.detectors, self.rules, budget, data)
        if result.audio_error:
            pb_utils.Logger.log_info(f"detect_video: audio track not scored: {result.audio_error}")
        if result.coverage_reduced:
            pb_utils.Logger.log_info(
                f"detect_video: coverage thinned to {len(result.frame_time_s)} frames and "
                f"{len(result.segment_fake_prob)} segments to stay within max_decode_pixels"
            )
        frames_score, audio_score = result.frames_score, result.audio_score
        temporal = result.temporal_fake_prob

        # Only the detectors whose score entered FAKE_PROB count for this answer.
        used = [TEMPORAL_ANALYZER.name]
        used += [VISUAL_DETECTOR.name] if frames_score is not None else []
        used += [AUDIO_DETECTOR.name] if audio_score is not None else []
        demo = [name for name in used if name in self.demo_models]
        windows, tracks = result.audio, result.tracks
        no_windows = np.empty(0, np.float32)
        return {
            "TEMPORAL_FAKE_PROB": np.array([temporal], np.float32),
            "FRAME_TIME_S": result.frame_time_s,
            "FRAME_FAKE_PROB": result.frame_fake_prob,
            "FRAME_HAS_FACE": result.frame_has_face,
            "FRAME_FACE_COUNT": result.frame_face_count,
            "FRAMES_FAKE_PROB": np.array([NO_SCORE if frames_score is None else frames_score], np.float32),
            "AUDIO_FAKE_PROB": np.array([NO_SCORE if audio_score is None else audio_score], np.float32),
            "HAS_AUDIO": np.array([windows is not None]),
            "AUDIO_SILENT": np.array([result.audio_silent]),
            "FAKE_PROB": np.array([self.fusion.score(temporal, frames_score, audio_score)], np.float32),
            "DEMO_WEIGHTS": np.array([bool(demo)]),
            "DEMO_MODELS": demo_models_tensor(demo),
            "THRESHOLD": self.threshold.tensor(),
            "DISTINCT_FRAMES": np.array([result.distinct_frames], np.int32),
            "SEGMENT_START_S": result.plan.segment_start_s,
            "SEGMENT_END_S": result.plan.segment_end_s,
            "SEGMENT_FAKE_PROB": result.segment_fake_prob,
            "FACE_FRAME": result.face_frame,
            "FACE_TRACK": result.face_track,
            "FACE_BOXES": result.face_boxes.reshape(-1, 4),
            "FACE_FAKE_PROB": result.face_fake_prob,
            "TRACK_FAKE_PROB": tracks.fake_prob,
            "TRACK_START_S": tracks.start_s,
            "TRACK_END_S": tracks.end_s,
            "TRACK_FACES": tracks.faces,
            "TRACK_JUDGED": tracks.judged,
            "AUDIO_WINDOW_START_S": no_windows if windows is None else windows.starts_s,
            "AUDIO_WINDOW_FAKE_PROB": result.audio_fake_prob,
            "AUDIO_WINDOW_SILENT": np.empty(0, bool) if windows is None else windows.silent,
            "COVERAGE_REDUCED": np.array([result.coverage_reduced]),
        }

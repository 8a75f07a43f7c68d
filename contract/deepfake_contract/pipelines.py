"""The Python-backend models and the three entry models clients call.

The entry models (``detect_image``, ``detect_audio``, ``detect_video``) are the
public API: their tensors are what ``deepfake_client`` reads and what
docs/models.md documents. The steps inside them are listed too, because the
ensembles wire them by these names and a test checks every ``config.pbtxt``
against this module.
"""

from __future__ import annotations

from dataclasses import replace

from deepfake_contract import limits as L
from deepfake_contract.networks import AUDIO_DETECTOR, audio_detector
from deepfake_contract.tensors import ModelSpec, TensorSpec


def _encoded(name: str, what: str) -> TensorSpec:
    return TensorSpec(name, (1,), "STRING", f"the encoded {what} file's bytes, as uploaded")


DEMO_WEIGHTS = TensorSpec(
    "DEMO_WEIGHTS",
    (1,),
    "BOOL",
    "true when a detector behind this answer has seeded random weights: scores mean nothing",
)
DEMO_MODELS = TensorSpec(
    "DEMO_MODELS",
    (1,),
    "STRING",
    "the detectors with demo weights behind this answer, comma-separated; empty when none",
)
FAKE_PROB = TensorSpec("FAKE_PROB", (1,), meaning="the fused probability that the media is fake, in [0, 1]")
THRESHOLD = TensorSpec(
    "THRESHOLD",
    (1,),
    meaning="the deployment's decision threshold: FAKE_PROB >= THRESHOLD is judged fake"
    " (chosen on validation data by deepfake-eval --calibrate; 0.5 until then)",
)

# -- detect_image ------------------------------------------------------------------

_FACE_BOXES = TensorSpec("FACE_BOXES", (-1, 4), meaning="x1, y1, x2, y2 in pixels of the EXIF-oriented image")
_FACE_CONFIDENCE = TensorSpec("FACE_CONFIDENCE", (-1,), meaning="MTCNN's confidence per face; 0 for the fallback crop")
_FACE_FOUND = TensorSpec(
    "FACE_FOUND", (1,), "BOOL", "false when no face was found and row 0 is the image's center crop"
)
_FACES_DROPPED = TensorSpec("FACES_DROPPED", (1,), "INT32", "faces found beyond max_faces, not scored")
_FACE_CROPS = TensorSpec("FACE_CROPS", (-1, 224, 224, 3), "UINT8", "each face's square crop, RGB")
_VISUAL_INPUT = TensorSpec("VISUAL_INPUT", (-1, 3, 224, 224), meaning="the crops normalized for visual_detector")
_FACE_BLOCKING = TensorSpec(
    "FACE_BLOCKING", (-1,), meaning="JPEG blockiness of each face region at the image's own pixel grid"
)
_FORENSIC_FEATURES = TensorSpec("FORENSIC_FEATURES", (-1, 12), meaning="the 12 forensic features per face")
_VISUAL_FAKE_PROB = TensorSpec("VISUAL_FAKE_PROB", (-1,), meaning="visual_detector's fake probability per face")
_FORENSIC_FAKE_PROB = TensorSpec("FORENSIC_FAKE_PROB", (-1,), meaning="forensic_classifier's fake probability per face")

FACE_DETECTOR = ModelSpec(
    name="face_detector",
    inputs=(_encoded("IMAGE", "image"),),
    outputs=(_FACE_BOXES, _FACE_CONFIDENCE, _FACE_CROPS, _VISUAL_INPUT, _FACE_FOUND, _FACES_DROPPED, _FACE_BLOCKING),
    max_batch_size=0,
    description="decode one image, find faces with MTCNN, crop and normalize them",
    limits={
        # An encoded photo at the pixel limit is well under max_bytes; bigger
        # files are refused before Pillow parses a byte.
        "max_bytes": L.IMAGE.max_bytes,
        "max_pixels": L.MAX_IMAGE_PIXELS,
        "max_faces": L.MAX_FACES,
        # libjpeg's progressive mode writes 10 scans, mozjpeg about a dozen; each
        # costs up to a pass over the image (~23 ms at 40 MP; 3,200 scans were
        # reported to take 73 s).
        "max_jpeg_scans": 64,
        # A 40 MP image in 8 KB strips has ~15,000; ~5 us each (4 M were reported to take 18 s).
        "max_tiff_chunks": 65536,
        # MTCNN candidates kept: P-Net boxes per scale before NMS, R-Net inputs, O-Net inputs.
        "max_candidates": "10000,4000,1000",
        "max_cpu_s": 10,
    },
)
FORENSIC_FEATURES = ModelSpec(
    name="forensic_features",
    inputs=(
        _FACE_CROPS,
        TensorSpec(
            "ORDER_AFTER",
            (-1, 2),
            meaning="never read: detect_image wires visual_detector's output here so its steps run one at a time",
            optional=True,
        ),
        replace(
            _FACE_BLOCKING,
            meaning=_FACE_BLOCKING.meaning + ": feature 12 of each crop; computed from the crop when absent",
            optional=True,
        ),
    ),
    outputs=(_FORENSIC_FEATURES,),
    max_batch_size=0,
    description="the 12 hand-crafted forensic features of each face crop",
    limits={"max_crops": L.MAX_FACES},
)
IMAGE_FUSION = ModelSpec(
    name="image_fusion",
    inputs=(
        TensorSpec("VISUAL_PROBS", (-1, 2), meaning="visual_detector's output per face"),
        TensorSpec("FORENSIC_PROBS", (-1, 2), meaning="forensic_classifier's output per face"),
        _FORENSIC_FEATURES,
    ),
    outputs=(
        _VISUAL_FAKE_PROB,
        _FORENSIC_FAKE_PROB,
        FAKE_PROB,
        _FORENSIC_FEATURES,
        DEMO_WEIGHTS,
        DEMO_MODELS,
        THRESHOLD,
    ),
    max_batch_size=0,
    description="weighted mean of the two scores per face; the image's score is the most suspicious face's",
)
DETECT_IMAGE = ModelSpec(
    name=L.IMAGE.model,
    inputs=(_encoded(L.IMAGE.input, "image"),),
    outputs=(
        _FACE_BOXES,
        _FACE_CONFIDENCE,
        _VISUAL_FAKE_PROB,
        _FORENSIC_FAKE_PROB,
        _FORENSIC_FEATURES,
        FAKE_PROB,
        _FACE_FOUND,
        _FACES_DROPPED,
        DEMO_WEIGHTS,
        DEMO_MODELS,
        THRESHOLD,
    ),
    max_batch_size=0,
    description="faces and fused scores of one image",
)

# -- detect_audio ------------------------------------------------------------------

_WINDOW_START_S = TensorSpec("WINDOW_START_S", (-1,), meaning="where each 4 s window starts, in seconds")
_WINDOW_SILENT = TensorSpec(
    "WINDOW_SILENT", (-1,), "BOOL", "windows whose peak is below silence_peak_dbfs, left out of FAKE_PROB"
)
_WINDOW_FAKE_PROB = TensorSpec("WINDOW_FAKE_PROB", (-1,), meaning="audio_detector's synthetic probability per window")
_DURATION_S = TensorSpec("DURATION_S", (1,), meaning="seconds of sound decoded (audio under 4 s is zero-padded)")
_AUDIO_SILENT = TensorSpec("AUDIO_SILENT", (1,), "BOOL", "every window was silent: no audio score")

AUDIO_PREPROCESS = ModelSpec(
    name="audio_preprocess",
    inputs=(_encoded("AUDIO", "audio"),),
    outputs=(
        TensorSpec("AUDIO_INPUT", (-1, *AUDIO_DETECTOR.inputs[0].dims), meaning="audio_detector's input per window"),
        _WINDOW_START_S,
        _DURATION_S,
        _WINDOW_SILENT,
    ),
    max_batch_size=0,
    description="decode, resample to 16 kHz mono, cut 4 s windows and compute their log-mel spectrograms",
    limits={
        "max_bytes": L.AUDIO.max_bytes,
        "max_duration_s": L.MAX_AUDIO_S,
        # One request's windows are one audio_detector batch (59 cover max_duration_s).
        "max_windows": AUDIO_DETECTOR.max_batch_size,
        # 600 s at 96 kHz: about 2 CPU seconds of resampling (extrapolated
        # from 0.27 s measured for 7.7 M samples).
        "max_native_samples": 57_600_000,
        # Real recordings keep one rate; a concatenation may change it a few times.
        "max_rate_changes": 8,
        "max_cpu_s": 10,
    },
)


def audio_preprocess(audio_input: str) -> ModelSpec:
    """``audio_preprocess``'s contract when ``audio_detector`` takes ``audio_input`` (log-mel or waveform)."""
    window = audio_detector(audio_input).inputs[0]
    outputs = tuple(
        replace(t, dims=(-1, *window.dims)) if t.name == "AUDIO_INPUT" else t for t in AUDIO_PREPROCESS.outputs
    )
    return replace(AUDIO_PREPROCESS, outputs=outputs)


AUDIO_FUSION = ModelSpec(
    name="audio_fusion",
    inputs=(TensorSpec("WINDOW_PROBS", (-1, 2), meaning="audio_detector's output per window"), _WINDOW_SILENT),
    outputs=(_WINDOW_FAKE_PROB, _WINDOW_SILENT, FAKE_PROB, _AUDIO_SILENT, DEMO_WEIGHTS, DEMO_MODELS, THRESHOLD),
    max_batch_size=0,
    description="the recording's score: mean of the most suspicious non-silent windows",
)
DETECT_AUDIO = ModelSpec(
    name=L.AUDIO.model,
    inputs=(_encoded(L.AUDIO.input, "audio"),),
    outputs=(
        _WINDOW_FAKE_PROB,
        _WINDOW_START_S,
        _WINDOW_SILENT,
        FAKE_PROB,
        _DURATION_S,
        _AUDIO_SILENT,
        DEMO_WEIGHTS,
        DEMO_MODELS,
        THRESHOLD,
    ),
    max_batch_size=0,
    description="per-window and fused synthetic-speech scores of one recording",
)

# -- detect_video ------------------------------------------------------------------

_TIMELINE = (-1,)
DETECT_VIDEO = ModelSpec(
    name=L.VIDEO.model,
    inputs=(_encoded(L.VIDEO.input, "video"),),
    outputs=(
        TensorSpec(
            "TEMPORAL_FAKE_PROB",
            (1,),
            meaning="temporal_analyzer's fake probability over the specification's 16 frames across the whole video",
        ),
        TensorSpec(
            "FRAME_TIME_S",
            _TIMELINE,
            meaning="each timeline frame's timestamp, in seconds: frames every 1/frame_rate_hz s,"
            " at least 16, at most max_frames",
        ),
        TensorSpec("FRAME_FAKE_PROB", _TIMELINE, meaning="each frame's most suspicious face; -1 without a face"),
        TensorSpec("FRAME_HAS_FACE", _TIMELINE, "BOOL", "whether a face was found in the frame"),
        TensorSpec("FRAME_FACE_COUNT", _TIMELINE, "INT32", "faces scored in the frame"),
        TensorSpec(
            "FRAMES_FAKE_PROB",
            (1,),
            meaning="the faces' score: the most suspicious judged track's TRACK_FAKE_PROB; -1 when no track is judged",
        ),
        TensorSpec("AUDIO_FAKE_PROB", (1,), meaning="the sound track's score; -1 without sound or when all silent"),
        TensorSpec("HAS_AUDIO", (1,), "BOOL", "whether the file has a decodable sound track"),
        _AUDIO_SILENT,
        FAKE_PROB,
        DEMO_WEIGHTS,
        TensorSpec(
            "DISTINCT_FRAMES",
            (1,),
            "INT32",
            "how many different frames the specification's 16 are (fewer for short or broken clips)",
        ),
        DEMO_MODELS,
        THRESHOLD,
        TensorSpec("SEGMENT_START_S", (-1,), meaning="where each segment clip starts, in seconds"),
        TensorSpec("SEGMENT_END_S", (-1,), meaning="where it ends: 16 frames at segment_frame_rate_hz later"),
        TensorSpec("SEGMENT_FAKE_PROB", (-1,), meaning="temporal_analyzer's fake probability for each segment clip"),
        TensorSpec("FACE_FRAME", (-1,), "INT32", "each face's frame: an index into FRAME_TIME_S"),
        TensorSpec("FACE_TRACK", (-1,), "INT32", "each face's track (person): an index into the TRACK_ outputs"),
        replace(_FACE_BOXES, meaning="x1, y1, x2, y2 of each face in pixels of the upright frame"),
        TensorSpec("FACE_FAKE_PROB", (-1,), meaning="visual_detector's fake probability for each face"),
        TensorSpec("TRACK_FAKE_PROB", (-1,), meaning="each track's score: the confident-frames rule over its faces"),
        TensorSpec("TRACK_START_S", (-1,), meaning="the time of each track's first face, in seconds"),
        TensorSpec("TRACK_END_S", (-1,), meaning="the time of each track's last face, in seconds"),
        TensorSpec("TRACK_FACES", (-1,), "INT32", "faces in each track"),
        TensorSpec(
            "TRACK_JUDGED",
            (-1,),
            "BOOL",
            "tracks with at least track_min_faces faces; only these enter FRAMES_FAKE_PROB",
        ),
        replace(_WINDOW_START_S, name="AUDIO_WINDOW_START_S"),
        replace(_WINDOW_FAKE_PROB, name="AUDIO_WINDOW_FAKE_PROB", meaning=_WINDOW_FAKE_PROB.meaning + "; -1 if silent"),
        replace(_WINDOW_SILENT, name="AUDIO_WINDOW_SILENT"),
        TensorSpec(
            "COVERAGE_REDUCED",
            (1,),
            "BOOL",
            "true when the timeline and segments were thinned to keep the decoding within max_decode_pixels",
        ),
    ),
    max_batch_size=0,
    description="temporal, per-segment, per-frame, per-person, audio and fused scores of one video",
    limits={
        "max_bytes": L.VIDEO.max_bytes,
        "max_duration_s": L.MAX_VIDEO_S,
        # A full-resolution frame is held one at a time; 4K RGB is ~25 MB.
        "max_pixels": L.MAX_FRAME_PIXELS,
        "max_faces_per_frame": L.MAX_FACES_PER_FRAME,
        # Frames decoded x pixels per frame: about 1,200 4K or 4,800 1080p
        # frames, about 10 CPU seconds at the reported 2.7 ms per 4K frame of
        # one-keyframe H.264 (estimated). Past it the timeline and segments
        # are thinned (COVERAGE_REDUCED); only the 16 frames not fitting is refused.
        "max_decode_pixels": 10_000_000_000,
        "max_native_samples": 57_600_000,
        # The frames looked at (deepfake_serving.video_plan has the costs behind them):
        # MTCNN + the visual detector run on max_frames frames at most,
        # the temporal analyzer on 1 + max_segments clips at most.
        "frame_rate_hz": 2,
        "max_frames": 240,
        "segment_stride_s": 4,
        "segment_frame_rate_hz": 4,
        "max_segments": 16,
        "max_cpu_s": 60,
    },
)

#: What clients call, in the order of :data:`deepfake_contract.limits.MEDIA`.
ENTRY_MODELS: tuple[ModelSpec, ...] = (DETECT_IMAGE, DETECT_AUDIO, DETECT_VIDEO)
#: The Python-backend models, steps and BLS alike.
PYTHON_MODELS: tuple[ModelSpec, ...] = (
    FACE_DETECTOR,
    FORENSIC_FEATURES,
    IMAGE_FUSION,
    AUDIO_PREPROCESS,
    AUDIO_FUSION,
    DETECT_VIDEO,
)

#: Outputs renamed in this release -> their former names. The client still reads
#: the former ones from an older server; drop them in the next release.
FORMER_NAMES: dict[str, dict[str, str]] = {
    DETECT_AUDIO.name: {"DURATION_S": "REAL_SECONDS", "AUDIO_SILENT": "ALL_SILENT"},
}

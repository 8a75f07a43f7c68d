"""Audio and video clips encoded with PyAV during the test run (nothing committed).

The encoders behind tests/unit/test_video.py's clips, the server tests' media
and the benchmarks' (perf/).
"""

from __future__ import annotations

import io
from collections.abc import Callable

import av
import cv2
import numpy as np

# name -> (container, encoder, sample rate, stereo, encoder options). The
# wheel's FFmpeg has no libvorbis; its native "vorbis" encoder is
# experimental and stereo-only.
AUDIO_FORMATS = {
    "wav": ("wav", "pcm_s16le", 22050, False, None),
    "flac": ("flac", "flac", 44100, False, None),
    "mp3": ("mp3", "libmp3lame", 44100, False, None),
    "ogg_vorbis": ("ogg", "vorbis", 44100, True, {"strict": "experimental"}),
    "opus": ("ogg", "libopus", 48000, False, None),
}

# name -> (container, video codec, pix_fmt, options, audio codec, audio rate)
VIDEO_FORMATS = {
    "mp4_h264_aac": ("mp4", "libx264", "yuv420p", {"preset": "ultrafast", "g": "10"}, "aac", 44100),
    "webm_vp9_opus": (
        "webm",
        "libvpx-vp9",
        "yuv420p",
        {"deadline": "realtime", "cpu-used": "8", "g": "10", "lag-in-frames": "0"},
        "libopus",
        48000,
    ),
    "avi_mjpeg": ("avi", "mjpeg", "yuvj420p", {}, "pcm_s16le", 22050),
    "mov_h264_aac": ("mov", "libx264", "yuv420p", {"preset": "ultrafast", "g": "10"}, "aac", 44100),
}


def tone(sr: int, seconds: float, freq: float = 440.0, amp: float = 0.5) -> np.ndarray:
    """A float32 sine of ``freq`` Hz at ``sr``, ``seconds`` long, peak ``amp``."""
    t = np.arange(int(round(sr * seconds))) / sr
    return (amp * np.sin(2 * np.pi * freq * t)).astype(np.float32)


def speechlike(sr: int, seconds: float, seed: int = 0) -> np.ndarray:
    """Amplitude-modulated harmonics plus noise: varies over time like speech does."""
    rng = np.random.default_rng(seed)
    t = np.arange(int(round(sr * seconds))) / sr
    f0 = 140 + 30 * np.sin(2 * np.pi * 0.7 * t)
    phase = 2 * np.pi * np.cumsum(f0) / sr
    voiced = sum(np.sin(k * phase) / k for k in range(1, 6))
    envelope = 0.5 + 0.5 * np.sin(2 * np.pi * 3.0 * t)
    return (0.3 * envelope * voiced + 0.01 * rng.standard_normal(t.size)).astype(np.float32)


def mux_audio(out: av.container.OutputContainer, stream: av.AudioStream, planes: np.ndarray, rate: int) -> None:
    """Encode float planes (channels x samples) into ``stream``, flushing it at the end."""
    layout = "stereo" if planes.shape[0] == 2 else "mono"
    step = 960
    for i in range(0, planes.shape[1], step):
        frame = av.AudioFrame.from_ndarray(np.ascontiguousarray(planes[:, i : i + step]), format="fltp", layout=layout)
        frame.sample_rate = rate
        frame.pts = i
        for packet in stream.encode(frame):
            out.mux(packet)
    for packet in stream.encode(None):
        out.mux(packet)


def encode_audio(
    x: np.ndarray, sr: int, fmt: str, codec: str, *, stereo: bool = False, options: dict | None = None
) -> bytes:
    """Encode float mono samples with PyAV into ``fmt``."""
    planes = np.atleast_2d(np.asarray(x, dtype=np.float32))
    if stereo and planes.shape[0] == 1:
        planes = np.vstack([planes, planes])
    buf = io.BytesIO()
    with av.open(buf, "w", format=fmt) as out:
        stream = out.add_stream(codec, rate=sr, layout="stereo" if stereo else "mono", options=options or {})
        mux_audio(out, stream, planes, sr)
    return buf.getvalue()


def audio_clip(name: str, seconds: float, signal: Callable[[int, float], np.ndarray] = speechlike) -> bytes:
    """``signal`` encoded in one of :data:`AUDIO_FORMATS` (container, codec, rate, channels)."""
    fmt, codec, sr, stereo, options = AUDIO_FORMATS[name]
    return encode_audio(signal(sr, seconds), sr, fmt, codec, stereo=stereo, options=options)


def moving_frames(image: np.ndarray, n: int, width: int, height: int) -> list[np.ndarray]:
    """``n`` frames of ``image`` scaled to fit, drifting a few pixels (slight motion)."""
    scale = min(width / image.shape[1], height / image.shape[0])
    base = cv2.resize(image, (int(image.shape[1] * scale), int(image.shape[0] * scale)), interpolation=cv2.INTER_AREA)
    frames = []
    for i in range(n):
        canvas = np.full((height, width, 3), 40, np.uint8)
        dx = (width - base.shape[1]) // 2 + int(round(3 * np.sin(i / 3)))
        dy = (height - base.shape[0]) // 2
        x0, y0 = max(dx, 0), max(dy, 0)
        src = base[y0 - dy : y0 - dy + height - y0, x0 - dx : x0 - dx + width - x0]
        canvas[y0 : y0 + src.shape[0], x0 : x0 + src.shape[1]] = src
        frames.append(canvas)
    return frames


def gradient_frames(n: int, width: int, height: int) -> list[np.ndarray]:
    """Faceless frames: a moving colour gradient."""
    x = np.linspace(0, 255, width)[None, :]
    y = np.linspace(0, 255, height)[:, None]
    return [
        np.stack([(x + 8 * i) % 256 + 0 * y, y + 0 * x, np.full((height, width), 90.0)], -1).astype(np.uint8)
        for i in range(n)
    ]


def encode_frames(
    frames: list[np.ndarray],
    fps: int,
    fmt: str,
    vcodec: str,
    pix_fmt: str,
    options: dict[str, str],
    acodec: str | None = None,
    arate: int = 48000,
    audio: Callable[[int, float], np.ndarray] | None = None,
) -> bytes:
    """Encode RGB frames, and with ``acodec`` a stereo copy of ``audio(rate, seconds)``, with PyAV."""
    height, width = frames[0].shape[:2]
    buf = io.BytesIO()
    with av.open(buf, "w", format=fmt) as out:
        vs = out.add_stream(vcodec, rate=fps, options=options)
        vs.width, vs.height, vs.pix_fmt = width, height, pix_fmt
        ast = out.add_stream(acodec, rate=arate, layout="stereo") if acodec and audio is not None else None
        for i, rgb in enumerate(frames):
            frame = av.VideoFrame.from_ndarray(rgb, format="rgb24")
            frame.pts = i
            for packet in vs.encode(frame):
                out.mux(packet)
        for packet in vs.encode(None):
            out.mux(packet)
        if ast is not None:
            mono = audio(arate, len(frames) / fps)
            mux_audio(out, ast, np.vstack([mono, mono]).astype(np.float32), arate)
    return buf.getvalue()


def encode_video(
    frames: list[np.ndarray],
    fps: int,
    name: str,
    *,
    audio: Callable[[int, float], np.ndarray] | None = None,
) -> bytes:
    """Encode RGB frames (and optionally an audio signal) into one of :data:`VIDEO_FORMATS`."""
    return encode_frames(frames, fps, *VIDEO_FORMATS[name], audio=audio)


def people_frames(
    layout: Callable[[float], list[tuple[float, float]]],
    seconds: float,
    fps: int,
    width: int = 480,
    height: int = 270,
    face_height: int = 150,
) -> list[np.ndarray]:
    """Frames of a scene whose people (astronaut portraits) stand where ``layout(t)`` puts them.

    ``layout(t)`` gives the centre of each person on screen at time ``t`` (s), as
    fractions of the frame's width and height; an empty list is an empty room.
    The second person is a mirrored portrait, so the two look different.
    """
    from deepfake_serving.testing.media import astronaut

    portrait = astronaut()[20:330, 110:380]  # head and shoulders
    side = int(face_height * portrait.shape[1] / portrait.shape[0])
    people = [cv2.resize(p, (side, face_height), interpolation=cv2.INTER_AREA) for p in (portrait, portrait[:, ::-1])]
    frames = []
    for i in range(int(round(seconds * fps))):
        canvas = gradient_frames(1, width, height)[0] // 2
        for k, (cx, cy) in enumerate(layout(i / fps)):
            person = people[k % len(people)]
            x0 = int(round(cx * width - side / 2))
            y0 = int(round(cy * height - face_height / 2))
            xs, ys = max(x0, 0), max(y0, 0)
            xe, ye = min(x0 + side, width), min(y0 + face_height, height)
            canvas[ys:ye, xs:xe] = person[ys - y0 : ye - y0, xs - x0 : xe - x0]
        frames.append(canvas)
    return frames


def garbled_video(data: bytes, seed: int = 0) -> bytes:
    """``data``'s video stream remuxed with every packet's payload replaced by random bytes.

    The container, timestamps and keyframe flags stay valid, so the file opens
    and indexes like the original; no frame of it can be decoded.
    """
    rng = np.random.default_rng(seed)
    buffer = io.BytesIO()
    with av.open(io.BytesIO(data)) as source, av.open(buffer, "w", format="mp4") as out:
        stream = source.streams.video[0]
        target = out.add_stream_from_template(stream)
        for packet in source.demux(stream):
            if packet.size == 0:
                continue
            noise = av.Packet(rng.integers(0, 256, packet.size, dtype=np.uint8).tobytes())
            noise.pts, noise.dts, noise.time_base, noise.stream = packet.pts, packet.dts, packet.time_base, target
            noise.is_keyframe = packet.is_keyframe
            out.mux(noise)
    return buffer.getvalue()

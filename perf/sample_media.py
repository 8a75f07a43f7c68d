"""Small, real encoded media for load tests, made on the fly (nothing committed)."""

from __future__ import annotations

import io
import math
import wave

import numpy as np


def image_jpeg(size: int = 512) -> bytes:
    """scikit-image's astronaut (one face), JPEG quality 90."""
    from PIL import Image
    from skimage import data

    buffer = io.BytesIO()
    Image.fromarray(data.astronaut()).resize((size, size)).save(buffer, format="JPEG", quality=90)
    return buffer.getvalue()


def audio_wav(seconds: float = 6.0, rate: int = 16000) -> bytes:
    """A voiced-sounding synthetic signal: a gliding harmonic tone with an envelope."""
    t = np.arange(int(seconds * rate)) / rate
    f0 = 140 + 30 * np.sin(2 * math.pi * 0.5 * t)
    phase = 2 * math.pi * np.cumsum(f0) / rate
    signal = sum(np.sin(k * phase) / k for k in range(1, 6)) * (0.5 + 0.5 * np.sin(2 * math.pi * 3 * t) ** 2)
    pcm = (0.3 * signal / np.abs(signal).max() * 32767).astype("<i2")
    buffer = io.BytesIO()
    with wave.open(buffer, "wb") as handle:
        handle.setnchannels(1)
        handle.setsampwidth(2)
        handle.setframerate(rate)
        handle.writeframes(pcm.tobytes())
    return buffer.getvalue()


def video_mp4(seconds: float = 2.0, fps: int = 12, size: int = 256) -> bytes:
    """An H.264 MP4 of the astronaut drifting slowly, with an AAC tone track."""
    import av
    from PIL import Image
    from skimage import data

    base = np.asarray(Image.fromarray(data.astronaut()).resize((size + 16, size + 16)))
    buffer = io.BytesIO()
    with av.open(buffer, mode="w", format="mp4") as container:
        video = container.add_stream("libx264", rate=fps)
        video.width = video.height = size
        video.pix_fmt = "yuv420p"
        audio = container.add_stream("aac", rate=16000)
        audio.layout = "mono"
        for i in range(int(seconds * fps)):
            shift = i % 16
            frame = av.VideoFrame.from_ndarray(
                np.ascontiguousarray(base[shift : shift + size, shift : shift + size]), format="rgb24"
            )
            for packet in video.encode(frame):
                container.mux(packet)
        for packet in video.encode():
            container.mux(packet)
        t = np.arange(int(seconds * 16000)) / 16000
        tone = (0.2 * np.sin(2 * math.pi * 220 * t)).astype(np.float32)
        frame_size = 1024
        for start in range(0, len(tone), frame_size):
            chunk = tone[start : start + frame_size]
            if len(chunk) < frame_size:
                chunk = np.pad(chunk, (0, frame_size - len(chunk)))
            frame = av.AudioFrame.from_ndarray(chunk[np.newaxis, :], format="flt", layout="mono")
            frame.sample_rate = 16000
            for packet in audio.encode(frame):
                container.mux(packet)
        for packet in audio.encode():
            container.mux(packet)
    return buffer.getvalue()


#: Each public ensemble, its input and a sample.
SAMPLES = {
    "detect_image": ("IMAGE", image_jpeg),
    "detect_audio": ("AUDIO", audio_wav),
    "detect_video": ("VIDEO", video_mp4),
}

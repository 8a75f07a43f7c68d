"""A small real-vs-synthetic speech dataset from what Debian ships, for trying (and testing) the whole loop.

Real: the read speech of ``pocketsphinx-testdata`` (about 47 s, 16 kHz) and
the voice clips of ``alsa-utils`` (48 kHz). Synthetic: ``espeak-ng`` reading
sentences of the same kind in several voices, speeds and pitches. Written as
the ``folder`` layout with fixed ``train``/``val``/``test`` splits, so that
``test`` stays held out from training::

    python -m deepfake_train.speech_set OUT_DIR
    python -m deepfake_train audio --data OUT_DIR --out checkpoints

It proves the path (data through the serving code, training, export,
serving, evaluation), not a detector anyone should deploy: one synthesizer,
three real speakers.
"""

from __future__ import annotations

import argparse
import random
import shutil
import subprocess
import sys
import wave
from pathlib import Path

POCKETSPHINX = Path("/usr/share/pocketsphinx/test/data")
ALSA = Path("/usr/share/sounds/alsa")
#: The Debian packages this needs (installed by `make speech-set-deps`).
PACKAGES = ("pocketsphinx-testdata", "alsa-utils", "espeak-ng")

SENTENCES = (
    "The quick brown fox jumps over the lazy dog near the river bank.",
    "Please call Stella and ask her to bring these things with her from the store.",
    "Front left, front right, rear center.",
    "Go forward ten meters and then turn to the left.",
    "Seven, four, nine, two, one, zero, eight.",
    "The estate of Norland was large, and their residence was at Norland Park.",
    "She had an excellent heart, her disposition was affectionate.",
    "Something about this sentence sounds entirely ordinary.",
    "Two of hearts, queen of spades, ace of clubs.",
    "It is a truth universally acknowledged that a fortune needs a wife.",
    "Open the window and let the morning air into the room.",
    "Numbers are read slowly so that every digit can be heard.",
    "The weather today is cold with a chance of rain this evening.",
    "Her sister was hardly less clever, and of a sensible mind.",
    "Side left, side right, front center.",
    "A house by the sea was all that the family could afford.",
    "Turn the page and read the next line aloud.",
    "Three, six, five, eight, four, one, nine.",
    "They walked along the lane until the light began to fade.",
    "Every morning the baker opened his shop at six.",
    "The train leaves the station at a quarter past nine.",
    "Listen carefully and repeat each word after me.",
)
VOICES = ("en", "en-us", "en+f3", "en+m3", "en-gb-x-rp", "en+f5", "en+m7")


def missing_tools() -> list[str]:
    """The Debian packages (of :data:`PACKAGES`) that are not installed."""
    missing = []
    if not POCKETSPHINX.is_dir():
        missing.append("pocketsphinx-testdata")
    if not (ALSA / "Front_Center.wav").is_file():
        missing.append("alsa-utils")
    if shutil.which("espeak-ng") is None:
        missing.append("espeak-ng")
    return missing


def real_recordings() -> list[Path]:
    """Every real voice recording found, sorted (alsa's Noise.wav is not speech)."""
    found = sorted(POCKETSPHINX.glob("**/*.wav")) + sorted(POCKETSPHINX.glob("**/*.raw"))
    found += sorted(p for p in ALSA.glob("*.wav") if p.stem != "Noise")
    return found


def _copy_as_wav(source: Path, target: Path) -> None:
    if source.suffix == ".wav":
        shutil.copyfile(source, target)
        return
    # pocketsphinx's .raw files are headerless 16-bit little-endian mono at 16 kHz.
    with wave.open(str(target), "wb") as out:
        out.setnchannels(1)
        out.setsampwidth(2)
        out.setframerate(16000)
        out.writeframes(source.read_bytes())


def build(root: Path, seed: int = 0) -> dict[str, dict[str, int]]:
    """Write the dataset under ``root``; return ``{split: {"real": n, "fake": m}}``.

    Raises:
        RuntimeError: a needed Debian package is missing (named).
    """
    missing = missing_tools()
    if missing:
        raise RuntimeError(f"install the Debian packages {', '.join(missing)} (make speech-set-deps)")
    rng = random.Random(seed)
    real = real_recordings()
    rng.shuffle(real)
    counts: dict[str, dict[str, int]] = {}

    def split_of(i: int, n: int) -> str:
        return "test" if i < round(0.25 * n) else "val" if i < round(0.45 * n) else "train"

    for i, source in enumerate(real):
        split = split_of(i, len(real))
        folder = root / split / "real"
        folder.mkdir(parents=True, exist_ok=True)
        _copy_as_wav(source, folder / f"{source.parent.name}-{source.stem}.wav")
        counts.setdefault(split, {"real": 0, "fake": 0})["real"] += 1
    sentences = list(SENTENCES)
    rng.shuffle(sentences)
    for i, sentence in enumerate(sentences):
        split = split_of(i, len(sentences))
        folder = root / split / "fake"
        folder.mkdir(parents=True, exist_ok=True)
        voice, speed, pitch = VOICES[i % len(VOICES)], rng.randint(130, 190), rng.randint(30, 70)
        target = folder / f"espeak-{i:02d}-{voice.replace('+', '_')}.wav"
        command = ["espeak-ng", "-v", voice, "-s", str(speed), "-p", str(pitch), "-w", str(target), sentence]
        subprocess.run(command, check=True, capture_output=True, timeout=60)
        counts.setdefault(split, {"real": 0, "fake": 0})["fake"] += 1
    return counts


def main(argv: list[str] | None = None) -> int:
    """Build the dataset into the folder given."""
    parser = argparse.ArgumentParser(prog="python -m deepfake_train.speech_set", description=__doc__.split("\n\n")[0])
    parser.add_argument("out", type=Path, help="folder to write (the folder layout)")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    try:
        counts = build(args.out, args.seed)
    except RuntimeError as error:
        print(f"speech_set: {error}", file=sys.stderr)
        return 2
    print(counts)
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""Decoding: any file soundfile reads -> float32 mono at the target rate.

Every failure is a ``BadAudio`` with a reason, so the input pipeline can skip
and count the file instead of crashing a long run. A ``gs://`` URL is decoded from
a file object of ``ssl_audio.paths`` (soundfile seeks in it, so a window reads only
its own bytes); a missing object fails like a missing local file.
"""

from __future__ import annotations

import contextlib

import numpy as np
import soundfile as sf
import soxr

from ssl_audio import paths

SAMPLE_RATE = 16000
MAX_PEAK = 100.0   # 40 dB above full scale


def to_mono(x, channels_last: bool | None = None) -> np.ndarray:
  """[samples], [samples, channels] or [channels, samples] -> float32 [samples].

  channels_last: the layout of a 2-D input; None guesses it: the longer axis is
  time (soundfile gives [samples, channels], librosa [channels, samples]).
  """
  x = np.asarray(x, dtype=np.float32)
  if x.ndim == 1:
    return x
  if x.ndim != 2:
    raise ValueError(f"waveform must be [samples] or [samples, channels], got {x.shape}")
  if channels_last is None:
    channels_last = x.shape[0] > x.shape[1]
  if not channels_last:
    x = x.T
  if x.shape[1] == 0:
    raise ValueError(f"waveform has no channels: shape {x.shape}")
  if x.shape[1] == 1:
    return x[:, 0]
  # Summing columns is ~20x faster than mean(axis=1) on [n, 2], and gives the same values.
  y = x[:, 0].copy()
  for c in range(1, x.shape[1]):
    y += x[:, c]
  return y / np.float32(x.shape[1])


def to_int16(audio: np.ndarray) -> np.ndarray:
  """float audio in [-1, 1] -> int16, the host-to-device transport format."""
  return (np.clip(audio, -1.0, 32767 / 32768) * 32768).astype(np.int16)


class BadAudio(Exception):
  """A file that cannot be used: unreadable, empty, silent, non-finite, too short."""


@contextlib.contextmanager
def open_audio(path: str):
  """An ``sf.SoundFile`` on a local path or a URL."""
  if not paths.is_remote(path):
    with sf.SoundFile(path) as f:
      yield f
    return
  with paths.open(path, "rb") as raw, sf.SoundFile(raw) as f:
    yield f


def info(path: str):
  """``sf.info`` (frames, samplerate, ...) of a local path or a URL."""
  if not paths.is_remote(path):
    return sf.info(path)
  with paths.open(path, "rb") as raw:
    return sf.info(raw)


def load_audio(path: str, sample_rate: int = SAMPLE_RATE, start: float | None = None,
               end: float | None = None, min_samples: int = 1,
               silence_threshold: float = 1e-6) -> np.ndarray:
  """Reads ``path`` (optionally the [start, end) segment in seconds) as float32 mono.

  Raises:
    BadAudio: corrupt or unreadable file, empty or too short (< min_samples after
      resampling), NaN/inf samples, or digital silence (peak <= silence_threshold).
  """
  try:
    with open_audio(path) as f:
      sr = f.samplerate
      if start is not None:
        f.seek(min(int(round(start * sr)), f.frames))
      frames = -1 if end is None else max(0, int(round(end * sr)) - int(round((start or 0) * sr)))
      x = f.read(frames, dtype="float32", always_2d=True)
  except Exception as e:  # soundfile raises several types (LibsndfileError, RuntimeError...)
    raise BadAudio(f"cannot decode: {e}") from None
  if x.size == 0:
    raise BadAudio("empty audio")
  x = to_mono(x, channels_last=True)   # soundfile reads [frames, channels]
  if not np.all(np.isfinite(x)):
    raise BadAudio("NaN or inf samples")
  peak = float(np.max(np.abs(x)))
  if peak > MAX_PEAK:   # float files far beyond full scale: garbage, and inf in a log-mel
    raise BadAudio(f"amplitude {peak:.3g} beyond full scale (> {MAX_PEAK:g})")
  if sr != sample_rate:
    x = soxr.resample(x, sr, sample_rate).astype(np.float32, copy=False)
  check_usable(x, sample_rate, min_samples, silence_threshold)
  return np.ascontiguousarray(x, dtype=np.float32)


def check_usable(x: np.ndarray, sample_rate: int, min_samples: int = 1,
                 silence_threshold: float = 1e-6) -> None:
  """Raises BadAudio if decoded audio is shorter than ``min_samples`` or digitally silent."""
  if len(x) < min_samples:
    raise BadAudio(f"too short: {len(x)} samples at {sample_rate} Hz, need {min_samples}")
  if float(np.max(np.abs(x))) <= silence_threshold:
    raise BadAudio("silent")

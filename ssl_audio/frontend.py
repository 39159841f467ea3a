"""Log-mel front-end in JAX, and the slice geometry everything else derives from.

Defaults follow paper.md §2 (COLA's front-end, which cites the paper): 16 kHz,
25 ms Hann window (400 samples) zero-padded to a 1024-point FFT, 10 ms hop (160),
no centring, magnitude spectrum, 64 Slaney mel bins 60-7800 Hz, natural log of
the mel energies clipped below at 1e-5. One slice = 96 frames = 15,600 samples.
"""

from __future__ import annotations

import dataclasses
import functools

import jax
import jax.numpy as jnp
import librosa
import numpy as np


@dataclasses.dataclass(frozen=True)
class FrontendConfig:
  sample_rate: int = 16000
  win_length: int = 400      # 25 ms
  hop_length: int = 160      # 10 ms
  n_fft: int = 1024
  n_mels: int = 64
  fmin: float = 60.0
  fmax: float = 7800.0
  power: float = 1.0         # 1: magnitude (COLA), 2: power
  log_floor: float = 1e-5
  slice_frames: int = 96     # frames per encoder input slice

  @property
  def slice_samples(self) -> int:
    """Samples covered by one slice: the last frame's window ends here (no centring)."""
    return self.samples_for_frames(self.slice_frames)

  def samples_for_frames(self, n_frames: int) -> int:
    return (n_frames - 1) * self.hop_length + self.win_length

  def frames_for_samples(self, n_samples: int) -> int:
    if n_samples < self.win_length:
      return 0
    return 1 + (n_samples - self.win_length) // self.hop_length

  def to_dict(self) -> dict:
    return dataclasses.asdict(self)

  @classmethod
  def from_dict(cls, d) -> "FrontendConfig":
    fields = {f.name for f in dataclasses.fields(cls)}
    return cls(**{k: v for k, v in dict(d).items() if k in fields})

  def check(self) -> None:
    def need(ok, key, msg):
      if not ok:
        raise ValueError(f"config.frontend.{key}: {msg}")
    need(self.sample_rate > 0, "sample_rate", "must be positive")
    need(0 < self.win_length <= self.n_fft, "win_length", "must be in (0, n_fft]")
    need(self.hop_length > 0, "hop_length", "must be positive")
    need(self.n_mels > 0, "n_mels", "must be positive")
    need(0 <= self.fmin < self.fmax <= self.sample_rate / 2, "fmax",
         "need 0 <= fmin < fmax <= sample_rate / 2")
    need(self.power in (1.0, 2.0), "power", "must be 1 (magnitude) or 2 (power)")
    need(self.log_floor > 0, "log_floor", "must be positive")
    need(self.slice_frames >= 16, "slice_frames", "must be >= 16 (the encoder pools 2x2 four times or more)")


@functools.lru_cache(maxsize=8)
def _constants(cfg: FrontendConfig) -> tuple[np.ndarray, np.ndarray]:
  # Periodic Hann, as librosa's get_window('hann', fftbins=True).
  window = librosa.filters.get_window("hann", cfg.win_length, fftbins=True).astype(np.float32)
  mel = librosa.filters.mel(sr=cfg.sample_rate, n_fft=cfg.n_fft, n_mels=cfg.n_mels,
                            fmin=cfg.fmin, fmax=cfg.fmax).astype(np.float32)  # [n_mels, n_fft//2+1]
  return window, mel.T.copy()


def log_mel(audio: jax.Array, cfg: FrontendConfig = FrontendConfig(),
            gather_free: bool = False) -> jax.Array:
  """Log-mel spectrogram of audio [..., samples] -> [..., frames, n_mels] (float32).

  Integer input (int16 transport from the host) is scaled to [-1, 1).
  ``gather_free``: frame with static slices instead of a gather (the same values);
  the TFLite converter cannot lower the gather when the batch is dynamic (export).
  """
  if jnp.issubdtype(audio.dtype, jnp.integer):
    audio = audio.astype(jnp.float32) / 32768.0
  audio = audio.astype(jnp.float32)
  n_frames = cfg.frames_for_samples(audio.shape[-1])
  if n_frames < 1:
    raise ValueError(f"audio of {audio.shape[-1]} samples is shorter than one window "
                     f"({cfg.win_length})")
  window, mel_t = _constants(cfg)
  # Framing by reshape where the window is a multiple of the hop would be cheaper, but
  # 400/160 is not; a gather of static indices compiles to one fused op.
  if gather_free:
    frames = frames_by_slicing(audio, cfg, n_frames) * window
  else:
    idx = (np.arange(n_frames)[:, None] * cfg.hop_length + np.arange(cfg.win_length)[None, :])
    frames = audio[..., idx] * window                                 # [..., T, win]
  # librosa centres the window inside n_fft; a shift changes only the phase, not |X|.
  spec = jnp.abs(jnp.fft.rfft(frames, n=cfg.n_fft, axis=-1))          # [..., T, n_fft//2+1]
  if cfg.power == 2.0:
    spec = spec * spec
  mel = jnp.matmul(spec, mel_t, precision=jax.lax.Precision.HIGHEST)  # [..., T, n_mels]
  return jnp.log(jnp.maximum(mel, cfg.log_floor))


def frames_by_slicing(audio: jax.Array, cfg: FrontendConfig, n_frames: int) -> jax.Array:
  """[..., samples] -> [..., n_frames, win_length] without a gather.

  With win = k * hop + r, frame i is hop-chunks i .. i+k-1 and the first r samples of
  chunk i+k: k + 1 static slices of the audio cut into hop-long chunks, concatenated.
  """
  k, r = divmod(cfg.win_length, cfg.hop_length)
  n_chunks = n_frames + k - 1 + (1 if r else 0)
  need = n_chunks * cfg.hop_length
  if audio.shape[-1] < need:   # only the last chunk's unused tail can be missing
    audio = jnp.pad(audio, [(0, 0)] * (audio.ndim - 1) + [(0, need - audio.shape[-1])])
  chunks = jax.lax.slice_in_dim(audio, 0, need, axis=-1)
  chunks = chunks.reshape(*audio.shape[:-1], n_chunks, cfg.hop_length)
  parts = [jax.lax.slice_in_dim(chunks, j, j + n_frames, axis=-2) for j in range(k)]
  if r:
    last = jax.lax.slice_in_dim(chunks, k, k + n_frames, axis=-2)
    parts.append(jax.lax.slice_in_dim(last, 0, r, axis=-1))
  return jnp.concatenate(parts, axis=-1)


def librosa_log_mel(audio: np.ndarray, cfg: FrontendConfig = FrontendConfig()) -> np.ndarray:
  """The same features computed by librosa: the reference for parity tests and benchmarks.

  librosa frames n_fft samples and centres the shorter window inside them; padding
  (n_fft - win_length) / 2 zeros on each side makes its frame i cover exactly our
  samples [i * hop, i * hop + win_length).
  """
  pad = (cfg.n_fft - cfg.win_length) // 2
  audio = np.asarray(audio, np.float32)
  audio = np.pad(audio, [(0, 0)] * (audio.ndim - 1) + [(pad, cfg.n_fft - cfg.win_length - pad)])
  mel = librosa.feature.melspectrogram(
      y=audio, sr=cfg.sample_rate, n_fft=cfg.n_fft,
      hop_length=cfg.hop_length, win_length=cfg.win_length, window="hann", center=False,
      power=cfg.power, n_mels=cfg.n_mels, fmin=cfg.fmin, fmax=cfg.fmax)
  return np.log(np.maximum(mel, cfg.log_floor)).swapaxes(-1, -2)

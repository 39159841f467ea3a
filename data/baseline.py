"""Non-learned baseline per task: MFCC mean+std -> standardise -> logistic regression.

Trained on the ``train`` split, reported on ``valid`` and ``test``, next to chance
(1 / classes) and the majority-class rate of the test split.
"""

from __future__ import annotations

from pathlib import Path
from typing import Sequence

import numpy as np

from ssl_audio.audio import SAMPLE_RATE, load_audio


def _mel_filters(sr: int, n_fft: int, n_mels: int) -> np.ndarray:
  """Slaney-style triangular mel filterbank (n_mels, n_fft//2+1), area-normalised."""
  def hz_to_mel(f):
    f = np.asarray(f, float)
    lin = f / (200.0 / 3)
    log = 15.0 + np.log(np.maximum(f, 1e-9) / 1000.0) / (np.log(6.4) / 27.0)
    return np.where(f >= 1000.0, log, lin)

  def mel_to_hz(m):
    m = np.asarray(m, float)
    lin = m * (200.0 / 3)
    log = 1000.0 * np.exp((np.log(6.4) / 27.0) * (m - 15.0))
    return np.where(m >= 15.0, log, lin)
  freqs = np.fft.rfftfreq(n_fft, 1 / sr)
  edges = mel_to_hz(np.linspace(hz_to_mel(0), hz_to_mel(sr / 2), n_mels + 2))
  lower = (freqs[None] - edges[:-2, None]) / (edges[1:-1] - edges[:-2])[:, None]
  upper = (edges[2:, None] - freqs[None]) / (edges[2:] - edges[1:-1])[:, None]
  w = np.maximum(0, np.minimum(lower, upper))
  return (w * (2.0 / (edges[2:] - edges[:-2]))[:, None]).astype(np.float32)


_MEL = None


def mfcc(x: np.ndarray, sr: int = SAMPLE_RATE, n_mfcc: int = 20, n_fft: int = 400, hop: int = 160,
         n_mels: int = 40) -> np.ndarray:
  """(n_mfcc, frames) MFCCs: Hann STFT, power mel spectrogram, dB, DCT-II (numpy only)."""
  global _MEL
  from scipy.fft import dct
  if _MEL is None or _MEL.shape != (n_mels, n_fft // 2 + 1):
    _MEL = _mel_filters(sr, n_fft, n_mels)
  x = np.pad(x, (n_fft // 2, n_fft // 2), mode="reflect" if len(x) > n_fft // 2 else "constant")
  n = 1 + max(0, (len(x) - n_fft) // hop)
  frames = np.lib.stride_tricks.sliding_window_view(x, n_fft)[::hop][:n]
  spec = np.abs(np.fft.rfft(frames * np.hanning(n_fft + 1)[:-1], axis=1)) ** 2
  mel = spec @ _MEL.T
  db = 10 * np.log10(np.maximum(mel, 1e-10))
  db = np.maximum(db, db.max() - 80.0)
  return dct(db, type=2, axis=1, norm="ortho")[:, :n_mfcc].T


def mfcc_stats(path: str) -> np.ndarray:
  """20 MFCCs (25 ms / 10 ms, 40 mels) -> mean and std over time (40 numbers), then 4 segment means."""
  x = load_audio(path, SAMPLE_RATE)
  m = mfcc(x)
  segs = [seg.mean(axis=1) for seg in np.array_split(m, 4, axis=1) if seg.shape[1]]
  while len(segs) < 4:
    segs.append(segs[-1])
  # first 40: mean+std (the baseline); the rest: 4 segment means (a variant that keeps word order)
  return np.concatenate([m.mean(axis=1), m.std(axis=1)] + segs).astype(np.float32)


def evaluate(feats: np.ndarray, labels: np.ndarray, splits: np.ndarray,
             method: str = "MFCC20 mean+std, logistic regression") -> dict:
  from sklearn.linear_model import LogisticRegression
  from sklearn.metrics import balanced_accuracy_score
  from sklearn.pipeline import make_pipeline
  from sklearn.preprocessing import StandardScaler
  tr = splits == "train"
  clf = make_pipeline(StandardScaler(), LogisticRegression(max_iter=3000, C=1.0))
  clf.fit(feats[tr], labels[tr])
  classes = sorted(set(labels))
  out = {"classes": len(classes), "chance": 1.0 / len(classes), "method": method,
         "train_accuracy": float(np.mean(clf.predict(feats[tr]) == labels[tr]))}
  for s in ("valid", "test"):
    m = splits == s
    if m.any():
      pred = clf.predict(feats[m])
      out[f"{s}_accuracy"] = float(np.mean(pred == labels[m]))
      out[f"{s}_balanced_accuracy"] = float(balanced_accuracy_score(labels[m], pred))
      vals, cnt = np.unique(labels[m], return_counts=True)
      out[f"{s}_majority"] = float(cnt.max() / cnt.sum())
  return out


def run_task(manifest_file: Path, pool=None) -> dict:
  from ssl_audio.manifest import read_manifest
  m = read_manifest(manifest_file)
  paths = [m.path(i) for i in range(len(m))]
  feats = list(pool.map(mfcc_stats, paths, chunksize=32)) if pool else [mfcc_stats(p) for p in paths]
  feats = np.stack(feats)
  labels, splits = m.column("label").astype(str), m.column("split").astype(str)
  out = evaluate(feats[:, :40], labels, splits)
  out["segments"] = evaluate(feats, labels, splits, "MFCC20 mean+std + 4 segment means, logistic regression")
  return out


def run_all(root: Path, tasks: Sequence[str], pool=None) -> dict:
  return {t: run_task(Path(root) / t / "manifest.csv", pool) for t in tasks}

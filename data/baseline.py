"""Non-learned baseline per task: MFCC mean+std -> standardise -> logistic regression.

Trained on the ``train`` split, reported on ``valid`` and ``test``, next to chance
(1 / classes) and the majority-class rate of the test split.
"""

from __future__ import annotations

from pathlib import Path
from typing import Sequence

import numpy as np

SAMPLE_RATE = 16000


def mfcc_stats(path: str) -> np.ndarray:
  """20 MFCCs (25 ms / 10 ms, 40 mels) -> mean and std over time: 40 numbers."""
  import librosa
  from ssl_audio.audio import load_audio
  x = load_audio(path, SAMPLE_RATE)
  m = librosa.feature.mfcc(y=x, sr=SAMPLE_RATE, n_mfcc=20, n_fft=400, hop_length=160, n_mels=40,
                           fmax=SAMPLE_RATE // 2)
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

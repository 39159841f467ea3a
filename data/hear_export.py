"""A labelled manifest (e.g. a suite task) in the HEAR 2021 task format.

    python -m data.suite export-hear instrument hear_tasks [--max-clips=N] [--duration=S]

writes ``hear_tasks/ssl_audio_<name>/``, what ``hear-preprocess`` gives and the HEAR
kit's embedding and prediction runners read:

* ``task_metadata.json``: scene embeddings, multiclass, ``trainvaltest`` splits,
  ``sample_duration``;
* ``labelvocabulary.csv`` (``idx,label``) and ``train.json`` / ``valid.json`` /
  ``test.json`` (file name -> [label]);
* ``16000/<split>/<file>.wav``: 16 kHz mono PCM16, every clip zero-padded (or cut) to
  ``sample_duration`` as hear-preprocess does, so the runner can batch them.

The task's own splits are kept; a task without a valid split (language, msn) gets one
from whole train packages (``eval.probe.holdout_part``, as the probe does; the HEAR kit
does not refit on train + valid, so the held-out packages are lost to its test model).
"""

from __future__ import annotations

import csv
import json
import math
import os
from pathlib import Path

import numpy as np
import soundfile as sf

from eval.probe import holdout_part
from ssl_audio import audio as audio_lib
from ssl_audio import manifest as manifest_lib

SPLITS = ("train", "valid", "test")


def _file_name(m: manifest_lib.Manifest, i: int) -> str:
  """A flat, unique wav name: the manifest path with '/' -> '__', plus the segment."""
  stem = os.path.splitext(m.column("path")[i])[0].replace(os.sep, "__").replace("/", "__")
  start, _ = m.segment(i)
  return f"{stem}{'' if start is None else f'_t{start:.3f}'}.wav"


def splits_of(m: manifest_lib.Manifest, holdout_fraction: float = 0.15) -> np.ndarray:
  """train/valid/test per row: the manifest's, with valid held out of train if missing."""
  m = manifest_lib.ensure_split(m)
  split = np.asarray(m.column("split"), object).copy()
  if not (split == "valid").any():
    train = np.flatnonzero(split == "train")
    split[train] = holdout_part(manifest_lib.group_keys(m)[train], manifest_lib.domain_keys(m)[train],
                                np.asarray(m.column("label"), object)[train],
                                np.array([m.path(i) for i in train], object), "package",
                                holdout_fraction)[0]
  bad = sorted(set(split) - set(SPLITS))
  if bad:
    raise ValueError(f"{m.name}: split values {bad} are not train/valid/test")
  return split


def export(m: manifest_lib.Manifest, out: str | os.PathLike, task_name: str,
           max_clips: int | None = None, duration: float | None = None,
           sample_rate: int = audio_lib.SAMPLE_RATE) -> Path:
  """Writes ``out/task_name`` in the HEAR task format; returns that folder."""
  if not m.has("label"):
    raise ValueError(f"{m.name}: no label column: HEAR tasks are labelled")
  split = splits_of(m)
  rows = []
  for s in SPLITS:
    idx = np.flatnonzero(split == s)
    if not len(idx):
      raise ValueError(f"{m.name}: empty {s} split")
    if max_clips:   # a deterministic subset, the same for every run
      idx = sorted(idx, key=lambda i: manifest_lib.hash_unit(m.column("path")[i]))[:max_clips]
    rows += [(s, int(i)) for i in sorted(idx)]
  if duration is None:   # the longest clip: nothing is cut
    dur = [float(d) for d in m.column("duration")[[i for _, i in rows]]] if m.has("duration") else []
    duration = max(dur) if dur else None
  task = Path(out) / task_name
  labels = sorted({m.column("label")[i] for _, i in rows})
  targets = {s: {} for s in SPLITS}
  skipped = 0
  for s, i in rows:
    try:
      x = audio_lib.load_audio(m.path(i), sample_rate, *m.segment(i))
    except audio_lib.BadAudio:
      skipped += 1
      continue
    if duration is None:
      duration = len(x) / sample_rate   # no durations in the manifest: the first clip's
    n = int(math.ceil(duration * sample_rate))
    x = np.pad(x[:n], (0, max(0, n - len(x))))
    name = _file_name(m, i)
    (task / str(sample_rate) / s).mkdir(parents=True, exist_ok=True)
    sf.write(task / str(sample_rate) / s / name, x, sample_rate, subtype="PCM_16")
    targets[s][name] = [m.column("label")[i]]
  for s in SPLITS:
    (task / f"{s}.json").write_text(json.dumps(targets[s], indent=1, sort_keys=True))
  with open(task / "labelvocabulary.csv", "w", newline="") as f:
    w = csv.writer(f)
    w.writerow(["idx", "label"])
    w.writerows(enumerate(labels))
  meta = {"task_name": task_name, "version": "ssl-audio", "embedding_type": "scene",
          "prediction_type": "multiclass", "split_mode": "trainvaltest", "splits": list(SPLITS),
          "sample_duration": round(float(duration), 6), "evaluation": ["top1_acc"],
          "default_mode": "full", "mode": "full" if not max_clips else f"max{max_clips}",
          "sample_rates": [sample_rate], "source": m.name,
          "clips": {s: len(targets[s]) for s in SPLITS}, "skipped_files": skipped}
  (task / "task_metadata.json").write_text(json.dumps(meta, indent=1))
  return task

"""MUSAN (music / speech / noise).

Layout: ``[musan/]{music,speech,noise}/<subset>/*.wav`` (subsets: music: fma, fma-western-art,
hd-classical, jamendo, rfm; speech: librivox, us-gov; noise: free-sound, sound-bible; ANNOTATIONS and
LICENSE text files are ignored).

Label = top folder (music/speech/noise); speaker = source = subset folder. Split (``split_by="subset"``,
default): per label, subsets ordered by sha1 of ``<label>/<subset>``: the first -> test, the second ->
valid if the label has >= 3 subsets, the rest -> train; so no subset is in two splits and every label has
train and test data. ``split_by="file"``: sha1 of the file name, 70/10/20 (subsets cross splits).
"""

from __future__ import annotations

from pathlib import Path

from data.adapters.common import AdapterError, Report, find_paths, walk_files
from ssl_audio.manifest import hash_unit, split_of

NAME = "musan"
LABELS = ("music", "speech", "noise")


def subset_splits(label: str, subsets: list[str]) -> dict[str, str]:
  order = sorted(subsets, key=lambda s: (hash_unit(f"{label}/{s}"), s))
  out = {}
  for i, s in enumerate(order):
    if len(order) == 1:
      out[s] = "train"
    elif i == 0:
      out[s] = "test"
    elif i == 1 and len(order) >= 3:
      out[s] = "valid"
    else:
      out[s] = "train"
  return out


def adapt(root: Path, report: Report | None = None, split_by: str | None = None) -> list[dict]:
  report = report if report is not None else Report(NAME)
  root = Path(root)
  split_by = split_by or "subset"
  if split_by not in ("subset", "file"):
    raise AdapterError(f"musan: split_by must be 'subset' or 'file', got {split_by!r}")
  base = None
  for cand in [root] + find_paths(root, ["musan"], max_depth=3, want_dir=True):
    if any((cand / lab).is_dir() for lab in LABELS):
      base = cand
      break
  if base is None:
    raise AdapterError(f"musan: no music/, speech/ or noise/ folder under {root}")
  rows = []
  for lab in LABELS:
    d = base / lab
    if not d.is_dir():
      report.note(f"{lab}/ not found")
      continue
    subsets = sorted(s.name for s in d.iterdir() if s.is_dir() and not s.name.startswith("."))
    splits = subset_splits(lab, subsets)
    if len(subsets) == 1 and split_by == "subset":
      report.note(f"{lab}/ has one subset only: all of it in train")
    for sub in subsets:
      for p in walk_files(d / sub, exts=(".wav", ".flac")):
        split = splits[sub] if split_by == "subset" else split_of(p.name)
        rows.append({"path": str(p), "label": lab, "split": split, "speaker": sub, "source": sub})
    loose = [p for p in d.iterdir() if p.is_file() and p.suffix.lower() == ".wav"]
    if loose:
      report.note(f"{len(loose)} wav files directly in {lab}/ (not in a subset) ignored")
  return rows

"""AudioSet: segment CSVs + class_labels_indices.csv + a folder of downloaded clips.

Layout (anywhere below root, searched up to 4 levels for the CSVs and recursively for audio)::

  balanced_train_segments.csv     # "# ..." header lines, then YTID, start_seconds, end_seconds, "mid,mid"
  unbalanced_train_segments.csv
  eval_segments.csv
  class_labels_indices.csv        # index,mid,display_name
  <any folder>/<clip>.wav|.flac   # clip names: <YTID>, Y<YTID>, <YTID>_<start>_<end>, Y<YTID>_<start>_<end>,
                                  # <YTID>_<start> (start/end as 30, 30.0, 30.000 or milliseconds 30000)

Label: display names of the positive labels joined with ';' (multi-label). Split: *train_segments -> train,
eval_segments -> test. Clips are assumed already cut to the segment, so start/end stay empty and the
YouTube times go to ``segment_start``/``segment_end`` (``full_videos=True`` puts them in start/end).
"""

from __future__ import annotations

import csv
from pathlib import Path

from data.adapters.common import AdapterError, Report, find_paths, walk_files

NAME = "audioset"
SEGMENT_FILES = {
    "balanced_train": ("balanced_train_segments.csv", "train"),
    "unbalanced_train": ("unbalanced_train_segments.csv", "train"),
    "eval": ("eval_segments.csv", "test"),
}
YTID_LEN = 11


def read_class_labels(path: Path) -> dict[str, str]:
  with open(path, newline="", encoding="utf-8") as f:
    reader = csv.DictReader(f)
    return {r["mid"].strip(): r["display_name"].strip() for r in reader}


def read_segments(path: Path) -> list[tuple[str, str, str, list[str]]]:
  """(ytid, start, end, [mid...]) per data line; '#' lines are comments."""
  out = []
  with open(path, newline="", encoding="utf-8") as f:
    for rec in csv.reader(f, skipinitialspace=True):
      if not rec or rec[0].lstrip().startswith("#"):
        continue
      if len(rec) < 4:
        continue
      ytid, start, end = rec[0].strip(), rec[1].strip(), rec[2].strip()
      mids = [m.strip() for m in ",".join(rec[3:]).strip().strip('"').split(",") if m.strip()]
      out.append((ytid, start, end, mids))
  return out


def _time_forms(t: str) -> list[str]:
  try:
    x = float(t)
  except ValueError:
    return [t]
  forms = [t, f"{x:.3f}", f"{x:.1f}", f"{x:g}", str(int(x)), str(int(round(x * 1000)))]
  return list(dict.fromkeys(forms))


def candidate_stems(ytid: str, start: str, end: str) -> list[str]:
  stems = [ytid]
  for s in _time_forms(start):
    for e in _time_forms(end):
      stems.append(f"{ytid}_{s}_{e}")
      stems.append(f"{ytid}_{s}-{e}")
    stems.append(f"{ytid}_{s}")
  return stems + ["Y" + s for s in stems]


class ClipIndex:
  """Audio files below a folder, indexed by their 11-char YTID prefix (after an optional 'Y')."""

  def __init__(self, root: Path):
    self.by_ytid: dict[str, list[Path]] = {}
    self.count = 0
    for p in walk_files(root):
      stem = p.stem
      self.count += 1
      keys = {stem[:YTID_LEN]}
      if stem.startswith("Y") and len(stem) > YTID_LEN:
        keys.add(stem[1:1 + YTID_LEN])
      for k in keys:
        if len(k) == YTID_LEN:
          self.by_ytid.setdefault(k, []).append(p)

  def __len__(self):
    return self.count

  def find(self, ytid: str, start: str, end: str) -> Path | None:
    hits = self.by_ytid.get(ytid)
    if not hits:
      return None
    by_stem = {p.stem: p for p in hits}
    for s in candidate_stems(ytid, start, end):
      if s in by_stem:
        return by_stem[s]
    # other <YTID><sep>... names: accept only an unambiguous one
    ok = [p for p in hits if p.stem.startswith((ytid + "_", ytid + "-", "Y" + ytid + "_", "Y" + ytid + "-"))]
    return ok[0] if len(ok) == 1 else None


def adapt(root: Path, report: Report | None = None, subset: str | None = None,
          full_videos: bool = False, audio_dir: str | None = None) -> list[dict]:
  """Rows for the AudioSet segments whose clips are on disk.

  Args:
    subset: comma list of balanced_train, unbalanced_train, eval (default: every CSV found).
    full_videos: clips are whole videos: put the segment times in start/end.
    audio_dir: folder of clips (default: root, searched recursively).
  """
  report = report if report is not None else Report(NAME)
  root = Path(root)
  wanted = list(SEGMENT_FILES) if not subset else [s.strip() for s in subset.split(",") if s.strip()]
  bad = set(wanted) - set(SEGMENT_FILES)
  if bad:
    raise AdapterError(f"audioset: unknown subset(s) {sorted(bad)}; use {sorted(SEGMENT_FILES)}")
  label_files = find_paths(root, ["class_labels_indices.csv"], want_dir=False)
  names: dict[str, str] = {}
  if label_files:
    names = read_class_labels(label_files[0])
  else:
    report.note("class_labels_indices.csv not found: labels are the raw MIDs")
  index = ClipIndex(Path(audio_dir) if audio_dir else root)
  if not len(index):
    report.note(f"no audio files under {audio_dir or root}")
  rows: list[dict] = []
  found_any = False
  for sub in wanted:
    fname, split = SEGMENT_FILES[sub]
    paths = find_paths(root, [fname], want_dir=False)
    if not paths:
      if subset:
        report.note(f"{fname} not found")
      continue
    found_any = True
    missing_before = report.missing
    segs = read_segments(paths[0])
    for ytid, start, end, mids in segs:
      clip = index.find(ytid, start, end)
      if clip is None:
        report.add_missing(f"{sub}:{ytid}")
        continue
      row = {
          "path": str(clip),
          "label": ";".join(names.get(m, m) for m in mids),
          "split": split,
          "source": NAME,
          "mids": ";".join(mids),
          "subset": sub,
          "ytid": ytid,
          "segment_start": start,
          "segment_end": end,
      }
      if full_videos:
        row["start"], row["end"] = start, end
      rows.append(row)
    report.note(f"{fname}: {len(segs)} segments, {report.missing - missing_before} clips not found")
  if not found_any:
    raise AdapterError(f"audioset: no segment CSV ({', '.join(f for f, _ in SEGMENT_FILES.values())}) "
                       f"under {root}")
  return rows

"""TUT Urban Acoustic Scenes 2018 (DCASE 2018 task 1A), development set.

Layout: ``TUT-urban-acoustic-scenes-2018-development/`` with ``meta.csv`` (tab-separated
``filename  scene_label  identifier  source_label``, header optional), ``audio/<scene>-<city>-<location
id>-<segment id>-<device>.wav`` and ``evaluation_setup/fold1_train.txt`` / ``fold1_evaluate.txt``
(tab-separated ``filename  scene_label``; the ``.csv`` names of later years are accepted too).

Label = scene_label; speaker = identifier (``<city>-<location id>``: fold1 is location-disjoint);
source = city; extra column ``device``. Split: fold1_train -> train, fold1_evaluate -> test (the
public development set is the only labelled one; ``valid_fraction`` > 0 moves whole train locations to
valid by sha1 of the identifier). Without evaluation_setup/ the split is sha1 of the identifier, 70/10/20.
"""

from __future__ import annotations

from pathlib import Path

from data.adapters.common import AdapterError, Report, find_paths, read_lines
from ssl_audio.manifest import hash_unit, split_of

NAME = "tut_scenes_2018"


def read_tsv(path: Path) -> list[list[str]]:
  out = []
  for ln in read_lines(path):
    if not ln.strip():
      continue
    rec = [f.strip() for f in ln.split("\t")] if "\t" in ln else ln.split()
    if rec[0] == "filename":
      continue
    out.append(rec)
  return out


def _fold_file(setup: Path, stem: str) -> Path | None:
  for ext in (".txt", ".csv"):
    if (setup / (stem + ext)).is_file():
      return setup / (stem + ext)
  return None


def _parse_name(filename: str) -> tuple[str, str]:
  """(identifier, device) from <scene>-<city>-<loc>-<segment>-<device>.wav."""
  parts = Path(filename).stem.split("-")
  if len(parts) >= 5:
    return f"{parts[-4]}-{parts[-3]}", parts[-1]
  return "", ""


def adapt(root: Path, report: Report | None = None, valid_fraction: float | None = None) -> list[dict]:
  report = report if report is not None else Report(NAME)
  root = Path(root)
  metas = find_paths(root, ["meta.csv"], max_depth=3, want_dir=False)
  if not metas:
    raise AdapterError(f"tut_scenes_2018: no meta.csv under {root}")
  base = metas[0].parent
  setup = base / "evaluation_setup"
  fold_split: dict[str, str] = {}
  for stem, split in (("fold1_train", "train"), ("fold1_evaluate", "test")):
    f = _fold_file(setup, stem) if setup.is_dir() else None
    if f is None:
      report.note(f"evaluation_setup/{stem}.txt not found")
      continue
    for rec in read_tsv(f):
      fold_split[rec[0]] = split
  rows = []
  not_in_fold = 0
  for rec in read_tsv(metas[0]):
    filename, scene = rec[0], rec[1] if len(rec) > 1 else ""
    ident_from_name, device_from_name = _parse_name(filename)
    ident = rec[2] if len(rec) > 2 and rec[2] else ident_from_name
    device = rec[3] if len(rec) > 3 and rec[3] else device_from_name
    if fold_split:
      split = fold_split.get(filename)
      if split is None:
        not_in_fold += 1
        continue
    else:
      split = split_of(ident or filename)
    if split == "train" and valid_fraction and hash_unit(ident or filename) < float(valid_fraction):
      split = "valid"
    path = base / filename
    if not path.is_file():
      report.add_missing(filename)
      continue
    rows.append({"path": str(path), "label": scene, "split": split, "speaker": ident,
                 "source": ident.split("-")[0] if ident else "", "device": device})
  if not_in_fold:
    report.note(f"{not_in_fold} meta.csv rows in neither fold1 file: left out")
  if not fold_split:
    report.note("no fold1 files: split by sha1 of the location identifier")
  return rows

"""DCASE 2018 Bird Audio Detection (task 3), the three labelled development sets.

Layout (below root, any depth up to 3 for the CSVs; wavs searched recursively)::

  ff1010bird_metadata_2018.csv            + ff1010bird_wav/wav/<itemid>.wav
  warblrb10k_public_metadata_2018.csv     + warblrb10k_public_wav/wav/<itemid>.wav
  BirdVoxDCASE20k_csvpublic.csv           + BirdVox-DCASE-20k/wav/<itemid>.wav

Any CSV whose header has ``itemid`` and ``hasbird`` is used (columns itemid,datasetid,hasbird).
Label = hasbird (``0``/``1``); source = datasetid; no speaker. When the same itemid exists in several
folders, the one whose path contains the datasetid wins. Split: default sha1 of ``<datasetid>/<itemid>``,
70/10/20; ``heldout=<datasetid>``: leave-one-dataset-out, that dataset -> test, the others 90/10
train/valid by the same hash.
"""

from __future__ import annotations

import csv
from pathlib import Path

from data.adapters.common import AdapterError, Report, walk_files
from ssl_audio.manifest import split_of

NAME = "bird_audio_detection"


def _label_csvs(root: Path, max_depth: int = 3) -> list[Path]:
  out = []
  for p in sorted(walk_files(root, exts=(".csv",))):
    if len(p.relative_to(root).parts) > max_depth + 1:
      continue
    try:
      with open(p, newline="", encoding="utf-8", errors="replace") as f:
        header = [h.strip().lower() for h in next(csv.reader(f), [])]
    except OSError:
      continue
    if "itemid" in header and "hasbird" in header:
      out.append(p)
  return out


def adapt(root: Path, report: Report | None = None, heldout: str | None = None) -> list[dict]:
  report = report if report is not None else Report(NAME)
  root = Path(root)
  csvs = _label_csvs(root)
  if not csvs:
    raise AdapterError(f"bird_audio_detection: no CSV with itemid,hasbird columns under {root}")
  wavs: dict[str, list[Path]] = {}
  for p in walk_files(root, exts=(".wav",)):
    wavs.setdefault(p.stem, []).append(p)
  rows, seen_ids = [], set()
  for c in csvs:
    with open(c, newline="", encoding="utf-8", errors="replace") as f:
      reader = csv.DictReader(f)
      reader.fieldnames = [h.strip().lower() for h in reader.fieldnames or []]
      for rec in reader:
        item = (rec.get("itemid") or "").strip()
        if not item:
          continue
        dataset = (rec.get("datasetid") or c.stem).strip()
        seen_ids.add(dataset)
        hits = wavs.get(item, [])
        pref = [p for p in hits if dataset.lower() in str(p).lower()]
        path = (pref or hits or [None])[0]
        if path is None:
          report.add_missing(f"{dataset}/{item}.wav")
          continue
        key = f"{dataset}/{item}"
        if heldout:
          split = "test" if dataset == heldout else split_of(key, (("train", 0.9), ("valid", 0.1)))
        else:
          split = split_of(key)
        rows.append({"path": str(path), "label": str(rec.get("hasbird", "")).strip(), "split": split,
                     "speaker": "", "source": dataset, "itemid": item})
  if heldout and heldout not in seen_ids:
    raise AdapterError(f"bird_audio_detection: heldout {heldout!r} is not a datasetid "
                       f"(found {sorted(seen_ids)})")
  return rows

"""Kaggle "Spoken Language Identification" (de / en / es; T. Oponowicz).

Layout: ``train/train/*.flac`` and ``test/test/*.flac`` (one ``train/`` level is enough), file names
``<lang>_<gender>_<hash>.fragment<N>[.<augmentation>].flac`` e.g. ``de_f_63f5...166e.fragment1.flac``,
``en_m_...fragment3.speed2.flac`` (augmented copies: speed/pitch/noise).

Label = language = the prefix; speaker = the hash (one recording per hash); extra columns gender (f/m),
fragment, augmentation; split from the train/test folder (test speakers are disjoint; no valid split).
``variant="original"`` leaves the augmented copies out.
"""

from __future__ import annotations

import re
from pathlib import Path

from data.adapters.common import AdapterError, Report, walk_files

NAME = "spoken_language_id"
NAME_RE = re.compile(r"^(?P<lang>[a-z]{2})_(?P<gender>[fm])_(?P<hash>[0-9a-zA-Z]+)"
                     r"\.fragment(?P<frag>\d+)(?:\.(?P<aug>[a-z]+\d*))?$")


def adapt(root: Path, report: Report | None = None, variant: str | None = None) -> list[dict]:
  report = report if report is not None else Report(NAME)
  root = Path(root)
  variant = (variant or "all").lower()
  if variant not in ("all", "original"):
    raise AdapterError(f"spoken_language_id: variant must be 'all' or 'original', got {variant!r}")
  rows, ignored, augmented = [], 0, 0
  for p in walk_files(root, exts=(".flac", ".wav")):
    parts = p.relative_to(root).parts[:-1]
    split = "test" if "test" in parts else "train" if "train" in parts else None
    m = NAME_RE.match(p.name[: -len(p.suffix)])
    if split is None or m is None:
      ignored += 1
      continue
    if m["aug"] and variant == "original":
      augmented += 1
      continue
    rows.append({"path": str(p), "label": m["lang"], "split": split, "speaker": m["hash"],
                 "source": "kaggle_spoken_language_id", "language": m["lang"], "gender": m["gender"],
                 "fragment": m["frag"], "augmentation": m["aug"] or ""})
  if ignored:
    report.note(f"{ignored} audio files outside train/ or test/ or not named "
                f"<lang>_<gender>_<hash>.fragment<N>[.<aug>]: ignored")
  if augmented:
    report.note(f"{augmented} augmented copies left out (variant=original)")
  if not rows:
    raise AdapterError(f"spoken_language_id: no <lang>_<gender>_<hash>.fragment<N>.flac under "
                       f"train/ or test/ in {root}")
  return rows

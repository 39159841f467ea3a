"""LibriSpeech speaker identification (the paper's benchmark uses train-clean-100, 251 speakers).

Layout: ``[LibriSpeech/]<subset>/<speaker>/<chapter>/<speaker>-<chapter>-<utt>.flac`` with the optional
``LibriSpeech/SPEAKERS.TXT`` (``ID | SEX | SUBSET | MINUTES | NAME``, ';' comments) giving ``gender``.

Label = speaker = speaker ID; source = chapter ID; language = en. Speaker ID needs every speaker in every
split, so the split is made *within* each speaker:

* ``split_by="utterance"`` (default): sha1 of the utterance ID (``<spk>-<chapter>-<utt>``) ->
  train 80 % / valid 10 % / test 10 %.
* ``split_by="chapter"``: a speaker with >= 2 chapters has its chapter with the highest sha1 in test and the
  others in train (valid: 10 % of their utterances by hash); a speaker with one chapter falls back to the
  utterance rule. Chapter-disjoint, so recording-session cues do not leak.
"""

from __future__ import annotations

import re
from pathlib import Path

from data.adapters.common import AdapterError, Report, find_paths, read_lines, walk_files
from ssl_audio.manifest import hash_unit, split_of

NAME = "librispeech"
SUBSETS = ("train-clean-100", "train-clean-360", "train-other-500", "dev-clean", "dev-other",
           "test-clean", "test-other")
UTT_RE = re.compile(r"^(\d+)-(\d+)-(\d+)$")
UTT_FRACTIONS = (("train", 0.8), ("valid", 0.1), ("test", 0.1))


def read_speakers(path: Path) -> dict[str, str]:
  """speaker ID -> sex ('F'/'M') from SPEAKERS.TXT."""
  out = {}
  for ln in read_lines(path):
    if not ln.strip() or ln.lstrip().startswith(";"):
      continue
    parts = [p.strip() for p in ln.split("|")]
    if len(parts) >= 2 and parts[0].isdigit():
      out[parts[0]] = parts[1]
  return out


def adapt(root: Path, report: Report | None = None, subset: str | None = None,
          split_by: str | None = None) -> list[dict]:
  """Rows for one LibriSpeech subset (default train-clean-100)."""
  report = report if report is not None else Report(NAME)
  root = Path(root)
  subset = subset or "train-clean-100"
  split_by = split_by or "utterance"
  if split_by not in ("utterance", "chapter"):
    raise AdapterError(f"librispeech: split_by must be 'utterance' or 'chapter', got {split_by!r}")
  dirs = find_paths(root, [subset], max_depth=3, want_dir=True)
  if not dirs:
    raise AdapterError(f"librispeech: no {subset}/ folder under {root}")
  sub_dir = dirs[0]
  sexes = {}
  spk_files = find_paths(sub_dir.parent, ["SPEAKERS.TXT"], max_depth=1, want_dir=False)
  if spk_files:
    sexes = read_speakers(spk_files[0])
  items = []
  for p in walk_files(sub_dir, exts=(".flac", ".wav")):
    m = UTT_RE.match(p.stem)
    if not m:
      report.note(f"ignored file not named <speaker>-<chapter>-<utt>: {p.name}")
      continue
    spk, chap, _ = m.groups()
    rel = p.relative_to(sub_dir).parts
    if len(rel) != 3 or rel[0] != spk or rel[1] != chap:
      report.note(f"file not in <speaker>/<chapter>/: {p.relative_to(sub_dir)}")
    items.append((p, spk, chap))
  if not items:
    raise AdapterError(f"librispeech: no <speaker>-<chapter>-<utt>.flac under {sub_dir}")
  test_chapter: dict[str, str] = {}
  if split_by == "chapter":
    chapters: dict[str, set[str]] = {}
    for _, spk, chap in items:
      chapters.setdefault(spk, set()).add(chap)
    for spk, chs in chapters.items():
      if len(chs) >= 2:
        test_chapter[spk] = max(chs, key=lambda c: (hash_unit(f"{spk}-{c}"), c))
  rows = []
  for p, spk, chap in items:
    if spk in test_chapter:
      split = "test" if chap == test_chapter[spk] else split_of(p.stem, (("train", 0.9), ("valid", 0.1)))
    else:
      split = split_of(p.stem, UTT_FRACTIONS)
    row = {"path": str(p), "label": spk, "split": split, "speaker": spk, "source": chap,
           "language": "en", "subset": subset}
    if sexes:
      row["gender"] = sexes.get(spk, "").lower()
    rows.append(row)
  return rows

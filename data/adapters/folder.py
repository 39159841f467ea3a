"""Any folder-per-class tree: ``<root>/<label>/**/<file>.{wav,flac,ogg,mp3}``.

Label = first-level folder name (files directly in root get no label). Speaker: the named group
``speaker`` (or first group) of ``speaker_pattern`` matched against the file name, if given.
Split: ``ssl_audio.manifest.hash_split`` (sha1, 70/10/20) of the speaker when there is one, else of the
file name, so a speaker never crosses splits.
"""

from __future__ import annotations

import re
from pathlib import Path

from ssl_audio.manifest import hash_split

from data.adapters.common import AdapterError, Report, walk_files

NAME = "folder"


def adapt(root: Path, report: Report | None = None, speaker_pattern: str | None = None) -> list[dict]:
  report = report if report is not None else Report(NAME)
  root = Path(root)
  if not root.is_dir():
    raise AdapterError(f"folder: not a folder: {root}")
  rx = re.compile(speaker_pattern) if speaker_pattern else None
  rows, no_speaker = [], 0
  for p in walk_files(root):
    rel = p.relative_to(root)
    row = {"path": str(p), "label": rel.parts[0] if len(rel.parts) > 1 else "", "source": NAME}
    if rx is not None:
      m = rx.search(p.name)
      spk = ""
      if m:
        spk = m.groupdict().get("speaker") or (m.group(1) if m.groups() else m.group(0))
      if not spk:
        no_speaker += 1
      row["speaker"] = spk
    rows.append(row)
  if not rows:
    raise AdapterError(f"folder: no audio files under {root}")
  keys = [r.get("speaker") or Path(r["path"]).name for r in rows]
  for r, s in zip(rows, hash_split(keys)):
    r["split"] = s
  if no_speaker:
    report.note(f"{no_speaker} file names did not match speaker_pattern: split by file name")
  return rows

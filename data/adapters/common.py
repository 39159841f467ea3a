"""Shared helpers for the dataset adapters of ``data.prepare``.

An adapter is ``adapt(root: Path, report: Report | None = None, **options) -> list[dict]``:
it returns one dict per usable audio file (or segment) with an absolute ``path`` and
the manifest columns it knows (see ``ssl_audio.manifest``), and counts in ``report``
the files that its metadata names but that are not on disk. Missing files never raise.
"""

from __future__ import annotations

import dataclasses
import os
from pathlib import Path
from typing import Iterable, Iterator, Sequence

from ssl_audio.manifest import AUDIO_EXTENSIONS

MAX_EXAMPLES = 5


class AdapterError(ValueError):
  """The root does not look like the dataset at all (nothing usable found)."""


@dataclasses.dataclass
class Report:
  """What an adapter (and the audio check) could not use."""
  dataset: str = ""
  missing: int = 0
  missing_examples: list[str] = dataclasses.field(default_factory=list)
  unreadable: int = 0
  unreadable_examples: list[str] = dataclasses.field(default_factory=list)
  notes: list[str] = dataclasses.field(default_factory=list)

  def add_missing(self, what: object, count: int = 1) -> None:
    self.missing += count
    if len(self.missing_examples) < MAX_EXAMPLES:
      self.missing_examples.append(str(what))

  def add_unreadable(self, what: object, why: str = "") -> None:
    self.unreadable += 1
    if len(self.unreadable_examples) < MAX_EXAMPLES:
      self.unreadable_examples.append(f"{what}" + (f" ({why})" if why else ""))

  def note(self, msg: str) -> None:
    self.notes.append(msg)

  def summary(self, rows: Sequence[dict]) -> str:
    """One line: rows per split, label count (';'-separated multi-labels counted apart), missing and
    unreadable counts."""
    splits: dict[str, int] = {}
    for r in rows:
      s = r.get("split") or "-"
      splits[s] = splits.get(s, 0) + 1
    order = [s for s in ("train", "valid", "test", "-") if s in splits]
    labels = {lab for r in rows for lab in str(r.get("label") or "").split(";")} - {""}
    parts = ", ".join(f"{s} {splits[s]}" for s in order)
    return (f"{self.dataset}: {len(rows)} rows ({parts or 'none'}), {len(labels)} labels; "
            f"missing {self.missing}, unreadable {self.unreadable}")

  def details(self) -> list[str]:
    out = []
    if self.missing_examples:
      out.append("missing, e.g.: " + "; ".join(self.missing_examples))
    if self.unreadable_examples:
      out.append("unreadable, e.g.: " + "; ".join(self.unreadable_examples))
    out.extend("note: " + n for n in self.notes)
    return out


def is_audio(name: str, exts: Iterable[str] = AUDIO_EXTENSIONS) -> bool:
  return os.path.splitext(name)[1].lower() in tuple(exts)


def walk_files(root: Path, exts: Iterable[str] | None = AUDIO_EXTENSIONS,
               skip_dirs: Iterable[str] = ()) -> Iterator[Path]:
  """Files under root (recursively, sorted, following links), filtered by extension."""
  exts = None if exts is None else tuple(e.lower() for e in exts)
  skip = set(skip_dirs)
  for dirpath, dirnames, filenames in os.walk(root, followlinks=True):
    dirnames[:] = sorted(d for d in dirnames if d not in skip and not d.startswith("."))
    for f in sorted(filenames):
      if exts is None or os.path.splitext(f)[1].lower() in exts:
        yield Path(dirpath) / f


def find_paths(root: Path, names: Iterable[str], max_depth: int = 4,
               want_dir: bool | None = None) -> list[Path]:
  """Entries named one of ``names`` (case-sensitive) at most ``max_depth`` levels below root,
  root itself included, shallowest first."""
  names = set(names)
  root = Path(root)
  found = []
  if root.name in names and (want_dir is None or root.is_dir() == want_dir):
    found.append(root)
  level = [root]
  for _ in range(max_depth):
    nxt = []
    for d in level:
      try:
        entries = sorted(os.scandir(d), key=lambda e: e.name)
      except OSError:
        continue
      for e in entries:
        isdir = e.is_dir()
        if e.name in names and (want_dir is None or isdir == want_dir):
          found.append(Path(e.path))
        if isdir and not e.name.startswith("."):
          nxt.append(Path(e.path))
    level = nxt
  return found


def read_lines(path: Path) -> list[str]:
  with open(path, encoding="utf-8", errors="replace") as f:
    return [ln.rstrip("\r\n") for ln in f]

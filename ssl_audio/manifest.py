"""The manifest format: one CSV row per audio file (or per segment of one).

Columns (header required; only ``path`` is mandatory):

==========  =================================================================
path        audio file, relative to the manifest's folder or absolute
label       class name (string) for labelled tasks
split       ``train`` / ``valid`` / ``test``
speaker     speaker (or performer / soundfont) identity: splits never cross it
source      where the audio comes from (package, recording set)
package     the distribution package or collection holding the file (``domain_keys``)
language    language code for speech
start, end  segment inside the file, in seconds (empty: whole file)
duration    duration in seconds of the segment (informative, may be empty)
==========  =================================================================

Extra columns (``pitch``, ``hash``...) are kept and passed through.

Names accepted wherever a data source is configured (``resolve``):
``suite:NAME`` (offline suite, built on first use), ``manifest:PATH`` or a
``*.csv`` path, ``folder:PATH`` or a plain directory (searched recursively for
audio; the parent folder name is the label).

A manifest may live in a bucket (``manifest:gs://bucket/x.csv``): its rows may be
``gs://`` URLs or paths relative to the manifest's folder in the bucket; every file
is read through ``ssl_audio.paths``.

Named schemes such as ``suite:`` are registered by the code that owns them
(``register_scheme``; ``data.suite`` registers ``suite`` when imported), so this
library module imports nothing outside ``ssl_audio``.
"""

from __future__ import annotations

import csv
import dataclasses
import hashlib
import io
import os
import re
from pathlib import Path
from typing import Callable, Iterable, Mapping, Sequence

import numpy as np

from ssl_audio import paths as paths_lib

COLUMNS = ("path", "label", "split", "speaker", "source", "language", "start", "end", "duration")
AUDIO_EXTENSIONS = (".wav", ".flac", ".ogg", ".mp3")
SPLITS = ("train", "valid", "test")


class ManifestError(ValueError):
  """A manifest that cannot be used (missing file, bad header, bad values)."""


@dataclasses.dataclass
class Manifest:
  """A manifest held column-wise (cheap for millions of rows).

  Attributes:
    columns: column name -> numpy array of strings (object dtype), one entry per row.
    base_dir: folder that relative paths are resolved against (a local folder or a
      ``gs://`` folder as an ``epath.Path``).
    name: where it came from, for messages.
  """
  columns: dict[str, np.ndarray]
  base_dir: Path
  name: str = ""

  def __len__(self) -> int:
    return len(self.columns["path"])

  def has(self, column: str) -> bool:
    """True if the column exists and at least one row has a value."""
    col = self.columns.get(column)
    return col is not None and any(v != "" for v in col)

  def column(self, name: str) -> np.ndarray:
    if name not in self.columns:
      raise ManifestError(f"{self.name}: manifest has no column {name!r} "
                          f"(columns: {sorted(self.columns)})")
    return self.columns[name]

  def path(self, i: int) -> str:
    p = self.columns["path"][i]
    return p if os.path.isabs(p) or paths_lib.is_remote(p) else str(self.base_dir / p)

  def paths(self) -> np.ndarray:
    """Every row's path resolved against base_dir (object array)."""
    base = str(self.base_dir)
    return np.array([paths_lib.join(base, p) for p in self.columns["path"]], dtype=object)

  def segments(self) -> np.ndarray:
    """[rows, 2] float64 (start, end) in seconds; NaN where the column is empty."""
    out = np.full((len(self), 2), np.nan)
    for j, col in enumerate(("start", "end")):
      v = self.columns.get(col)
      if v is not None:
        filled = v != ""
        out[filled, j] = v[filled].astype(np.float64)
    return out

  def segment(self, i: int) -> tuple[float | None, float | None]:
    """(start, end) in seconds of row i; None where the column is empty."""
    def get(col):
      v = self.columns.get(col)
      if v is None or v[i] == "":
        return None
      return float(v[i])
    return get("start"), get("end")

  def row(self, i: int) -> dict[str, str]:
    return {k: v[i] for k, v in self.columns.items()}

  def select(self, mask_or_index) -> "Manifest":
    return Manifest({k: v[mask_or_index] for k, v in self.columns.items()},
                    self.base_dir, self.name)

  def where(self, **equals: str) -> "Manifest":
    """Rows whose columns equal the given values, e.g. ``where(split="train")``."""
    mask = np.ones(len(self), bool)
    for k, v in equals.items():
      mask &= self.column(k) == v
    return self.select(mask)

  def labels(self) -> list[str]:
    """Sorted distinct non-empty labels."""
    return sorted(set(self.column("label")) - {""})

  def label_counts(self) -> tuple[list[str], list[int]]:
    """(sorted distinct non-empty labels, rows of each): a classifier's classes and prior."""
    values, counts = np.unique(np.asarray(self.column("label"), dtype=str), return_counts=True)
    keep = values != ""
    return [str(v) for v in values[keep]], [int(n) for n in counts[keep]]


def read_manifest(path: str | os.PathLike) -> Manifest:
  """Reads a manifest CSV and checks its columns; errors name the row and column.

  The file is parsed as a stream (no second copy of its text in memory), and a column
  with few distinct values (labels, splits, speakers) keeps one string object per
  value: a 1M-row manifest fits in about a third of the memory of one object per cell.
  """
  path = paths_lib.path(path)   # a local file or a gs:// object
  if not path.is_file():
    raise ManifestError(f"manifest not found: {path}")
  try:
    with paths_lib.open(os.fspath(path), "rb") as raw, \
         io.TextIOWrapper(raw, encoding="utf-8", newline="") as f:
      header, cols = _read_csv(path, f)
  except UnicodeDecodeError as e:
    raise _not_utf8(path) from e
  m = Manifest({h: np.array(c, dtype=object) for h, c in zip(header, cols)},
               path.parent, str(path))
  check_columns(m)
  return m


# A column stops sharing its strings once it has this many distinct values (paths are
# mostly distinct: a lookup table would only add memory).
_SHARED_VALUES_MAX = 1 << 16


def _read_csv(path: Path, f) -> tuple[list[str], list[list[str]]]:
  reader = csv.reader(f)
  try:
    header = [h.strip() for h in next(reader)]
  except StopIteration:
    raise ManifestError(f"{path}: empty manifest (no header)") from None
  if "path" not in header:
    raise ManifestError(f"{path}: header must have a 'path' column, got {header}")
  if len(set(header)) != len(header):
    raise ManifestError(f"{path}: duplicate columns in header {header}")
  n = len(header)
  cols: list[list[str]] = [[] for _ in header]
  shared: list[dict[str, str] | None] = [{} for _ in header]
  for rec in reader:
    if not rec:
      continue
    if len(rec) != n:
      raise ManifestError(f"{path}: row {len(cols[0]) + 1} (line {reader.line_num}): "
                          f"{len(rec)} fields, header has {n}")
    for k in range(n):
      v = rec[k]
      table = shared[k]
      if table is not None:
        v = table.setdefault(v, v)
        if len(table) > _SHARED_VALUES_MAX:
          shared[k] = None
      cols[k].append(v)
  return header, cols


def _not_utf8(path) -> ManifestError:
  """Where the first non-UTF-8 byte is: line, row and column (by counting commas)."""
  data = path.read_bytes()
  try:
    data.decode("utf-8")
    return ManifestError(f"{path}: not UTF-8")
  except UnicodeDecodeError as e:
    start = data.rfind(b"\n", 0, e.start) + 1
    line = data.count(b"\n", 0, e.start) + 1
    header = data[:data.find(b"\n")].decode("utf-8", "replace").strip().split(",")
    k = data.count(b",", start, e.start)
    col = header[k].strip() if k < len(header) else f"field {k + 1}"
    return ManifestError(f"{path}: line {line} (row {line - 1}), column {col!r}: bytes that "
                         f"are not UTF-8 ({data[e.start:e.end]!r} at byte {e.start}); "
                         "save the manifest as UTF-8")


def _bad_row(m: Manifest, i: int, col: str, msg: str) -> ManifestError:
  path = m.columns["path"][i]
  return ManifestError(f"{m.name}: row {i + 1}, column {col!r}: {msg} (path {path!r})")


def _numbers(m: Manifest, col: str) -> np.ndarray:
  """A numeric column as float64 (NaN where empty); the first bad value is an error."""
  v = m.columns[col]
  out = np.full(len(v), np.nan)
  filled = v != ""
  try:
    out[filled] = v[filled].astype(np.float64)
  except ValueError:
    for i in np.flatnonzero(filled):
      try:
        float(v[i])
      except ValueError:
        raise _bad_row(m, i, col, f"{v[i]!r} is not a number") from None
  bad = filled & ~(np.isfinite(out) & (out >= 0))
  if bad.any():
    i = int(np.flatnonzero(bad)[0])
    raise _bad_row(m, i, col, f"{v[i]!r} must be a finite number >= 0 (seconds)")
  return out


def check_columns(m: Manifest) -> None:
  """Checks values that would otherwise fail deep inside a run; errors name row and column."""
  if len(m) == 0:
    raise ManifestError(f"{m.name}: manifest has no rows")
  empty = m.columns["path"] == ""
  if empty.any():
    raise _bad_row(m, int(np.flatnonzero(empty)[0]), "path", "empty")
  if "split" in m.columns and not set(m.columns["split"]) <= {*SPLITS, ""}:
    bad = ~np.isin(m.columns["split"], list(SPLITS) + [""])
    if bad.any():
      i = int(np.flatnonzero(bad)[0])
      raise _bad_row(m, i, "split", f"unknown split {m.columns['split'][i]!r}; use {SPLITS}")
  nums = {col: _numbers(m, col) for col in ("start", "end", "duration") if col in m.columns}
  if "start" in nums and "end" in nums:
    bad = nums["end"] <= nums["start"]   # False where either is empty (NaN)
    if bad.any():
      i = int(np.flatnonzero(bad)[0])
      raise _bad_row(m, i, "end", f"end {m.columns['end'][i]} is not after start "
                     f"{m.columns['start'][i]}")


def write_manifest(path: str | os.PathLike, rows: Iterable[Mapping[str, object]],
                   columns: Sequence[str] | None = None) -> Path:
  """Writes rows (dicts) as a manifest CSV, atomically. Returns the path."""
  rows = list(rows)
  if columns is None:
    extra = sorted({k for r in rows for k in r} - set(COLUMNS))
    present = [c for c in COLUMNS if any(c in r for r in rows)]
    columns = (["path"] if "path" not in present else []) + present + extra
  path = Path(path)
  path.parent.mkdir(parents=True, exist_ok=True)
  tmp = path.with_name(path.name + ".tmp")
  with open(tmp, "w", newline="", encoding="utf-8") as f:
    w = csv.writer(f)
    w.writerow(columns)
    for r in rows:
      w.writerow(["" if r.get(c) is None else r.get(c) for c in columns])
  os.replace(tmp, path)
  return path


def scan_folder(folder: str | os.PathLike) -> Manifest:
  """A folder of audio files as a manifest; the parent folder name is the label."""
  if paths_lib.is_remote(folder):   # listing a bucket recursively costs an RPC per prefix
    raise ManifestError(f"folder:{folder}: folders must be local; for a bucket write a "
                        "manifest (manifest:gs://bucket/x.csv)")
  folder = Path(folder)
  if not folder.is_dir():
    raise ManifestError(f"not a folder: {folder}")
  files = sorted(p for p in folder.rglob("*")
                 if p.suffix.lower() in AUDIO_EXTENSIONS and p.is_file())
  if not files:
    raise ManifestError(f"no audio files ({', '.join(AUDIO_EXTENSIONS)}) under {folder}")
  rel = [str(p.relative_to(folder)) for p in files]
  labels = [p.parent.name if p.parent != folder else "" for p in files]
  return Manifest({"path": np.array(rel, dtype=object),
                   "label": np.array(labels, dtype=object)}, folder, f"folder:{folder}")


def hash_unit(key: str) -> float:
  """A number in [0, 1] from a stable hash (sha1) of key: the basis of every hash split."""
  return int(hashlib.sha1(str(key).encode()).hexdigest()[:8], 16) / 0xFFFFFFFF


def split_of(key: str, fractions=(("train", 0.7), ("valid", 0.1), ("test", 0.2))) -> str:
  """The split of one key: the first split whose cumulative fraction reaches its hash_unit."""
  u = hash_unit(key)
  acc = 0.0
  for name, frac in fractions:
    acc += frac
    if u <= acc:
      return name
  return fractions[-1][0]  # float rounding of the fractions' sum


def hash_split(keys: Sequence[str], fractions=(("train", 0.7), ("valid", 0.1), ("test", 0.2))
               ) -> np.ndarray:
  """Deterministic split by a hash of a grouping key (speaker, source or file name).

  Rows sharing a key always land in the same split, so a speaker never crosses it.
  """
  return np.array([split_of(k, fractions) for k in keys], dtype=object)


def group_keys(m: Manifest) -> np.ndarray:
  """Speaker, else source, else file name: what a held-out part must not share."""
  for key in ("speaker", "source"):
    if m.has(key):
      return np.asarray(m.column(key), dtype=object)
  return np.array([os.path.basename(p) for p in m.column("path")], dtype=object)


def domain_keys(m: Manifest) -> np.ndarray:
  """Package, else source, else ``group_keys``: the unit a recording domain comes in
  (a held-out part made of whole domains shares no channel or collection with train)."""
  for key in ("package", "source"):
    if m.has(key):
      return np.asarray(m.column(key), dtype=object)
  return group_keys(m)


def ensure_split(m: Manifest) -> Manifest:
  """Adds a ``split`` column where missing, by a hash of ``group_keys``."""
  if m.has("split"):
    return m
  cols = dict(m.columns)
  cols["split"] = hash_split(group_keys(m))
  return Manifest(cols, m.base_dir, m.name)


def concatenate(manifests: Sequence[Manifest], names: Sequence[str]) -> Manifest:
  """Several manifests as one, with a ``dataset`` column; labels become ``NAME/label``.

  Paths are made absolute, so rows keep resolving after the merge.
  """
  columns = sorted({c for m in manifests for c in m.columns} | {"dataset"})
  out: dict[str, list] = {c: [] for c in columns}
  for m, n in zip(manifests, names):
    for c in columns:
      if c == "path":
        out[c].extend(m.path(i) for i in range(len(m)))
      elif c == "dataset":
        out[c].extend([n] * len(m))
      elif c == "label" and c in m.columns:
        out[c].extend(f"{n}/{v}" if v != "" else "" for v in m.columns[c])
      else:
        out[c].extend(m.columns[c] if c in m.columns else [""] * len(m))
  return Manifest({c: np.array(v, dtype=object) for c, v in out.items()}, Path("/"),
                  ",".join(names))


# ============================================================================ source names

@dataclasses.dataclass(frozen=True)
class Scheme:
  resolver: Callable[[str], Manifest]   # the text after "scheme:" -> Manifest
  help: str                             # one line for error messages


_SCHEMES: dict[str, Scheme] = {}
# Schemes that live outside the library: what to import to get them.
_SCHEME_HINTS = {
    "suite": "import data.suite (python main.py and python -m eval.linear_eval do) "
             "or pass manifest:PATH / folder:PATH",
}
_SCHEME_RE = re.compile(r"^([A-Za-z][A-Za-z0-9_]+):(.*)$", re.S)  # 2+ chars: not a drive letter


def register_scheme(scheme: str, resolver: Callable[[str], Manifest], help: str) -> None:
  """Makes ``resolve("SCHEME:REST")`` return ``resolver(REST)``; re-registering replaces."""
  if not _SCHEME_RE.match(f"{scheme}:"):
    raise ValueError(f"bad scheme name {scheme!r}")
  _SCHEMES[scheme] = Scheme(resolver, help)


register_scheme("manifest", read_manifest, "manifest:PATH.csv")
register_scheme("folder", scan_folder, "folder:PATH (searched recursively for audio)")


def resolve(name: str) -> Manifest:
  """Turns a data-source name (see module doc) into a Manifest.

  A comma-separated list of names gives their concatenation (see ``concatenate``).
  """
  if not isinstance(name, str) or not name:
    raise ManifestError(f"empty data source name: {name!r}")
  if "," in name:
    names = [n.strip() for n in name.split(",") if n.strip()]
    return concatenate([resolve(n) for n in names], names)
  match = _SCHEME_RE.match(name)
  if match and match.group(1) in _SCHEMES:
    return _SCHEMES[match.group(1)].resolver(match.group(2))
  p = paths_lib.path(os.path.expanduser(name))
  if p.is_dir():
    return scan_folder(p)
  if p.suffix.lower() == ".csv":
    return read_manifest(p)
  if match and match.group(1) in _SCHEME_HINTS:
    raise ManifestError(f"data source {name!r}: the {match.group(1)}: scheme is not "
                        f"registered; {_SCHEME_HINTS[match.group(1)]}")
  unknown = ""
  if match:
    known = "; ".join(s.help for s in _SCHEMES.values())
    unknown = f" (unknown scheme {match.group(1)!r}; registered: {known})"
  raise ManifestError(
      f"cannot resolve data source {name!r}{unknown}: use suite:NAME, manifest:PATH.csv, "
      f"folder:PATH, or an existing folder or .csv file")


def short_name(spec: str, style: str = "label") -> str:
  """A short name for a data source, in one of three styles (suite:NAME -> NAME in all):

  * ``label`` (metric keys): the last path part; a ``manifest.csv`` is named by its
    folder: folder:/x/birds -> birds, manifest:/x/birds/manifest.csv -> birds.
  * ``file`` (result and cache file names: keep them stable): scheme + file-system-safe
    stem: folder:/a/b -> folder-b, /y/cats.csv -> path-cats.
  * ``full`` (tables that must tell two folders apart): the spec unchanged.
  """
  if spec.startswith("suite:"):
    return spec.split(":", 1)[1]
  if style == "label":
    return _label_name(spec)
  if style == "file":
    return _file_name(spec)
  if style == "full":
    return spec
  raise ValueError(f"short_name: unknown style {style!r} (label, file or full)")


def _label_name(spec: str) -> str:
  name = spec.split(":", 1)[1] if ":" in spec else spec
  parts = [p for p in name.split("/") if p]
  if not parts:
    return name
  if parts[-1].lower().endswith(".csv"):
    stem = parts[-1][:-4]
    return parts[-2] if stem == "manifest" and len(parts) > 1 else stem
  return parts[-1]


def _file_name(spec: str) -> str:
  kind, _, rest = spec.partition(":") if ":" in spec else ("path", "", spec)
  p = Path(rest.rstrip("/"))
  stem = p.stem or "task"
  if stem == "manifest" and p.parent.name:   # <task>/manifest.csv (the suite's layout)
    stem = p.parent.name
  safe = "".join(ch if ch.isalnum() or ch in "-_." else "_" for ch in stem)
  return f"{kind}-{safe}"

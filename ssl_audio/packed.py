"""A packed int16 store of a manifest's audio: decode and resample once, then copy windows.

With ``config.data.packed = True`` the trainer decodes every row it trains on once,
at the front-end's rate, into one raw int16 file; the input workers memory-map it and
copy a window per example: no file open, no FLAC/Opus decoding and no resampling per
draw (on 2 CPU cores that decoding competes with XLA for the cores: BENCHMARKS.md).

The store lives under ``config.data.packed_dir`` (empty: ``$SSL_AUDIO_CACHE/packed``,
else ``~/.cache/ssl_audio/packed``) in a folder named by a fingerprint of what it
holds: the rows (path and segment), each local file's size and modification time, and
the sample rate. A changed manifest or a re-written file gives a new fingerprint, so a
new store; an old one is left for the user to delete. Building is locked and atomic
(a temporary folder renamed into place), so several runs on one host (a sweep) build
it once, and a build killed half-way leaves nothing that looks complete.

A row that fails to decode while packing (corrupt, empty, silent, non-finite) is
stored empty and reported with its reason, as the pipeline reports rows it leaves out
when it is built.
"""

from __future__ import annotations

import concurrent.futures
import contextlib
import dataclasses
import fcntl
import functools
import hashlib
import json
import os
import shutil
import time
import zipfile

import numpy as np
from absl import logging

from ssl_audio import audio as audio_lib
from ssl_audio import paths as paths_lib
from ssl_audio.manifest import Manifest

AUDIO_FILE = "audio.i16"   # raw little-endian int16, every row one after another
INDEX_FILE = "index.npz"   # rows (manifest row ids), offsets, lengths (samples)
META_FILE = "meta.json"    # what was packed, how long it took, the rows that failed


def default_root() -> str:
  return os.path.join(os.environ.get("SSL_AUDIO_CACHE", os.path.expanduser("~/.cache/ssl_audio")),
                      "packed")


def fingerprint(manifest: Manifest, rows: np.ndarray, sample_rate: int) -> str:
  """A hash of the rows' paths and segments, each local file's size and mtime, and the rate."""
  h = hashlib.sha256(f"packed-v1 {sample_rate}\n".encode())
  seg = manifest.segments()
  for i in np.asarray(rows, np.int64):
    path = manifest.path(int(i))
    stamp = "remote"
    if not paths_lib.is_remote(path):
      try:
        st = os.stat(path)
        stamp = f"{st.st_size} {st.st_mtime_ns}"
      except OSError:
        stamp = "missing"
    h.update(f"{path}\t{seg[i, 0]}\t{seg[i, 1]}\t{stamp}\n".encode())
  return h.hexdigest()[:24]


@dataclasses.dataclass(frozen=True)
class PackedStore:
  """An opened store: ``window(row, start, n)`` copies samples of one manifest row."""
  folder: str
  audio: np.ndarray      # [total] int16, memory-mapped
  rows: np.ndarray       # [n] manifest row ids, ascending
  offsets: np.ndarray    # [n] first sample of each row in ``audio``
  lengths: np.ndarray    # [n] samples of each row (0: failed to decode)
  meta: dict

  def slot(self, row: int) -> int:
    """Position of a manifest row in the store (a search: no per-row dict for 1M rows)."""
    k = int(np.searchsorted(self.rows, row))
    if k == len(self.rows) or self.rows[k] != row:
      raise KeyError(f"row {row} is not in the packed store {self.folder}")
    return k

  def length(self, row: int) -> int:
    return int(self.lengths[self.slot(row)])

  def usable_rows(self, manifest: Manifest, min_samples: int) -> tuple[np.ndarray, dict[str, str]]:
    """(the stored rows with at least ``min_samples``, {path: reason} for the others): the
    exact lengths, so no header is read (``input_pipeline.usable_rows`` without a store)."""
    ok = self.lengths >= min_samples
    bad = {}
    for k in np.flatnonzero(~ok):
      path = manifest.path(int(self.rows[k]))
      bad[path] = self.meta["bad"].get(path) or (
          f"too short for the task: {self.lengths[k] / self.meta['sample_rate']:.3f} s, "
          f"need {min_samples / self.meta['sample_rate']:.3f} s")
    return self.rows[ok], bad

  def window(self, row: int, start: int, n: int) -> np.ndarray:
    """float32 samples [start, start + n) of the row (fewer at its end), scaled to [-1, 1)."""
    k = self.slot(row)
    start = min(max(int(start), 0), int(self.lengths[k]))
    stop = min(start + int(n), int(self.lengths[k]))
    off = int(self.offsets[k])
    return np.multiply(self.audio[off + start:off + stop], np.float32(1 / 32768), dtype=np.float32)


@functools.lru_cache(maxsize=8)
def open_store(folder: str) -> PackedStore:
  """The store in ``folder`` (memory-mapped once per process: input workers call this)."""
  with np.load(os.path.join(folder, INDEX_FILE)) as idx:
    rows, offsets, lengths = idx["rows"], idx["offsets"], idx["lengths"]
  with open(os.path.join(folder, META_FILE)) as f:
    meta = json.load(f)
  total = int(offsets[-1] + lengths[-1]) if len(rows) else 0
  size = os.path.getsize(os.path.join(folder, AUDIO_FILE))
  if size != 2 * total:
    raise ValueError(f"packed store {folder}: {AUDIO_FILE} has {size} bytes, the index says "
                     f"{2 * total}")
  audio = (np.memmap(os.path.join(folder, AUDIO_FILE), dtype="<i2", mode="r", shape=(total,))
           if total else np.zeros(0, np.int16))
  return PackedStore(folder, audio, rows, offsets, lengths, meta)


def _usable(folder: str) -> bool:
  """True if ``folder`` holds a complete, readable store; a damaged one is named and moved
  aside (a cache: it is rebuilt, never trusted)."""
  if not os.path.exists(os.path.join(folder, META_FILE)):
    return False
  try:
    open_store(folder)
    return True
  except (OSError, ValueError, KeyError, EOFError, zipfile.BadZipFile) as e:
    open_store.cache_clear()
    aside = f"{folder}.damaged{int(time.time())}"
    logging.warning("packed store %s is damaged (%s): moved to %s, building it again",
                    folder, e, aside)
    os.replace(folder, aside)
    return False


def _decode(manifest: Manifest, row: int, sample_rate: int) -> tuple[np.ndarray | None, str]:
  start, end = manifest.segment(row)
  try:
    x = audio_lib.load_audio(manifest.path(row), sample_rate, start, end)
  except audio_lib.BadAudio as e:
    return None, str(e)
  return audio_lib.to_int16(x), ""


@contextlib.contextmanager
def _lock(path: str):
  with open(path, "w") as f:
    fcntl.flock(f, fcntl.LOCK_EX)   # released when the file closes (also if the process dies)
    yield


def ensure(manifest: Manifest, rows: np.ndarray, sample_rate: int, root: str = "",
           workers: int = 0) -> PackedStore:
  """The store of ``rows`` of ``manifest`` at ``sample_rate``, built first if it is missing.

  ``workers`` decoding threads (0: one per CPU; soundfile and soxr release the GIL).
  """
  root = paths_lib.absolute(root or default_root())
  os.makedirs(root, exist_ok=True)
  key = fingerprint(manifest, rows, sample_rate)
  folder = os.path.join(root, key)
  with _lock(folder + ".lock"):
    if not _usable(folder):
      _build(manifest, np.sort(np.asarray(rows, np.int64)), sample_rate, folder, key,
             workers or os.cpu_count() or 1)
  return open_store(folder)


def _build(manifest: Manifest, rows: np.ndarray, sample_rate: int, folder: str, key: str,
           workers: int) -> None:
  t0 = time.time()
  tmp = f"{folder}.tmp{os.getpid()}"
  shutil.rmtree(tmp, ignore_errors=True)
  os.makedirs(tmp)
  offsets = np.zeros(len(rows), np.int64)
  lengths = np.zeros(len(rows), np.int64)
  bad: dict[str, str] = {}
  total = 0
  logging.info("packing %d rows of %s at %d Hz into %s", len(rows), manifest.name, sample_rate, folder)
  with open(os.path.join(tmp, AUDIO_FILE), "wb") as out, \
       concurrent.futures.ThreadPoolExecutor(workers) as pool:
    decode = functools.partial(_decode, manifest, sample_rate=sample_rate)
    chunk = 4 * workers   # bounded read-ahead: memory stays a few files, not the whole pool
    for lo in range(0, len(rows), chunk):
      for j, (x, reason) in enumerate(pool.map(decode, rows[lo:lo + chunk].tolist()), start=lo):
        offsets[j] = total
        if x is None:
          bad[manifest.path(int(rows[j]))] = reason
          continue
        out.write(x.astype("<i2", copy=False).tobytes())
        lengths[j] = len(x)
        total += len(x)
  np.savez(os.path.join(tmp, INDEX_FILE), rows=rows, offsets=offsets, lengths=lengths)
  meta = {"fingerprint": key, "manifest": manifest.name, "sample_rate": sample_rate,
          "rows": int(len(rows)), "samples": int(total), "seconds": round(total / sample_rate, 3),
          "bad": bad, "build_seconds": round(time.time() - t0, 2)}
  with open(os.path.join(tmp, META_FILE), "w") as f:
    json.dump(meta, f, indent=1)
  shutil.rmtree(folder, ignore_errors=True)   # a folder without meta.json is not a store
  os.replace(tmp, folder)   # the complete folder appears at once
  logging.info("packed %.1f min of audio (%d rows, %d failed) in %.1f s: %s",
               total / sample_rate / 60, len(rows), len(bad), meta["build_seconds"], folder)

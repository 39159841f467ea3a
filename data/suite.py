"""The offline real-audio suite: built from Debian packages, no network but the package mirror.

Usage::

  python -m data.suite build            # download, decode, write manifests (idempotent, resumable)
  python -m data.suite manifest digits  # path of a task's manifest (builds on first use)
  python -m data.suite info             # table: task, classes, clips, minutes, split rule, baseline

Library API: ``manifest_path(name, build=True)``, ``BENCHMARKS``, ``NAMES``, ``data_root()``.

Output, under ``data_root()`` ($SSL_AUDIO_DATA, default ~/.cache/ssl_audio)::

  <name>/manifest.csv            one per name in NAMES (paths relative to <name>/)
  <name>/<package>/*.flac        16 kHz mono int16 FLAC
  <name>/<package>/copyright     the package's copyright file, next to its audio
  suite_stats.json               classes, counts, minutes, baselines
  .done/<step>                   a step that finished (content: SUITE_VERSION)

Every file is written to a temporary name and ``os.replace``d, and every step
leaves a marker only when complete, so an interrupted build resumes where it
stopped and never uses a half-written file. See data/SUITE.md.
"""

from __future__ import annotations

import argparse
import concurrent.futures as cf
import contextlib
import dataclasses
import hashlib
import json
import multiprocessing
import os
import shutil
import subprocess
import sys
import time
import warnings
import zipfile
from pathlib import Path
from typing import Iterable, Sequence

import numpy as np
import soundfile as sf
import soxr

from data import sf2 as sf2_lib
from data import suite_sources as S
from ssl_audio import manifest as manifest_lib
from ssl_audio.audio import SAMPLE_RATE, to_mono

SUITE_VERSION = "2"
BENCHMARKS = ("digits", "language", "msn", "instrument")   # labelled downstream sources
NAMES = ("pretrain",) + BENCHMARKS
WORKERS = 2
LOCK_FILE = Path(__file__).with_name("suite.lock.json")
REPO_STATS = Path(__file__).with_name("suite_stats.json")

SPLIT_RULES = {
    "digits": "by speaker: test = 3 asterisk prompt voices + tuxpaint es/ru; valid = tuxpaint fr/en_GB/de",
    "language": "by speaker, unseen in train: asterisk es_CO/fr_Armelle/it_Menardi, klettres+tuxpaint en_GB, tuxpaint ru",
    "msn": "by source package: 7 test packages unseen in train",
    "instrument": "by soundfont: train FluidR3, test TimGM6mb; valid = held-out FluidR3 programs",
    "pretrain": "unlabelled; no file used by any task's test split",
}

PRETRAIN_HINT = (
    "To train without the suite, point the pretraining data at your own audio: "
    "--config.data.pretrain=/path/to/audio_folder (a folder searched recursively) or "
    "--config.data.pretrain=manifest:/path/to/manifest.csv")


def data_root() -> Path:
  """Where the suite lives: $SSL_AUDIO_DATA, default ~/.cache/ssl_audio."""
  return Path(os.environ.get("SSL_AUDIO_DATA") or "~/.cache/ssl_audio").expanduser()


def log(msg: str) -> None:
  print(f"[suite {time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


# ============================================================================ signal processing

def band_limit(x: np.ndarray, bandwidth: float | None, sr: int = SAMPLE_RATE) -> np.ndarray:
  """Removes energy above ``bandwidth`` Hz: resample to 2*bandwidth and back."""
  if not bandwidth or 2 * bandwidth >= sr:
    return x
  low = int(2 * bandwidth)
  y = soxr.resample(soxr.resample(x, sr, low, quality="HQ"), low, sr, quality="HQ")
  if len(y) < len(x):
    y = np.pad(y, (0, len(x) - len(y)))
  return y[:len(x)].astype(np.float32, copy=False)


def active_level(x: np.ndarray, sr: int = SAMPLE_RATE, floor_db: float = -35.0) -> float:
  """RMS over 50 ms frames within ``floor_db`` of the loudest frame (ignores silence)."""
  frame = max(1, sr // 20)
  n = len(x) // frame
  if n == 0:
    return float(np.sqrt(np.mean(np.square(x, dtype=np.float64)))) if len(x) else 0.0
  rms = np.sqrt(np.mean(np.square(x[:n * frame].reshape(n, frame), dtype=np.float64), axis=1))
  top = rms.max()
  if top <= 0:
    return 0.0
  act = rms[rms >= top * 10 ** (floor_db / 20)]
  return float(np.sqrt(np.mean(act ** 2)))


def normalise(x: np.ndarray, target_db: float = -23.0, peak: float = 0.95) -> np.ndarray:
  """Scales the active level to ``target_db`` dBFS, then down if the peak exceeds ``peak``."""
  lvl = active_level(x)
  if lvl <= 1e-7:
    return x.astype(np.float32)
  y = x * (10 ** (target_db / 20) / lvl)
  p = float(np.max(np.abs(y)))
  if p > peak:
    y *= peak / p
  return y.astype(np.float32)


def active_fraction(x: np.ndarray, sr: int = SAMPLE_RATE, thresh_db: float = -50.0) -> float:
  frame = max(1, sr // 20)
  n = len(x) // frame
  if n == 0:
    return 0.0
  rms = np.sqrt(np.mean(np.square(x[:n * frame].reshape(n, frame), dtype=np.float64), axis=1))
  return float(np.mean(rms > 10 ** (thresh_db / 20)))


def concatenate(clips: Sequence[np.ndarray], gap: float = 0.2, sr: int = SAMPLE_RATE) -> np.ndarray:
  """Joins clips with ``gap`` seconds of silence between them."""
  if not clips:
    return np.zeros(0, np.float32)
  sil = np.zeros(int(round(gap * sr)), np.float32)
  parts = []
  for i, c in enumerate(clips):
    if i:
      parts.append(sil)
    parts.append(np.asarray(c, np.float32))
  return np.concatenate(parts)


def group_by_length(lengths: Sequence[float], max_len: float) -> list[list[int]]:
  """Consecutive indices grouped so that each group sums to about ``max_len`` (never splits one)."""
  groups, cur, tot = [], [], 0.0
  for i, l in enumerate(lengths):
    if cur and tot + l > max_len:
      groups.append(cur)
      cur, tot = [], 0.0
    cur.append(i)
    tot += l
  if cur:
    groups.append(cur)
  return groups


# ============================================================================ file I/O

def tmp_name(path: Path) -> Path:
  return path.with_name(f".{path.name}.{os.getpid()}.tmp")


def write_audio(path: Path, x: np.ndarray, sr: int = SAMPLE_RATE) -> None:
  """Atomic int16 FLAC write (temporary name, then os.replace)."""
  path.parent.mkdir(parents=True, exist_ok=True)
  tmp = tmp_name(path)
  sf.write(str(tmp), np.clip(x, -1, 1), sr, format="FLAC", subtype="PCM_16")
  os.replace(tmp, path)


def write_json(path: Path, obj) -> None:
  path.parent.mkdir(parents=True, exist_ok=True)
  tmp = tmp_name(path)
  tmp.write_text(json.dumps(obj, indent=1, sort_keys=True) + "\n")
  os.replace(tmp, path)


def read_source(path: str, start: float | None = None, dur: float | None = None
                ) -> tuple[np.ndarray, int]:
  """Any source file (wav/ogg/mp3/flac or headerless .gsm) -> float32 mono, native rate."""
  if path.endswith(".gsm"):
    x, sr = sf.read(path, format="RAW", subtype="GSM610", samplerate=8000, channels=1,
                    dtype="float32", always_2d=True)
    if start is not None:
      x = x[int(start * sr):int((start + dur) * sr)]
  else:
    with sf.SoundFile(path) as f:
      sr = f.samplerate
      if start is not None:
        f.seek(min(int(start * sr), f.frames))
      x = f.read(-1 if dur is None else int(dur * sr), dtype="float32", always_2d=True)
  x = to_mono(x, channels_last=True)   # always_2d: [frames, channels]
  if not np.all(np.isfinite(x)):
    raise ValueError(f"non-finite samples in {path}")
  return x.astype(np.float32), sr


def source_duration(path: str) -> float:
  if path.endswith(".gsm"):
    return os.path.getsize(path) // 33 * 160 / 8000
  return sf.info(path).duration


def to_16k(x: np.ndarray, sr: int, bandwidth: float | None) -> np.ndarray:
  """Resample to 16 kHz through 2*bandwidth when that is lower (the band limit)."""
  if bandwidth and 2 * bandwidth < min(sr, SAMPLE_RATE) + 1:
    low = int(2 * bandwidth)
    if sr != low:
      x = soxr.resample(x, sr, low, quality="HQ")
    sr = low
  if sr != SAMPLE_RATE:
    x = soxr.resample(x, sr, SAMPLE_RATE, quality="HQ")
  return x.astype(np.float32, copy=False)


def load_clip(path: str, bandwidth: float | None) -> np.ndarray | None:
  """Decoded, 16 kHz, band-limited, loudness-normalised; None if unusable (silent/corrupt)."""
  try:
    x, sr = read_source(path)
  except Exception as e:  # corrupt file: skip and count
    log(f"skip {path}: {e}")
    return None
  if len(x) < sr // 20:
    return None
  x = to_16k(x, sr, bandwidth)
  if np.max(np.abs(x)) < 1e-4:
    return None
  return normalise(x)


# ============================================================================ jobs (run in workers)

def _row(item: dict, rel: str, dur: float, **kw) -> dict:
  r = {"path": rel, "label": item["label"], "split": item["split"], "speaker": item["speaker"],
       "source": item["source"], "language": item["language"], "duration": f"{dur:.3f}",
       "package": item["source"].split("/")[0]}
  r.update(item.get("extra_cols", {}))
  r.update(kw)
  return r


def run_item(job: dict) -> list[dict]:
  """One Item -> written files -> manifest rows. Skips work already done."""
  item, task_dir, band = job["item"], Path(job["task_dir"]), job["band"]
  kind = item["kind"]
  if kind == "clip":
    rel = item["out"] + ".flac"
    out = task_dir / rel
    if out.exists():
      return [_row(item, rel, sf.info(str(out)).duration)]
    x = load_clip(item["srcs"][0], band)
    if x is None:
      return []
    write_audio(out, x)
    return [_row(item, rel, len(x) / SAMPLE_RATE)]

  side = task_dir / (item["out"] + ".rows.json")
  if side.exists():
    return json.loads(side.read_text())
  rows: list[dict] = []
  if kind == "crops":
    rows = _crops(item, task_dir, band)
  elif kind == "stream":
    rows = _stream(item, task_dir, band)
  else:
    raise ValueError(kind)
  write_json(side, rows)
  return rows


def _spread(n: int) -> list[int]:
  """0..n-1 in an order that spreads early picks evenly over the range."""
  return sorted(range(n), key=lambda i: ((i + 0.5) * 0.6180339887) % 1.0)


def _crops(item: dict, task_dir: Path, band) -> list[dict]:
  L, k = item["crop_len"], item["max_crops"]
  rows = []
  srcs = item["srcs"]
  single_long = len(srcs) == 1 and not srcs[0].endswith(".gsm")
  if single_long:  # read just the needed segments of one long file
    total = source_duration(srcs[0])
    n = int(total // L)
    for i in _spread(n):
      if len(rows) >= k:
        break
      x, sr = read_source(srcs[0], i * L, L)
      y = to_16k(x, sr, band)[:int(L * SAMPLE_RATE)]
      if len(y) < int(L * SAMPLE_RATE) * 0.99 or active_fraction(y) < 0.5:
        continue
      rel = f"{item['out']}_{i:04d}.flac"
      write_audio(task_dir / rel, normalise(y))
      rows.append(_row(item, rel, len(y) / SAMPLE_RATE))
    return sorted(rows, key=lambda r: r["path"])
  clips = [c for c in (load_clip(s, band) for s in srcs) if c is not None]
  stream = concatenate(clips, gap=0.15)
  seg = int(L * SAMPLE_RATE)
  n = len(stream) // seg
  for i in _spread(n):
    if len(rows) >= k:
      break
    y = stream[i * seg:(i + 1) * seg]
    if active_fraction(y) < 0.5:
      continue
    rel = f"{item['out']}_{i:04d}.flac"
    write_audio(task_dir / rel, normalise(y))
    rows.append(_row(item, rel, seg / SAMPLE_RATE))
  return sorted(rows, key=lambda r: r["path"])


def _stream(item: dict, task_dir: Path, band) -> list[dict]:
  clips = [c for c in (load_clip(s, band) for s in item["srcs"]) if c is not None]
  if not clips:
    return []
  if len(clips) == 1 or not item["max_len"]:
    groups = [list(range(len(clips)))]
  else:
    groups = group_by_length([len(c) / SAMPLE_RATE for c in clips], item["max_len"])
  rows = []
  for gi, g in enumerate(groups):
    x = concatenate([clips[i] for i in g], gap=0.3)
    rel = item["out"] + (f"_{gi:03d}" if len(groups) > 1 else "") + ".flac"
    write_audio(task_dir / rel, normalise(x))
    rows.append(_row(item, rel, len(x) / SAMPLE_RATE))
  return rows


def render_family(job: dict) -> list[dict]:
  """Renders one GM family from one soundfont, note by note (data/sf2.py, numpy)."""
  task_dir, pkg, sf2 = Path(job["task_dir"]), job["pkg"], job["sf2"]
  notes = job["notes"]
  side = task_dir / pkg / f"{job['family']}.rows.json"
  if side.exists():
    return json.loads(side.read_text())
  font = sf2_lib.SoundFont(sf2)
  on, total = int(S.NOTE_ON * SAMPLE_RATE), int(S.NOTE_LEN * SAMPLE_RATE)
  rows = []
  sf_name = Path(sf2).stem
  for n in notes:
    stereo = font.render_note(n["program"], n["pitch"], n["velocity"], on, total, SAMPLE_RATE)
    x = to_mono(stereo, channels_last=True)
    if np.max(np.abs(x)) < 1e-4:
      continue  # silent preset in this soundfont
    rel = f"{pkg}/{n['family']}_p{n['program']:03d}_n{n['pitch']:03d}_v{n['velocity']:03d}.flac"
    write_audio(task_dir / rel, normalise(x))
    item = {"label": n["family"], "split": S.instrument_split(pkg, n["family"], n["program"]),
            "speaker": f"{sf_name}:{n['program']}", "source": pkg, "language": "",
            "extra_cols": {"pitch": n["pitch"], "velocity": n["velocity"], "program": n["program"]}}
    rows.append(_row(item, rel, len(x) / SAMPLE_RATE))
  write_json(side, rows)
  return rows


# ============================================================================ the builder

_LIMITS = None


def _worker_init() -> None:
  """One BLAS/OpenMP thread per worker: the pool already uses every core."""
  global _LIMITS
  try:
    from threadpoolctl import threadpool_limits
    _LIMITS = threadpool_limits(1)
  except ImportError:
    pass


@contextlib.contextmanager
def _build_lock(root: Path):
  import fcntl
  root.mkdir(parents=True, exist_ok=True)
  with open(root / ".build.lock", "w") as f:
    fcntl.flock(f, fcntl.LOCK_EX)
    try:
      yield
    finally:
      fcntl.flock(f, fcntl.LOCK_UN)


class Builder:
  """Runs the build steps under ``root``; each step is skipped when its marker exists."""

  def __init__(self, root: Path | None = None, workers: int = WORKERS, update_lock: bool = False):
    self.root = Path(root) if root else data_root()
    self.staging = self.root / "_staging"
    self.workers = workers
    self.update_lock = update_lock
    self._pool = None
    self.roots: dict[str, Path] = {}

  # -------------------------------------------------------------- markers
  def marker(self, step: str) -> Path:
    return self.root / ".done" / step

  def done(self, step: str) -> bool:
    m = self.marker(step)
    return m.exists() and m.read_text().strip() == SUITE_VERSION

  def mark(self, step: str) -> None:
    m = self.marker(step)
    m.parent.mkdir(parents=True, exist_ok=True)
    tmp = tmp_name(m)
    tmp.write_text(SUITE_VERSION + "\n")
    os.replace(tmp, m)

  def steps(self) -> list[str]:
    return list(NAMES) + ["baseline", "cleanup"]

  def complete(self) -> bool:
    return all(self.done(s) for s in self.steps())

  # -------------------------------------------------------------- pool
  def pool(self):
    if self._pool is None:
      ctx = multiprocessing.get_context("spawn")  # safe even inside a process with JAX threads
      self._pool = cf.ProcessPoolExecutor(self.workers, mp_context=ctx, initializer=_worker_init)
    return self._pool

  def map(self, fn, jobs: list, what: str) -> list:
    out = [None] * len(jobs)
    t0, last = time.time(), 0.0
    futs = {self.pool().submit(fn, j): i for i, j in enumerate(jobs)}
    for n, fut in enumerate(cf.as_completed(futs), 1):
      out[futs[fut]] = fut.result()
      if time.time() - last > 5 or n == len(jobs):
        last = time.time()
        log(f"  {what}: {n}/{len(jobs)} jobs ({time.time() - t0:.0f} s)")
    return out

  def close(self):
    if self._pool is not None:
      self._pool.shutdown()
      self._pool = None

  # -------------------------------------------------------------- packages
  def lock_data(self) -> dict:
    if LOCK_FILE.exists():
      return json.loads(LOCK_FILE.read_text())
    return {}

  def fetch(self, pkgs: Sequence[str]) -> None:
    """Downloads and unpacks packages one at a time (marker .done/pkg-*; the .deb is deleted)."""
    for p in S.PACKAGES:
      self.roots[p] = self.staging / "pkgs" / p
    need = [p for p in pkgs if not self.done("pkg-" + p)]
    if not need:
      return
    if shutil.which("apt-get") is None or shutil.which("dpkg-deb") is None:
      raise RuntimeError("apt-get / dpkg-deb not found: the suite is built from Debian packages")
    debs = self.staging / "debs"
    debs.mkdir(parents=True, exist_ok=True)
    lock = self.lock_data().get("packages", {})
    info = self._read_pkg_info()
    t0 = time.time()
    for p in need:
      if not list(debs.glob(f"{p}_*.deb")):  # resume: keep a finished download
        self._download(p, lock, debs)
      cands = sorted(debs.glob(f"{p}_*.deb"))
      if not cands:
        raise RuntimeError(f"no .deb downloaded for {p}")
      deb = cands[-1]
      ver = subprocess.run(["dpkg-deb", "-f", str(deb), "Version"], capture_output=True, text=True,
                           check=True).stdout.strip()
      sha = hashlib.sha256(deb.read_bytes()).hexdigest()
      if p in lock and (lock[p]["version"] != ver or lock[p]["sha256"] != sha):
        warnings.warn(f"{p}: found {ver} (sha256 {sha[:12]}), lock file has {lock[p]['version']} "
                      f"(sha256 {lock[p]['sha256'][:12]}); continuing")
        log(f"WARNING {p}: version {ver} differs from data/suite.lock.json ({lock[p]['version']})")
      info[p] = {"version": ver, "sha256": sha, "deb": deb.name, "size": deb.stat().st_size}
      self._extract(p, deb)
      deb.unlink()
      write_json(self.root / "packages.json", info)
      self.mark("pkg-" + p)
      self.note_disk()
    log(f"fetched and unpacked {len(need)} packages in {time.time() - t0:.1f} s")

  def _download(self, p: str, lock: dict, debs: Path) -> None:
    """apt-get download into a private folder, then os.replace: a killed download leaves no .deb."""
    part = debs / f".partial-{p}"
    shutil.rmtree(part, ignore_errors=True)
    part.mkdir(parents=True)
    spec = f"{p}={lock[p]['version']}" if p in lock else p
    r = subprocess.run(["apt-get", "download", "-q", spec], cwd=part, capture_output=True, text=True)
    if r.returncode != 0 and p in lock:
      err = r.stderr.strip().splitlines()[-1] if r.stderr.strip() else ""
      log(f"{spec}: pinned download failed ({err}); trying the current version")
      r = subprocess.run(["apt-get", "download", "-q", p], cwd=part, capture_output=True, text=True)
    got = list(part.glob(f"{p}_*.deb"))
    if r.returncode != 0 or not got:
      shutil.rmtree(part, ignore_errors=True)
      raise RuntimeError(f"apt-get download {p} failed (run `apt-get update` first?): {r.stderr.strip()}")
    os.replace(got[0], debs / got[0].name)
    shutil.rmtree(part, ignore_errors=True)

  def drop(self, keep: Iterable[str]) -> None:
    """Deletes unpacked packages that no remaining step needs (keeps peak disk use low)."""
    keep = set(keep)
    for p in S.PACKAGES:
      if p not in keep and self.done("pkg-" + p):
        self.marker("pkg-" + p).unlink()
        shutil.rmtree(self.staging / "pkgs" / p, ignore_errors=True)

  def note_disk(self) -> None:
    used = sum(f.stat().st_size for f in self.root.rglob("*") if f.is_file() and not f.is_symlink())
    self.peak_bytes = max(getattr(self, "peak_bytes", 0), used)

  def _read_pkg_info(self) -> dict:
    f = self.root / "packages.json"
    return json.loads(f.read_text()) if f.exists() else {}

  def _extract(self, pkg: str, deb: Path) -> None:
    dest = self.staging / "pkgs" / pkg
    tmp = dest.with_name(pkg + ".partial")
    dest.parent.mkdir(parents=True, exist_ok=True)
    shutil.rmtree(tmp, ignore_errors=True)
    shutil.rmtree(dest, ignore_errors=True)
    subprocess.run(["dpkg-deb", "-x", str(deb), str(tmp)], check=True)
    for d, _, fs in os.walk(tmp):
      for f in fs:
        p = Path(d) / f
        if f == "copyright" or p.suffix.lower() in S.KEEP_EXT:
          continue
        p.unlink()
    for pk3 in list(tmp.rglob("*.pk3")):  # ufoai: a zip of ogg files
      with zipfile.ZipFile(pk3) as z:
        for n in z.namelist():
          if n.startswith("sound/") and n.lower().endswith(S.AUDIO_EXT):
            z.extract(n, tmp)
      pk3.unlink()
    os.replace(tmp, dest)

  def copyright(self, pkg: str) -> Path | None:
    c = self.roots[pkg] / "usr/share/doc" / pkg / "copyright"
    return c if c.exists() else None

  # -------------------------------------------------------------- tasks
  def task_dir(self, name: str) -> Path:
    return self.root / name

  def finish_task(self, name: str, rows: list[dict], items: list[S.Item] | None = None) -> None:
    tdir = self.task_dir(name)
    rows = sorted(rows, key=lambda r: r["path"])
    for pkg in sorted({r["package"] for r in rows}):
      c = self.copyright(pkg)
      if c:
        dst = tdir / pkg / "copyright"
        tmp = tmp_name(dst)
        shutil.copyfile(c, tmp)
        os.replace(tmp, dst)
    if items is not None:  # source files per split (package:path): keeps test files out of pretraining
      write_json(tdir / "origins.json", {s: sorted({o for i in items if i.split == s for o in i.origins})
                                         for s in sorted({i.split for i in items})})
    manifest_lib.write_manifest(tdir / "manifest.csv", rows)
    for side in tdir.rglob("*.rows.json"):
      side.unlink()
    self.mark(name)
    mins = sum(float(r["duration"]) for r in rows) / 60
    log(f"{name}: {len(rows)} clips, {mins:.1f} min -> {tdir / 'manifest.csv'}")

  def build_items(self, name: str, items: list[S.Item]) -> None:
    log(f"building {name}: {len(items)} items")
    jobs = [{"item": dataclasses.asdict(i), "task_dir": str(self.task_dir(name)),
             "band": S.BANDWIDTH[name]} for i in items]
    rows = [r for rs in self.map(run_item, jobs, name) for r in rs]
    self.finish_task(name, rows, items)

  def build_instrument(self) -> None:
    name = "instrument"
    notes = S.instrument_notes()
    jobs = []
    for pkg, (rel, _) in S.SOUNDFONTS.items():
      for fam in S.GM_FAMILIES:
        jobs.append({"task_dir": str(self.task_dir(name)), "pkg": pkg,
                     "sf2": str(self.roots[pkg] / rel), "family": fam,
                     "notes": [n for n in notes if n["family"] == fam]})
    log(f"rendering {len(notes)} notes x {len(S.SOUNDFONTS)} soundfonts")
    rows = [r for rs in self.map(render_family, jobs, name) for r in rs]
    self.finish_task(name, rows)

  def build_pretrain(self) -> None:
    excluded: set[str] = set()
    for t in BENCHMARKS:
      f = self.task_dir(t) / "origins.json"
      if f.exists():
        excluded |= set(json.loads(f.read_text()).get("test", []))
    items = S.pretrain_items(self.roots, excluded)
    items = self._cap_pretrain(items)
    for i in items:
      i.split = "train"
    self.build_items("pretrain", items)

  def _cap_pretrain(self, items: list[S.Item]) -> list[S.Item]:
    """Caps music and speech minutes (deterministic choice of files)."""
    out = []
    music = [i for i in items if i.label == "music"]
    budget = S.PRETRAIN_MUSIC_MIN * 60
    for i in S.stable_sample(music, len(music), key=lambda i: i.out):
      d = source_duration(i.srcs[0])
      if budget - d < -60:
        continue
      budget -= d
      out.append(i)
    out += [i for i in items if i.label == "ambience"]
    speech = [i for i in items if i.label == "speech"]
    per_lang = S.PRETRAIN_SPEECH_MIN * 60 / max(1, len(speech))
    # spread the budget over languages; a language with less leaves the rest to others
    durs = {i.out: [source_duration(s) for s in i.srcs] for i in speech}
    totals = sorted(speech, key=lambda i: sum(durs[i.out]))
    left = S.PRETRAIN_SPEECH_MIN * 60
    for n, i in enumerate(totals):
      share = left / (len(totals) - n)
      keep, acc = [], 0.0
      for s, o, d in zip(i.srcs, i.origins, durs[i.out]):
        if acc + d > share:
          break
        keep.append((s, o))
        acc += d
      left -= acc
      i.srcs, i.origins = [k[0] for k in keep], [k[1] for k in keep]
      if i.srcs:
        out.append(i)
    del per_lang
    return out

  # -------------------------------------------------------------- main
  def build(self) -> dict:
    with _build_lock(self.root):
      if self.complete():
        log(f"suite complete under {self.root}: nothing to do")
        return self.write_stats() if self.update_lock else self.stats()
      t0 = time.time()
      try:
        steps = [("instrument", self.build_instrument),
                 ("digits", lambda: self.build_items("digits", S.digits_items(self.roots))),
                 ("language", lambda: self.build_items("language", S.language_items(self.roots))),
                 ("msn", lambda: self.build_items("msn", S.msn_items(self.roots))),
                 ("pretrain", self.build_pretrain)]
        todo = [(n, f) for n, f in steps if not self.done(n)]
        for k, (name, fn) in enumerate(todo):
          self.drop(p for n, _ in todo[k:] for p in S.STEP_PACKAGES[n])
          self.fetch(S.STEP_PACKAGES[name])
          fn()
          self.note_disk()
        self.drop(())
        built = [t for t in BENCHMARKS if self.done(t)]
        if not self.done("baseline") and built:
          from data import baseline
          log("baselines (MFCC mean+std -> logistic regression)")
          t1 = time.time()
          res = baseline.run_all(self.root, built, pool=self.pool())
          write_json(self.root / "baselines.json", res)
          if len(built) == len(BENCHMARKS):
            self.mark("baseline")
          log(f"baselines in {time.time() - t1:.0f} s: " + ", ".join(
              f"{t} {r['test_accuracy']:.3f}" for t, r in res.items()))
      finally:
        self.close()
      if not self.done("cleanup") and all(self.done(n) for n in NAMES):
        shutil.rmtree(self.staging, ignore_errors=True)
        for p in S.PACKAGES:
          self.marker("pkg-" + p).unlink(missing_ok=True)
        self.mark("cleanup")
      secs = time.time() - t0
      stats = self.write_stats(build_seconds=secs, peak_mb=getattr(self, "peak_bytes", 0) / 2 ** 20)
      log(f"suite built in {secs:.0f} s, {stats['disk_mb']:.0f} MB under {self.root} "
          f"(peak {stats['peak_disk_mb'] or 0:.0f} MB during the build)")
      return stats

  # -------------------------------------------------------------- stats
  def write_stats(self, build_seconds: float | None = None, peak_mb: float | None = None) -> dict:
    st: dict = {"version": SUITE_VERSION, "tasks": {}}
    old = self.stats()
    base = json.loads((self.root / "baselines.json").read_text()) \
        if (self.root / "baselines.json").exists() else {}
    for name in NAMES:
      if not self.done(name):   # e.g. a build that stopped part-way
        continue
      m = manifest_lib.read_manifest(self.task_dir(name) / "manifest.csv")
      split = m.column("split")
      lab = m.column("label")
      counts = {s: {} for s in sorted(set(split))}
      for s, l in zip(split, lab):
        counts[s][l] = counts[s].get(l, 0) + 1
      dur = np.array([float(d) for d in m.column("duration")])
      st["tasks"][name] = {
          "classes": len(m.labels()) if name != "pretrain" else 0,
          "clips": len(m), "minutes": round(float(dur.sum()) / 60, 1),
          "split_rule": SPLIT_RULES[name], "counts": counts,
          "speakers": {s: len(set(m.column("speaker")[split == s])) for s in counts},
          "sources": {s: sorted(set(m.column("source")[split == s])) for s in counts},
          "baseline": base.get(name)}
    disk = sum(f.stat().st_size for f in self.root.rglob("*") if f.is_file())
    st["disk_mb"] = round(disk / 2 ** 20, 1)
    st["build_seconds"] = round(build_seconds, 1) if build_seconds is not None else old.get("build_seconds")
    st["peak_disk_mb"] = round(peak_mb, 1) if peak_mb else old.get("peak_disk_mb")
    st["packages"] = self._read_pkg_info() or old.get("packages", {})
    write_json(self.root / "suite_stats.json", st)
    if self.update_lock:
      write_json(REPO_STATS, st)
      write_json(LOCK_FILE, {"comment": "Debian 12 packages used by data/suite.py (version, sha256 of .deb)",
                             "packages": {p: {"version": v["version"], "sha256": v["sha256"]}
                                          for p, v in sorted(st["packages"].items())}})
    return st

  def stats(self) -> dict:
    f = self.root / "suite_stats.json"
    return json.loads(f.read_text()) if f.exists() else {}


# ============================================================================ API

def build(root: Path | None = None, update_lock: bool = False) -> dict:
  return Builder(root, update_lock=update_lock).build()


def manifest_path(name: str, build: bool = True) -> Path:
  """Path of the manifest of ``name`` (one of NAMES); builds the suite first if needed."""
  if name not in NAMES:
    raise ValueError(f"unknown suite name {name!r}; choose from {NAMES}")
  root = data_root()
  path = root / name / "manifest.csv"
  if build and not Builder(root).done(name):
    try:
      Builder(root).build()
    except Exception as e:
      raise RuntimeError(f"cannot build the offline audio suite under {root} ({type(e).__name__}: {e}). "
                         f"It needs apt-get (after `apt-get update`) and dpkg-deb. {PRETRAIN_HINT}") from e
    if not Builder(root).done(name):
      raise RuntimeError(f"suite:{name} was not built under {root}: see the log of "
                         "`python -m data.suite build`")
  return path


# Views of the pretraining pool by kind of audio (rows of suite:pretrain with that label),
# for the paper's RQ3: the same method pretrained on speech only vs the diverse pool.
POOL_VIEWS = {"pretrain_speech": "speech", "pretrain_music": "music"}


def resolve_name(name: str) -> manifest_lib.Manifest:
  """The manifest of suite:NAME, built on first use (``manifest.resolve`` calls this)."""
  if name in POOL_VIEWS:
    m = manifest_lib.read_manifest(manifest_path("pretrain", build=True))
    view = m.where(label=POOL_VIEWS[name])
    return dataclasses.replace(view, name=f"suite:{name}")
  return manifest_lib.read_manifest(manifest_path(name, build=True))


manifest_lib.register_scheme("suite", resolve_name, f"suite:NAME, NAME in "
                             f"{', '.join(NAMES + tuple(POOL_VIEWS))} (the offline suite, built on "
                             "first use)")


def info_table(root: Path | None = None) -> str:
  st = Builder(root).stats()
  if not st:
    return f"suite not built under {root or data_root()}: run `python -m data.suite build`"
  lines = [f"{'task':<11} {'classes':>7} {'clips':>6} {'minutes':>8} {'chance':>7} {'baseline':>9} "
           f"{'+segments':>9}  split rule"]
  for name, t in st["tasks"].items():
    b = t.get("baseline") or {}
    acc = f"{b['test_accuracy']:.3f}" if b.get("test_accuracy") is not None else "-"
    seg = f"{b['segments']['test_accuracy']:.3f}" if b.get("segments") else "-"
    ch = f"{b['chance']:.3f}" if b.get("chance") is not None else "-"
    lines.append(f"{name:<11} {t['classes'] or '-':>7} {t['clips']:>6} {t['minutes']:>8.1f} "
                 f"{ch:>7} {acc:>9} {seg:>9}  {t['split_rule']}")
  lines.append("baseline: MFCC20 mean+std -> logistic regression, test accuracy; "
               "+segments: the same plus 4 segment means")
  lines.append(f"disk {st.get('disk_mb')} MB, last build {st.get('build_seconds')} s, root {root or data_root()}")
  return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
  ap = argparse.ArgumentParser(prog="python -m data.suite", description=__doc__.split("\n")[0])
  sub = ap.add_subparsers(dest="cmd", required=True)
  b = sub.add_parser("build", help="build the suite (idempotent, resumable)")
  b.add_argument("--update-lock", action="store_true",
                 help="rewrite data/suite.lock.json and data/suite_stats.json from this build")
  m = sub.add_parser("manifest", help="print the manifest path of a name (builds if needed)")
  m.add_argument("name", choices=NAMES)
  m.add_argument("--no-build", action="store_true")
  sub.add_parser("info", help="table of tasks")
  h = sub.add_parser("export-hear", help="a task in the HEAR 2021 task format (data/hear_export.py)")
  h.add_argument("name", choices=BENCHMARKS)
  h.add_argument("out", help="tasks folder; the task goes to OUT/ssl_audio_NAME")
  h.add_argument("--max-clips", type=int, default=None, help="at most this many clips per split")
  h.add_argument("--duration", type=float, default=None,
                 help="seconds every clip is padded or cut to (default: the longest clip)")
  a = ap.parse_args(argv)
  if a.cmd == "build":
    Builder(update_lock=a.update_lock).build()
    print(info_table())
  elif a.cmd == "manifest":
    print(manifest_path(a.name, build=not a.no_build))
  elif a.cmd == "info":
    print(info_table())
  elif a.cmd == "export-hear":
    from data import hear_export
    m = dataclasses.replace(manifest_lib.read_manifest(manifest_path(a.name)), name=f"suite:{a.name}")
    task = hear_export.export(m, a.out, f"ssl_audio_{a.name}", a.max_clips, a.duration)
    meta = json.loads((task / "task_metadata.json").read_text())
    print(f"{task}: {meta['clips']} clips of {meta['sample_duration']} s, "
          f"{len((task / 'labelvocabulary.csv').read_text().splitlines()) - 1} classes")
  return 0


if __name__ == "__main__":
  sys.exit(main())

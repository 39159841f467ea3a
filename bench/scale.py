r"""Manifest scale: write, load and draw the first batch from a manifest of 1,000,000 rows.

Command:
  python bench/scale.py [--quick] [--rows N]

Each stage runs in its own subprocess, so its peak memory is that process's
``resource.getrusage(RUSAGE_SELF).ru_maxrss`` (and the baseline of a bare
interpreter that imported the same modules is reported next to it):

* write: ``ssl_audio.manifest.write_manifest`` of N rows (path, label, split,
  speaker, duration), every path distinct (``make_tree``: a folder that links to
  itself, so a million distinct relative paths open a handful of real files);
* load: ``ssl_audio.manifest.read_manifest`` (parse + check columns);
* first batch: ``read_manifest`` + ``input_pipeline.make_train_iterator`` over it
  (0 workers, batch 64, temporal_gap) + ``next()``.

The audio files are the offline suite's when it is built, otherwise 8 synthetic
12-s 16 kHz WAV files. --quick: 100,000 rows.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from common import REPO, emit, log

HERE = Path(__file__).resolve().parent


def _maxrss_mib() -> float:
  import resource
  return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024   # Linux: KiB


def make_tree(folder: Path, files: list[str]) -> None:
  """``tree/`` holds the audio files (as links) and two links ``0`` and ``1`` to itself, so
  ``tree/1/0/.../clipK.wav`` names one of a few real files by a distinct path per row:
  a million distinct path strings of realistic length (about 60 characters) that open."""
  tree = folder / "tree"
  tree.mkdir(exist_ok=True)
  for b in "01":
    if not (tree / b).is_symlink():
      (tree / b).symlink_to(".")
  for k, f in enumerate(files):
    if not (tree / f"clip{k}.wav").is_symlink():
      (tree / f"clip{k}.wav").symlink_to(f)


def unique_path(i: int, bits: int, n_files: int) -> str:
  return "tree/" + "/".join(format(i, f"0{bits}b")) + f"/clip{i % n_files}.wav"


def stage(name: str, folder: str, rows: int, files: list[str]) -> None:
  """Runs in a subprocess; prints one JSON line."""
  sys.path.insert(0, str(REPO))
  from ssl_audio import manifest as manifest_lib
  out = {"stage": name}
  base = _maxrss_mib()
  path = Path(folder) / "big.csv"
  t = time.perf_counter()
  if name == "write":
    labels = [f"class{k}" for k in range(10)]
    splits = ("train", "train", "train", "valid", "test")
    bits = max(1, (rows - 1).bit_length())
    gen = ({"path": unique_path(i, bits, len(files)), "label": labels[i % 10],
            "split": splits[i % 5], "speaker": f"spk{i % 1000}", "duration": 12.0}
           for i in range(rows))
    manifest_lib.write_manifest(path, gen,
                                columns=["path", "label", "split", "speaker", "duration"])
    out["file_mib"] = path.stat().st_size / 2**20
  elif name == "load":
    m = manifest_lib.read_manifest(path)
    out["rows"] = len(m)
  elif name == "first_batch":
    sys.path.insert(0, str(HERE))
    import train_step as ts
    from ssl_audio import input_pipeline, state as state_lib
    ts.import_all_tasks()
    task = state_lib.build_task(ts.task_config("temporal_gap", 1.0, 64))
    base = _maxrss_mib()    # after the JAX / task imports
    t = time.perf_counter()
    m = manifest_lib.read_manifest(path)
    out["load_s"] = time.perf_counter() - t
    t2 = time.perf_counter()
    it = input_pipeline.make_train_iterator(m, task, 64, seed=0, num_workers=0,
                                            sample_rate=task.frontend.sample_rate)
    out["make_iterator_s"] = time.perf_counter() - t2
    t3 = time.perf_counter()
    batch = next(it)
    out["next_s"] = time.perf_counter() - t3
    out["batch_shape"] = list(batch["audio"].shape)
  out["seconds"] = time.perf_counter() - t
  out["baseline_maxrss_mib"] = base
  out["peak_maxrss_mib"] = _maxrss_mib()
  print(json.dumps(out))


def audio_files(folder: Path) -> tuple[list[str], str]:
  try:
    sys.path.insert(0, str(REPO))
    from data import suite
    p = suite.manifest_path("pretrain", build=False)
    if p.is_file():
      from ssl_audio import manifest as manifest_lib
      import soundfile as sf
      m = manifest_lib.read_manifest(p)
      files = []
      for i in range(len(m)):          # the first 8 files that decode (the suite may be mid-build)
        try:
          if sf.info(m.path(i)).frames > 16000 * 2:
            files.append(m.path(i))
        except Exception:  # noqa: BLE001
          continue
        if len(files) == 8:
          break
      if files:
        return files, f"suite:pretrain ({len(files)} of its files)"
  except Exception as e:  # noqa: BLE001
    log(f"scale: no suite ({type(e).__name__}: {e})")
  import soundfile as sf
  rng = np.random.default_rng(0)
  files = []
  for i in range(8):
    p = folder / f"clip{i}.wav"
    sf.write(p, (0.1 * rng.standard_normal(12 * 16000)).astype(np.float32), 16000)
    files.append(str(p))
  return files, "8 synthetic 12-s 16 kHz WAV files"


def main(argv=None):
  ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
  ap.add_argument("--quick", action="store_true", help="100,000 rows")
  ap.add_argument("--rows", type=int, default=1_000_000)
  ap.add_argument("--_stage", default="", help=argparse.SUPPRESS)
  ap.add_argument("--_folder", default="", help=argparse.SUPPRESS)
  ap.add_argument("--_files", default="", help=argparse.SUPPRESS)
  args = ap.parse_args(argv)
  if args._stage:
    stage(args._stage, args._folder, args.rows, json.loads(args._files))
    return
  if args.quick:
    args.rows = 100_000
  with tempfile.TemporaryDirectory(prefix="bench_scale_") as d:
    files, source = audio_files(Path(d))
    make_tree(Path(d), files)
    results = {}
    for name in ("write", "load", "first_batch"):
      cmd = [sys.executable, str(Path(__file__).resolve()), "--rows", str(args.rows),
             "--_stage", name, "--_folder", d, "--_files", json.dumps(files)]
      t = time.perf_counter()
      p = subprocess.run(cmd, capture_output=True, text=True, cwd=str(REPO))
      if p.returncode != 0:
        raise RuntimeError(f"scale stage {name} failed:\n{p.stderr[-3000:]}")
      r = json.loads(p.stdout.strip().splitlines()[-1])
      r["process_wall_s"] = time.perf_counter() - t
      log(f"scale: {r}")
      results[name] = r
  figs = {"rows": args.rows, "audio": source, **results,
          "write_rows_per_s": args.rows / results["write"]["seconds"],
          "load_rows_per_s": args.rows / results["load"]["seconds"],
          "load_mib_per_1m_rows": (results["load"]["peak_maxrss_mib"]
                                   - results["load"]["baseline_maxrss_mib"]) * 1e6 / args.rows}
  emit("scale", figs, argv)


if __name__ == "__main__":
  main()

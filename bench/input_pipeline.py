r"""Input-pipeline throughput (Grain: decode + resample + crop + task.sample) vs the train step.

Command:
  python bench/input_pipeline.py [--quick] [--task temporal_gap] [--batch 64] [--packed both]

Data: the offline suite's pretrain manifest when it is built (``data.suite.
manifest_path("pretrain", build=False)``; this script never starts a build),
otherwise synthetic 44.1 kHz stereo WAV files written to a temporary folder, so
decoding, down-mixing and resampling to 16 kHz are all exercised.

For 0, 1 and 2 workers: ``ssl_audio.input_pipeline.make_train_iterator`` with the
task of configs/default.py + the task's keys, the first batch (worker start-up)
timed apart, then examples/s over the next batches. Against it: the rate the
real JAX train step consumes (width 1, same batch size, fixed in-memory batch,
best of a few steps), measured in the same run. The default config
(data.num_workers = 2) is input-bound when its pipeline rate is below that.
``--packed both`` (default) times each worker count twice: decoding each window, and
copying it from the packed int16 store (``data.packed``, built once before the timing).
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path

import numpy as np

from common import emit, log

import soundfile as sf


def synthetic_manifest(folder: Path, n_files: int, seconds: float, sr: int = 44100) -> Path:
  from ssl_audio import manifest as manifest_lib
  rng = np.random.default_rng(0)
  t = np.arange(int(seconds * sr)) / sr
  rows = []
  for i in range(n_files):
    f0 = rng.uniform(100, 2000)
    x = 0.3 * np.sin(2 * np.pi * f0 * t * (1 + 0.1 * np.sin(2 * np.pi * 0.3 * t)))
    x = np.stack([x, 0.5 * x], axis=1) + 0.01 * rng.standard_normal((len(t), 2))
    path = folder / f"syn{i:03d}.wav"
    sf.write(path, x.astype(np.float32), sr, subtype="PCM_16")
    rows.append({"path": path.name, "duration": seconds})
  return manifest_lib.write_manifest(folder / "manifest.csv", rows)


def suite_manifest() -> Path | None:
  try:
    from data import suite
    p = suite.manifest_path("pretrain", build=False)
    return p if p.is_file() else None
  except Exception as e:  # noqa: BLE001 (suite code being edited, or not built)
    log(f"input_pipeline: no suite manifest ({type(e).__name__}: {e})")
    return None


def pipeline_rate(manifest, task, batch: int, workers: int, n_batches: int,
                  packed_root: str | None = None) -> dict:
  from ssl_audio import input_pipeline
  t0 = time.perf_counter()
  it = input_pipeline.make_train_iterator(manifest, task, batch, seed=0, num_workers=workers,
                                          sample_rate=task.frontend.sample_rate,
                                          packed_root=packed_root)
  next(it)
  first = time.perf_counter() - t0
  t = time.perf_counter()
  for _ in range(n_batches):
    next(it)
  dt = time.perf_counter() - t
  out = {"workers": workers, "packed": packed_root is not None, "first_batch_s": first,
         "examples_per_s": n_batches * batch / dt, "skipped": it.skipped}
  del it
  return out


def main(argv=None):
  ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
  ap.add_argument("--quick", action="store_true", help="fewer batches, skip torch")
  ap.add_argument("--task", default="temporal_gap")
  ap.add_argument("--batch", type=int, default=64)
  ap.add_argument("--batches", type=int, default=8, help="timed batches per worker count")
  ap.add_argument("--workers", default="0,1,2")
  ap.add_argument("--packed", default="both", choices=["off", "on", "both"],
                  help="decode each window, copy it from the packed int16 store, or both")
  args = ap.parse_args(argv)
  if args.quick:
    args.batches = 2

  import train_step as ts
  from ssl_audio import manifest as manifest_lib
  from ssl_audio import state as state_lib

  ts.import_all_tasks()
  cfg = ts.task_config(args.task, 1.0, args.batch)
  task = state_lib.build_task(cfg)
  tmp = None
  path = suite_manifest()
  source = "suite:pretrain"
  if path is None:
    tmp = tempfile.TemporaryDirectory(prefix="bench_input_")
    n_files = 16 if args.quick else 64
    path = synthetic_manifest(Path(tmp.name), n_files, seconds=30.0)
    source = f"synthetic: {n_files} files x 30 s, 44.1 kHz stereo WAV PCM_16"
  manifest = manifest_lib.read_manifest(path)
  log(f"input_pipeline: {source} ({len(manifest)} rows), task {args.task}, batch {args.batch}")

  rates = []
  if args.packed != "off":   # build the store first (cached): its one-off cost is not a rate
    from ssl_audio import packed
    t = time.perf_counter()
    store = packed.ensure(manifest, np.arange(len(manifest)), task.frontend.sample_rate)
    log(f"input_pipeline: packed store ready in {time.perf_counter() - t:.1f} s "
        f"(built in {store.meta['build_seconds']} s when it was made)")
  for w in [int(x) for x in args.workers.split(",")]:
    for mode in (["off", "on"] if args.packed == "both" else [args.packed]):
      r = pipeline_rate(manifest, task, args.batch, w, args.batches, "" if mode == "on" else None)
      log(f"input_pipeline: {r}")
      rates.append(r)

  # What the train step consumes (the real JAX step, width 1, no torch).
  j = ts.JaxStep(args.task, 1.0, args.batch)
  j.run(1)
  best = float("inf")
  for _ in range(2 if args.quick else 3):
    t = time.perf_counter()
    j.run(1)
    best = min(best, time.perf_counter() - t)
  step_rate = args.batch / best
  default_workers = int(cfg.data.num_workers)
  default = next((r for r in rates if r["workers"] == default_workers and not r["packed"]),
                 rates[-1])
  figs = {"source": source, "rows": len(manifest), "task": args.task, "batch": args.batch,
          "timed_batches": args.batches, "pipeline": rates,
          "train_step_examples_per_s_width1": step_rate,
          "default_num_workers": default_workers,
          "pipeline_over_step": default["examples_per_s"] / step_rate,
          "input_bound": bool(default["examples_per_s"] < step_rate),
          "cpu_count": os.cpu_count()}
  if tmp is not None:
    tmp.cleanup()
  emit("input_pipeline", figs, argv)


if __name__ == "__main__":
  main()

r"""Evaluation cost: seconds to embed a task's clips and to fit the linear probe, per suite task.

Command:
  python bench/evaluation.py [--quick] [--max-clips N] [--probe-steps N]

Uses the eval code's API as ``python -m eval.linear_eval`` does:
``eval.embeddings.embed_benchmark(pre, task, cache_dir=None)`` (decode, cut into
96-frame slices, jitted frozen encoder; no cache, so every run embeds) and
``eval.probe.linear_probe(e, seeds, steps)`` (the lr x weight-decay grid, all
seeds at once). The encoder is the Untrained baseline
(``ssl_audio.pretrained.random_init``) of configs/temporal_gap.py at width 1:
the cost does not depend on the weights.

Tasks: the offline suite's labelled tasks whose manifest is already on disk
(read as ``manifest:PATH``; this script never starts a suite build), otherwise a
synthetic folder-per-class task (4 classes x 16 clips of 3 s). --quick: the
first task only, at most 64 clips, 1 seed, 200 probe steps.
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

import numpy as np

from common import emit, log


def suite_tasks() -> list[tuple[str, str]]:
  try:
    from data import suite
    out = []
    for t in suite.BENCHMARKS:
      p = suite.manifest_path(t, build=False)
      if p.is_file():
        out.append((t, f"manifest:{p}"))
    return out
  except Exception as e:  # noqa: BLE001
    log(f"evaluation: no suite ({type(e).__name__}: {e})")
    return []


def synthetic_task(folder: Path) -> tuple[str, str]:
  import soundfile as sf
  rng = np.random.default_rng(0)
  t = np.arange(3 * 16000) / 16000
  for k, f0 in enumerate((220.0, 440.0, 880.0, 1760.0)):
    (folder / f"c{k}").mkdir(parents=True)
    for i in range(16):
      x = 0.3 * np.sin(2 * np.pi * f0 * (1 + 0.02 * i) * t) + 0.02 * rng.standard_normal(len(t))
      sf.write(folder / f"c{k}" / f"{i}.wav", x.astype(np.float32), 16000)
  return "synthetic", f"folder:{folder}"


def untrained(width: float):
  import train_step as ts
  from ssl_audio import pretrained
  from ssl_audio import frontend as fe
  cfg = ts.task_config("temporal_gap", width, 64)
  meta = {"config": json.loads(cfg.to_json_best_effort()),
          "frontend": fe.FrontendConfig.from_dict(cfg.frontend).to_dict(), "classes": []}
  return pretrained.random_init(meta, seed=0)


def main(argv=None):
  ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
  ap.add_argument("--quick", action="store_true")
  ap.add_argument("--max-clips", type=int, default=0, help="0: every clip")
  ap.add_argument("--probe-steps", type=int, default=1000)
  ap.add_argument("--seeds", type=int, default=3)
  ap.add_argument("--width", type=float, default=1.0)
  args = ap.parse_args(argv)
  if args.quick:
    args.max_clips, args.probe_steps, args.seeds = args.max_clips or 64, 200, 1

  from eval import embeddings as E
  from eval import probe

  tasks = suite_tasks()
  tmp = None
  if not tasks:
    tmp = tempfile.TemporaryDirectory(prefix="bench_eval_")
    tasks = [synthetic_task(Path(tmp.name))]
  if args.quick:
    tasks = tasks[:1]
  t = time.perf_counter()
  pre = untrained(args.width)
  setup_s = time.perf_counter() - t
  rows = []
  for name, spec in tasks:
    t0 = time.perf_counter()
    e = E.embed_benchmark(pre, spec, cache_dir=None, max_clips=args.max_clips or None)
    t1 = time.perf_counter()
    lp = probe.linear_probe(e, seeds=tuple(range(args.seeds)), steps=args.probe_steps)
    t2 = time.perf_counter()
    r = {"task": name, "clips": int(e.n_clips), "slices": int(len(e.emb)),
         "skipped": int(e.skipped), "embed_s": t1 - t0, "probe_s": t2 - t1,
         "slices_per_s": len(e.emb) / (t1 - t0), "accuracy": lp["accuracy"].get("mean"),
         "chance": lp["chance"]["accuracy"]}
    log(f"evaluation: {r}")
    rows.append(r)
  if tmp is not None:
    tmp.cleanup()
  figs = {"encoder": f"untrained, width {args.width}", "setup_s": setup_s,
          "max_clips": args.max_clips or None, "probe_steps": args.probe_steps,
          "seeds": args.seeds, "results": rows,
          "total_s": sum(r["embed_s"] + r["probe_s"] for r in rows)}
  emit("evaluation", figs, argv)


if __name__ == "__main__":
  main()

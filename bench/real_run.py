r"""The real run vs the isolated step: examples/s of ``train_and_evaluate`` at a method's config.

Command:
  python bench/real_run.py [--quick] [--tasks temporal_gap,audio2vec_cbow] [--steps 60] [--packed both]

For each task: ``ssl_audio.train.train_and_evaluate`` with ``configs/<task>.py`` as
``python main.py --config=configs/<task>.py`` runs it (the suite's pretraining pool, the
config's decoding workers, logging, the final checkpoint), ``--steps`` steps in a
temporary workdir, logging every ``--log_every`` steps. The first logged interval
(compilation, worker start-up) is left out; the figure is the median examples/s of the
others, with the trainer's ``input_wait_frac`` (host time blocked in ``next()`` on the
input pipeline, as a fraction of the interval). Against it, in the same run: the
isolated JAX step of bench/train_step.py (same task, width and batch, a fixed
in-memory batch, best of ``--repeats`` rounds). ``real / isolated`` below 1 is what
the input pipeline, logging and checkpoints cost the run. ``--packed both`` (the
default) runs each task twice: decoding every window from the files, and copying it
out of the packed int16 store (``data.packed``; the store is built once, before the
timed run, and cached).

Needs the built suite (``python -m data.suite build``); this script never starts a build.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import tempfile

from common import emit, log

import train_step as ts


def real_rate(name: str, batch: int, steps: int, log_every: int, workers: int | None,
              packed: bool = False) -> dict:
  from ssl_audio import train
  c = ts.task_config(name, 1.0, batch)
  c.num_train_steps = steps
  c.log_every_steps = log_every
  c.data.packed = packed
  if workers is not None:
    c.data.num_workers = workers
  if packed:   # build (or find) the store first: its one-off cost is not the run's rate
    import numpy as np
    from ssl_audio import manifest, packed as packed_lib
    m = manifest.resolve(c.data.pretrain)
    packed_lib.ensure(m, np.arange(len(m)), 16000, c.data.packed_dir)
  with tempfile.TemporaryDirectory(prefix="bench_real_") as wd:
    train.train_and_evaluate(c, wd)
    rows = [json.loads(line) for line in open(os.path.join(wd, "metrics.jsonl"))]
  rows = [r for r in rows if "examples_per_s" in r][1:]   # the first holds compilation
  if not rows:
    raise RuntimeError(f"{name}: no logged interval after the first; raise --steps")
  return {"real_examples_per_s": statistics.median(r["examples_per_s"] for r in rows),
          "input_wait_frac": statistics.mean(r["input_wait_frac"] for r in rows),
          "num_workers": c.data.num_workers, "intervals": len(rows)}


def main(argv=None):
  ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
  ap.add_argument("--quick", action="store_true", help="one task, fewer steps")
  ap.add_argument("--tasks", default="temporal_gap,audio2vec_skipgram,audio2vec_cbow,triplet,cola")
  ap.add_argument("--batch", type=int, default=64)
  ap.add_argument("--steps", type=int, default=60)
  ap.add_argument("--log_every", type=int, default=10)
  ap.add_argument("--repeats", type=int, default=3, help="rounds of the isolated step")
  ap.add_argument("--workers", type=int, default=None, help="override data.num_workers")
  ap.add_argument("--packed", default="both", choices=["off", "on", "both"],
                  help="decode windows from the files, copy them from the packed store, or both")
  args = ap.parse_args(argv)
  if args.quick:
    args.tasks, args.steps, args.repeats = "temporal_gap", 30, 2

  from data import suite
  if not suite.manifest_path("pretrain", build=False).is_file():
    raise SystemExit("real_run: the suite is not built (python -m data.suite build)")
  ts.import_all_tasks()
  peak = ts.matmul_peak()
  rows = []
  for name in [t for t in args.tasks.split(",") if t]:
    r = {"task": name}
    for mode in (["off", "on"] if args.packed == "both" else [args.packed]):
      rate = real_rate(name, args.batch, args.steps, args.log_every, args.workers, mode == "on")
      suffix = "_packed" if mode == "on" else ""
      r.update({k + suffix: v for k, v in rate.items()})
    iso = ts.bench_one(name, 1.0, args.batch, steps=2, repeats=args.repeats, torch_ok=False)
    r["isolated_examples_per_s"] = iso["jax_examples_per_s"]
    for suffix in ("", "_packed"):
      if "real_examples_per_s" + suffix in r:
        r["real_vs_isolated" + suffix] = r["real_examples_per_s" + suffix] / iso["jax_examples_per_s"]
    log("real_run: " + " ".join(f"{k}={v:.4g}" if isinstance(v, float) else f"{k}={v}"
                                for k, v in r.items()))
    rows.append(r)
  emit("real_run", {"batch": args.batch, "steps": args.steps, "matmul_peak_gflops": peak,
                    "load_avg_end": os.getloadavg()[0], "results": rows})


if __name__ == "__main__":
  main()

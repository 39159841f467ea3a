r"""Where one train step's time goes on XLA:CPU: a profile of the real step, by kernel.

Command:
  python bench/step_profile.py [--quick] [--task temporal_gap] [--width 1] [--batch 64] [--steps 3]

Builds the real step of bench/train_step.py (``make_train_step``, fixed in-memory
batch), runs ``--steps`` steps under ``jax.profiler.trace`` (Perfetto trace) and sums
the duration of every XLA:CPU kernel (thunk) it ran. Kernels are grouped by kind
(the fusion's name without its number: ``ynn_fusion`` = convolutions, dots and
reductions handed to YNNPACK; ``transpose_copy_fusion`` = layout copies, mostly of
activations into the batch-last layout the filter-gradient convolutions use; the
rest are XLA's own elementwise loops: BatchNorm, ReLU, max-pool and their
gradients, Adam). Times are summed over the threads of XLA's pool, so they add to
more than the wall time of a step on 2 cores. The top kernels come with their
HLO shape, so a slow one can be found in ``compiled.as_text()``.
"""

from __future__ import annotations

import argparse
import collections
import glob
import gzip
import json
import re
import tempfile
import time

from common import emit, log

import jax

import train_step as ts

_SKIP = re.compile(r"^\$|Execute|Pjit|^end: |ParseArguments|Handle input|CreateOutputs|"
                   r"AllocateOutputBuffers|Await")


def kernel_times(trace_dir: str) -> collections.Counter:
  """Microseconds per kernel name, summed over the trace's threads."""
  path = glob.glob(f"{trace_dir}/**/*.trace.json.gz", recursive=True)[0]
  with gzip.open(path) as f:
    events = json.load(f)["traceEvents"]
  total = collections.Counter()
  for e in events:
    if e.get("ph") == "X" and "dur" in e and not _SKIP.search(e.get("name", "")):
      total[e["name"]] += e["dur"]
  return total


def hlo_shapes(hlo_text: str) -> dict:
  """Instruction name -> result shape, from the optimized HLO."""
  return {m.group(1): m.group(2) for m in
          re.finditer(r"^\s*(?:ROOT )?%?([\w.\-]+) = (\S+)", hlo_text, re.M)}


def main(argv=None):
  ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
  ap.add_argument("--quick", action="store_true", help="2 steps")
  ap.add_argument("--task", default="temporal_gap")
  ap.add_argument("--width", type=float, default=1.0)
  ap.add_argument("--batch", type=int, default=64)
  ap.add_argument("--steps", type=int, default=3)
  ap.add_argument("--top", type=int, default=12)
  args = ap.parse_args(argv)
  steps = 2 if args.quick else args.steps
  j = ts.JaxStep(args.task, args.width, args.batch)
  j.run(2)                                             # warm: buffers allocated, pool spun up
  with tempfile.TemporaryDirectory() as d:
    t = time.perf_counter()
    with jax.profiler.trace(d, create_perfetto_trace=True):
      j.run(steps)
    wall = (time.perf_counter() - t) / steps
    per_kernel = kernel_times(d)
  shapes = hlo_shapes(j.compiled.as_text())
  ms = {k: v / steps / 1000 for k, v in per_kernel.items()}
  by_kind = collections.Counter()
  for k, v in ms.items():
    by_kind[re.sub(r"\.\d+$", "", k)] += v
  kernel_total = sum(ms.values())
  top = [{"kernel": k, "ms": v, "shape": shapes.get(k, "?")}
         for k, v in sorted(ms.items(), key=lambda kv: -kv[1])[:args.top]]
  log(f"step_profile: {args.task} width {args.width} batch {args.batch}: wall {wall * 1000:.1f} ms "
      f"per step (traced), kernels {kernel_total:.1f} ms summed over threads")
  for k, v in by_kind.most_common(10):
    log(f"  {v:8.2f} ms {100 * v / kernel_total:5.1f} %  {k}")
  for r in top:
    log(f"  {r['ms']:8.2f} ms  {r['kernel']}  {r['shape']}")
  emit("step_profile", {"task": args.task, "width": args.width, "batch": args.batch,
                        "steps": steps, "wall_ms_per_step": wall * 1000,
                        "kernel_ms_per_step": kernel_total,
                        "xla_gbytes_per_step": j.bytes / 1e9, "xla_gflops_per_step": j.flops / 1e9,
                        "by_kind_ms": dict(by_kind.most_common()), "top": top}, argv)


if __name__ == "__main__":
  main()

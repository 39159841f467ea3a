r"""Train-step speed of every registered pretext task: JAX (the real step) vs plain PyTorch eager.

Command:
  python bench/train_step.py [--quick] [--tasks a,b] [--widths 1,4] [--batch 256]

For each task of ``ssl_audio.tasks.names()`` (every module under ssl_audio/tasks is
imported first, so new tasks are picked up) and each encoder width:

* JAX: ``ssl_audio.train.make_train_step`` (shard_map over a 1-device mesh,
  donated state, Adam + cosine schedule as configs/default.py) on a fixed
  in-memory batch from ``task.example_batch`` (tasks that need labels get
  synthetic labels over 10 classes; multihead: 2 heads of 5 classes). The step is
  compiled once with ``.lower().compile()``; XLA's ``cost_analysis()`` gives its
  FLOPs.
* PyTorch: bench/torch_reference.py, the same encoder + head + loss, eager,
  ``torch.set_num_threads(2)``, Adam, same batch. Parameter counts are checked
  equal; FlopCounterMode gives its conv/matmul FLOPs.
* Log-mel is INCLUDED in both steps (raw int16 windows in, as the real pipeline
  feeds them).
* Timing: after one warm-up step each (torch's is the FlopCounterMode step;
  --quick skips JAX's: the step is compiled ahead of time), ``--repeats`` rounds of ``--steps`` steps,
  JAX and torch alternating (interleaved), best round kept: examples/s.
* Peak: a 2048^3 fp32 ``jnp.dot`` in the same run; achieved GFLOP/s = XLA
  FLOPs per step / best step time.
"""

from __future__ import annotations

import argparse
import gc
import importlib
import os
import pkgutil
import sys
import time
import traceback

import numpy as np

from common import REPO, emit, log

import jax
import jax.numpy as jnp
import ml_collections

# Generic task keys (each task reads only its own); configs/<task>.py wins where it exists.
TASK_DEFAULTS = dict(window_seconds=10.0, loss="bce", head_hidden=0, context=2, gap_frames=0,
                     aggregation="mean", max_positive_seconds=1.0, margin=0.1,
                     fallback="hardest", min_seconds=0.1)
NUM_CLASSES = 10


def import_all_tasks() -> list[str]:
  import ssl_audio.tasks as tasks
  for m in pkgutil.iter_modules(tasks.__path__):
    if m.name != "base":
      try:
        importlib.import_module(f"ssl_audio.tasks.{m.name}")
      except Exception as e:  # noqa: BLE001 (a task being written right now may not import)
        log(f"train_step: cannot import ssl_audio.tasks.{m.name}: {type(e).__name__}: {e}")
  return tasks.names()


def task_config(name: str, width: float, batch: int) -> ml_collections.ConfigDict:
  from configs import default
  c = default.get_config()
  path = REPO / "configs" / f"{name}.py"
  if path.is_file():
    try:
      c = importlib.import_module(f"configs.{name}").get_config()
    except Exception as e:  # noqa: BLE001
      log(f"train_step: configs/{name}.py failed ({e}); using generic keys")
  c.task.name = name
  with c.unlocked():
    for k, v in TASK_DEFAULTS.items():
      if k not in c.task:
        c.task[k] = v
    if name == "multihead":
      c.data.train = "a,b"
    elif c.data.get("train") is not None:
      c.data.train = ""
  c.encoder.width = float(width)
  c.batch_size = batch
  return c


def synthetic_classes(task) -> tuple[list[str], np.ndarray]:
  sources = getattr(task, "sources", None) or []
  if sources:
    per = NUM_CLASSES // len(sources)
    classes = [f"{s}/c{i}" for s in sources for i in range(per)]
  else:
    classes = [f"c{i}" for i in range(NUM_CLASSES)]
  return classes, np.ones(len(classes))


class JaxStep:
  def __init__(self, name: str, width: float, batch: int):
    from ssl_audio import parallel, state as state_lib, train
    c = task_config(name, width, batch)
    task = state_lib.build_task(c)
    if task.needs_labels:
      task = state_lib.build_task(c, *synthetic_classes(task))
    num_classes = len(task.classes) if task.needs_labels else None
    self.task, self.config, self.num_classes = task, c, num_classes
    model = state_lib.build_model(task)
    state, tx, sched = state_lib.create_train_state(c, task, model, seed=0)
    self.params = int(sum(np.prod(p.shape) for p in jax.tree.leaves(state.params)))
    mesh = parallel.make_mesh(1)
    self.state = jax.device_put(state, parallel.replicated(mesh))
    self.batch_np = task.example_batch(batch, num_classes or 2)
    self.batch = parallel.global_batch(self.batch_np, mesh)
    fn = train.make_train_step(model, task, tx, sched, mesh)
    t = time.perf_counter()
    self.compiled = fn.lower(self.state, self.batch).compile()
    self.compile_s = time.perf_counter() - t
    cost = self.compiled.cost_analysis()
    if isinstance(cost, (list, tuple)):
      cost = cost[0]
    self.flops = float(cost.get("flops", float("nan")))
    self.bytes = float(cost.get("bytes accessed", float("nan")))

  def run(self, n: int) -> None:
    m = None
    for _ in range(n):
      self.state, m = self.compiled(self.state, self.batch)
    jax.block_until_ready((self.state, m))


class TorchStep:
  def __init__(self, name: str, jstep: JaxStep, device: str = "cpu"):
    import torch
    import torch_reference as tr
    torch.set_num_threads(2)
    torch.manual_seed(0)
    c, task = jstep.config, jstep.task
    groups = getattr(task, "groups", None)
    self.device = torch.device(device)
    self.model = tr.make_model(name, task.frontend, c.encoder.width, c.encoder.embedding_dim,
                               c.encoder.norm, dict(c.task), jstep.num_classes, groups).to(self.device)
    self.params = tr.count_params(self.model)
    self.batch = {k: torch.from_numpy(np.ascontiguousarray(v)).to(self.device)
                  for k, v in jstep.batch_np.items()}
    self.flops = tr.flops_per_step(self.model, self.batch)
    self.step = tr.make_step(self.model)
    self.sync = torch.cuda.synchronize if self.device.type == "cuda" else (lambda: None)

  def run(self, n: int) -> None:
    for _ in range(n):
      self.step(self.batch)
    self.sync()   # a GPU step is asynchronous: time it to the end


def matmul_peak(n: int = 2048, repeats: int = 3) -> float:
  """fp32 GFLOP/s of an n^3 ``jnp.dot`` on the default device (best of ``repeats``)."""
  a = jax.random.normal(jax.random.key(0), (n, n), jnp.float32)
  f = jax.jit(lambda a, b: jnp.dot(a, b))
  f(a, a).block_until_ready()
  best = float("inf")
  for _ in range(repeats):
    t = time.perf_counter()
    f(a, a).block_until_ready()
    best = min(best, time.perf_counter() - t)
  return 2 * n ** 3 / best / 1e9


def bench_one(name: str, width: float, batch: int, steps: int, repeats: int, torch_ok: bool,
              warmup: bool = True, torch_device: str = "cpu") -> dict:
  log(f"train_step: {name} width {width} batch {batch}: compiling")
  j = JaxStep(name, width, batch)
  out = {"task": name, "width": width, "batch": batch, "jax_params": j.params,
         "jax_compile_s": j.compile_s, "xla_flops_per_step": j.flops,
         "xla_flops_per_example": j.flops / batch, "xla_bytes_per_step": j.bytes}
  fns = {"jax": j.run}
  t_ref = None
  if torch_ok:
    try:
      t_ref = TorchStep(name, j, torch_device)
      out["torch_params"] = t_ref.params
      out["params_match"] = t_ref.params == j.params
      out["torch_flops_per_step"] = t_ref.flops
      fns["torch"] = t_ref.run
    except KeyError:
      log(f"train_step: no torch reference for {name} yet")
    except Exception as e:  # noqa: BLE001 (a torch failure must not lose the JAX row)
      log(f"train_step: torch reference of {name} failed on {torch_device}: {type(e).__name__}: {e}")
  if warmup:
    j.run(1)                  # torch's warm-up was its FlopCounterMode step
  best = {k: float("inf") for k in fns}
  for _ in range(repeats):
    for k, f in fns.items():
      t = time.perf_counter()
      f(steps)
      best[k] = min(best[k], (time.perf_counter() - t) / steps)
  for k, t in best.items():
    out[f"{k}_s_per_step"] = t
    out[f"{k}_examples_per_s"] = batch / t
  out["jax_gflops_per_s"] = j.flops / best["jax"] / 1e9
  if "torch" in best:
    out["jax_vs_torch"] = best["torch"] / best["jax"]
  log("train_step: " + " ".join(f"{k}={v:.4g}" if isinstance(v, float) else f"{k}={v}"
                                for k, v in out.items()))
  del j, t_ref, fns
  gc.collect()
  return out


def main(argv=None):
  ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
  ap.add_argument("--quick", action="store_true", help="batch 64, width 1, one timed step, no JAX warm-up")
  ap.add_argument("--tasks", default="", help="comma-separated subset (default: all registered)")
  ap.add_argument("--widths", default="1,4")
  ap.add_argument("--batch", type=int, default=256)
  ap.add_argument("--steps", type=int, default=2, help="steps per timed round")
  ap.add_argument("--repeats", type=int, default=2, help="timed rounds (best kept)")
  ap.add_argument("--no-torch", action="store_true")
  ap.add_argument("--torch-device", default="cpu", help="cpu | cuda (the reference on the GPU)")
  ap.add_argument("--peak-n", type=int, default=2048, help="matmul size of the peak (8192 on a GPU)")
  args = ap.parse_args(argv)
  if args.quick:
    args.widths, args.batch, args.steps, args.repeats = "1", 64, 1, 1
  names = import_all_tasks()
  if args.tasks:
    names = [n for n in args.tasks.split(",") if n]
  widths = [float(w) for w in args.widths.split(",")]
  torch_ok = not args.no_torch
  if torch_ok:
    try:
      import torch  # noqa: F401
    except ImportError:
      torch_ok = False
  peak = matmul_peak(args.peak_n)
  log(f"train_step: tasks {names}, widths {widths}, batch {args.batch}; matmul peak {peak:.0f} GFLOP/s")
  rows, failed = [], {}
  for w in widths:
    for n in names:
      try:
        r = bench_one(n, w, args.batch, args.steps, args.repeats, torch_ok, warmup=not args.quick,
                      torch_device=args.torch_device)
        r["jax_pct_of_matmul_peak"] = 100 * r["jax_gflops_per_s"] / peak
        rows.append(r)
      except Exception as e:  # noqa: BLE001 (one broken task must not hide the others)
        traceback.print_exc(file=sys.stderr)
        failed[f"{n}@{w}"] = f"{type(e).__name__}: {e}"[:300]
  ratios = [r["jax_vs_torch"] for r in rows if "jax_vs_torch" in r]
  figs = {"batch": args.batch, "widths": widths, "steps": args.steps, "repeats": args.repeats,
          "logmel_in_step": "included in both", "torch_device": args.torch_device,
          "torch_threads": 2 if torch_ok and args.torch_device == "cpu" else None,
          "jax_device": str(jax.devices()[0].device_kind),
          "matmul_peak_gflops": peak, "tasks": names, "results": rows, "failed": failed,
          "min_jax_vs_torch": min(ratios) if ratios else None,
          "all_tasks_jax_ge_torch": bool(ratios) and min(ratios) >= 1.0}
  emit("train_step", figs, argv)


if __name__ == "__main__":
  main()

"""Pretrain several configs at once on one accelerator host, to one step budget that fits a
wall-clock deadline; then pack each workdir into a tar.

For a machine lent for a fixed time (a rented GPU, a preemptible VM): every config trains
in its own ``main.py`` process (small models share one GPU; input workers share the
cores), all with the same batch and the same ``num_train_steps`` N, so every method sees
the same number of examples and finishes its own cosine schedule. N starts at
``--steps``; ``--check_after_s`` seconds after the launch the measured rates (the
slowest run's) give the N that ends by the deadline, and if that differs much the runs
are restarted once with it. Whatever still runs at the deadline gets SIGTERM (a
checkpoint, then exit).

  python tools/timed_pretrain.py --root=runs/gpu --deadline_s=420 --steps=6000 \\
      --configs=configs/temporal_gap.py,configs/audio2vec_cbow.py \\
      --set=data.pretrain=manifest:/data/pool/manifest.csv --set=data.packed=True \\
      --batch=128 --pack=/tmp/out

The summary (N, steps reached, examples/s, last losses) is printed as JSON last and
written to ``<root>/summary.json``.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import tarfile
import time
from pathlib import Path

from absl import app, flags

FLAGS = flags.FLAGS


def logged(workdir: Path) -> list[dict]:
  """The lines of metrics.jsonl that have a loss (the training logs)."""
  path = workdir / "metrics.jsonl"
  out = []
  for line in path.read_text().splitlines() if path.is_file() else []:
    try:
      m = json.loads(line)
    except ValueError:
      continue
    if "loss" in m:
      out.append(m)
  return out


def last_metrics(workdir: Path) -> dict:
  lines = logged(workdir)
  return lines[-1] if lines else {}


class Runs:
  def __init__(self, configs: list[str], root: Path, batch: int, sets: list[str]):
    self.configs, self.root, self.batch, self.sets = configs, root, batch, sets
    self.procs: dict[str, subprocess.Popen] = {}
    self.n = 0

  @staticmethod
  def name(config: str) -> str:
    return Path(config).stem

  def start(self, n: int) -> None:
    self.n = n
    env = dict(os.environ)
    env.setdefault("XLA_PYTHON_CLIENT_PREALLOCATE", "false")   # the runs share one GPU
    for config in self.configs:
      workdir = self.root / self.name(config)
      shutil.rmtree(workdir, ignore_errors=True)
      workdir.mkdir(parents=True)
      cmd = [sys.executable, "main.py", f"--config={config}", f"--workdir={workdir}",
             f"--config.batch_size={self.batch}", f"--config.num_train_steps={n}",
             f"--config.checkpoint_every_steps={max(n // 2, 1)}",
             f"--config.keep_checkpoints={FLAGS.keep}"] + [f"--config.{s}" for s in self.sets]
      (workdir / "command.txt").write_text(" ".join(cmd[1:]) + "\n")
      with open(workdir / "main.log", "ab") as log:
        self.procs[self.name(config)] = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT,
                                                         env=env)

  def running(self) -> list[str]:
    return [k for k, p in self.procs.items() if p.poll() is None]

  def stop(self, sig=signal.SIGTERM, wait_s: float = 60.0) -> None:
    for k in self.running():
      self.procs[k].send_signal(sig)
    t = time.time()
    while self.running() and time.time() - t < wait_s:
      time.sleep(0.5)
    for k in self.running():
      self.procs[k].kill()
      self.procs[k].wait()

  def rates(self) -> dict[str, tuple[int, float]]:
    """name -> (last logged step, steps/s of the last log window), for the runs that have
    logged twice (the first window holds the compilation)."""
    out = {}
    for k in self.procs:
      lines = logged(self.root / k)
      if len(lines) >= 2:
        out[k] = (int(lines[-1]["step"]), float(lines[-1]["steps_per_s"]))
    return out


def fitted_steps(rates: dict[str, tuple[int, float]], seconds_left: float, startup_s: float) -> int:
  """The N that the slowest run reaches in seconds_left after a restart costing startup_s."""
  slowest = min(r for _, r in rates.values())
  return max(100, int(slowest * (seconds_left - startup_s) / 100) * 100)


def pack(workdir: Path, out: Path, max_mib: float) -> Path:
  """<out>/<name>.tar of the workdir (no TensorBoard events); older checkpoints are left out
  while the tar would exceed max_mib."""
  steps = sorted((int(p.name) for p in (workdir / "checkpoints").glob("*") if p.name.isdigit()),
                 reverse=True) if (workdir / "checkpoints").is_dir() else []
  size = lambda p: sum(f.stat().st_size for f in p.rglob("*") if f.is_file())
  keep, total = [], sum(size(f) if f.is_dir() else f.stat().st_size for f in workdir.iterdir()
                        if f.name not in ("checkpoints", "tensorboard"))
  for s in steps:
    if keep and total + size(workdir / "checkpoints" / str(s)) > max_mib * 2**20:
      break
    keep.append(s)
    total += size(workdir / "checkpoints" / str(s))
  tar_path = out / f"{workdir.name}.tar"
  with tarfile.open(tar_path, "w") as tar:
    for f in workdir.iterdir():
      if f.name not in ("checkpoints", "tensorboard"):
        tar.add(f, arcname=f"{workdir.name}/{f.name}")
    for s in keep:
      tar.add(workdir / "checkpoints" / str(s), arcname=f"{workdir.name}/checkpoints/{s}")
  return tar_path


def main(argv):
  del argv
  t0 = time.time()
  deadline = t0 + FLAGS.deadline_s
  root = Path(FLAGS.root)
  runs = Runs(FLAGS.configs, root, FLAGS.batch, FLAGS.set)
  history = []
  launched = time.time()
  runs.start(FLAGS.steps)
  history.append({"n": FLAGS.steps, "at_s": round(launched - t0, 1)})
  first_log: dict[str, float] = {}   # seconds from launch to a run's first log
  fitted = False
  while runs.running() and time.time() < deadline:
    time.sleep(2.0)
    for k in runs.procs:
      if k not in first_log and last_metrics(root / k):
        first_log[k] = time.time() - launched
    rates = runs.rates()
    if fitted or time.time() - launched < FLAGS.check_after_s:
      continue
    if len(rates) < len(runs.procs):   # some run has no steady rate yet: look again later,
      fitted = time.time() > launched + 0.5 * (deadline - launched)   # but not forever
      if fitted:
        print(f"no rates from {sorted(set(runs.procs) - set(rates))}; keeping N={runs.n}", flush=True)
      continue
    fitted = True   # one look: fit N once
    startup = max(first_log.values())
    left = deadline - time.time()
    n_fit = fitted_steps(rates, left, startup)
    need = max((runs.n - s) / r for s, r in rates.values())   # the slowest run, as it goes
    print(f"rates {rates}; N={runs.n} needs {need:.0f} s more, {left:.0f} s left; "
          f"fitted N={n_fit}", flush=True)
    # Restart only where it pays: the slowest run would stop short of 90% of N, or N could
    # grow by more than restart_if after paying the start-up again.
    if need > left / 0.9 or n_fit > FLAGS.restart_if * runs.n:
      runs.stop(signal.SIGKILL, wait_s=5)
      launched = time.time()
      first_log = {}
      runs.start(n_fit)
      history.append({"n": n_fit, "at_s": round(launched - t0, 1)})
  runs.stop()   # SIGTERM at the deadline: each saves a checkpoint and exits
  summary = {"n": runs.n, "batch": FLAGS.batch, "history": history,
             "wall_s": round(time.time() - t0, 1), "runs": {}}
  for k, p in runs.procs.items():
    m = last_metrics(root / k)
    summary["runs"][k] = {"exit": p.returncode, "step": m.get("step"),
                          "examples_per_s": m.get("examples_per_s"), "loss": m.get("loss"),
                          "baseline_loss": m.get("baseline_loss"),
                          "command": (root / k / "command.txt").read_text().strip()}
  (root / "summary.json").write_text(json.dumps(summary, indent=1))
  if FLAGS.pack:
    out = Path(FLAGS.pack)
    out.mkdir(parents=True, exist_ok=True)
    for k in runs.procs:
      try:
        pack(root / k, out, FLAGS.pack_max_mib)
      except OSError as e:
        print(f"could not pack {k}: {e}", flush=True)
  print(json.dumps(summary), flush=True)


def define_flags() -> None:
  """Flags of the command line (defined there only, so tests can import the helpers)."""
  flags.DEFINE_list("configs", [], "Config files, one run each.")
  flags.DEFINE_multi_string("set", [], "KEY=VALUE (repeatable): override for every run.")
  flags.DEFINE_string("root", "runs/timed", "Parent folder of the workdirs.")
  flags.DEFINE_integer("batch", 128, "Global batch size of every run.")
  flags.DEFINE_integer("steps", 4000, "First guess of the common step budget N.")
  flags.DEFINE_float("deadline_s", 420.0, "Seconds from now by which every run must end.")
  flags.DEFINE_float("check_after_s", 100.0, "Seconds after the launch to measure the rates.")
  flags.DEFINE_float("restart_if", 1.5, "Restart once with the fitted N if the slowest run would "
                     "not reach 90% of N by the deadline, or if the fitted N is above this many times N.")
  flags.DEFINE_integer("keep", 2, "Checkpoints kept per run: N, and N/2 if 2.")
  flags.DEFINE_string("pack", "", "Folder for one <name>.tar per run (checkpoints, metrics, log).")
  flags.DEFINE_float("pack_max_mib", 15.5, "Drop older checkpoints from a tar above this size.")


if __name__ == "__main__":
  define_flags()
  app.run(main)

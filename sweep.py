"""Expand a grid of configs and overrides into one main.py run per point.

  # print the commands (one workdir per point, named after its settings)
  python sweep.py --configs=configs/temporal_gap.py,configs/audio2vec_cbow.py \
      --grid=encoder.width=1,4 --grid=seed=0,1,2 --root=runs/sweep
  # run them one after another here
  python sweep.py ... --run
  # or 5 at a time on one host (small models share one GPU; logs in <root>/<name>.log)
  python sweep.py ... --run --parallel=5
  # print gcloud commands: set up every worker of a Cloud TPU VM, then run each point
  # on all of them, workdirs in a bucket (README "On a Cloud TPU VM")
  python sweep.py ... --tpu=my-tpu --zone=us-central2-b --root=gs://my-bucket/sweep

Each run resumes from its own workdir, so re-running a sweep finishes what a
preemption interrupted and skips what is done. Evaluate them all at once with
``python -m eval.linear_eval --workdir=runs/sweep/a,runs/sweep/b,...``.
"""

from __future__ import annotations

import itertools
import os
import shlex
import signal
import subprocess
import sys
import time
from pathlib import Path

from absl import app, flags

from ssl_audio import paths

flags.DEFINE_list("configs", ["configs/temporal_gap.py"], "Config files, comma-separated.")
flags.DEFINE_multi_string("grid", [], "KEY=V1,V2,... (repeatable): values to sweep.")
flags.DEFINE_multi_string("set", [], "KEY=VALUE (repeatable): fixed override for every run.")
flags.DEFINE_string("root", "runs/sweep", "Parent folder of the runs' workdirs.")
flags.DEFINE_bool("run", False, "Run the points here, one after another.")
flags.DEFINE_integer("parallel", 1, "With --run: run this many points at once, each in its own "
                     "process (on one GPU: small models share it), output in <root>/<name>.log.")
flags.DEFINE_string("tpu", "", "Cloud TPU VM name: print gcloud commands instead.")
flags.DEFINE_string("zone", "", "Zone of the TPU VM.")
flags.DEFINE_string("repo", "~/ssl-audio", "Checkout path on the TPU VM.")
flags.DEFINE_string("git", "", "With --tpu: clone this URL on the workers (default: copy this checkout).")
FLAGS = flags.FLAGS

# The README's install line for a TPU VM (README "On a Cloud TPU VM").
TPU_INSTALL = 'pip install -r requirements.txt -r requirements-gcs.txt "jax[tpu]"'


def parse_grid(specs: list[str]) -> list[tuple[str, list[str]]]:
  grid = []
  for spec in specs:
    key, sep, values = spec.partition("=")
    if not sep or not key or not values:
      raise app.UsageError(f"--grid needs KEY=V1,V2,..., got {spec!r}")
    grid.append((key.strip(), [v.strip() for v in values.split(",")]))
  return grid


def points(configs: list[str], grid, fixed: list[str]) -> list[tuple[str, list[str]]]:
  """(workdir name, main.py arguments) for every point of configs x grid."""
  out = []
  keys = [k for k, _ in grid]
  for config in configs:
    for values in itertools.product(*[v for _, v in grid]) if grid else [()]:
      name = "_".join([Path(config).stem] + [f"{k.split('.')[-1]}{v}" for k, v in zip(keys, values)])
      args = [f"--config={config}"] + [f"--config.{s}" for s in fixed]
      args += [f"--config.{k}={v}" for k, v in zip(keys, values)]
      out.append((name, args))
  return out


def tpu_setup(tpu: str, zone: str, repo: str, git: str = "") -> list[str]:
  """gcloud commands that put this code on every worker of ``tpu`` and install it."""
  ssh = f"gcloud compute tpus tpu-vm ssh {tpu} --zone={zone} --worker=all --command="
  if git:
    fetch = [ssh + shlex.quote(f"git clone {git} {repo} || git -C {repo} pull")]
  else:
    fetch = ["git archive --format=tar.gz -o /tmp/ssl-audio.tar.gz HEAD",
             f"gcloud compute tpus tpu-vm scp /tmp/ssl-audio.tar.gz {tpu}:/tmp/ --zone={zone} --worker=all",
             ssh + shlex.quote(f"mkdir -p {repo} && tar -xzf /tmp/ssl-audio.tar.gz -C {repo}")]
  return fetch + [ssh + shlex.quote(f"cd {repo} && {TPU_INSTALL}")]


def main(argv):
  del argv
  if FLAGS.tpu and not paths.is_remote(FLAGS.root):
    raise app.UsageError(f"--tpu: every host of a slice writes to one workdir, so --root must be "
                         f"a bucket (e.g. --root=gs://my-bucket/sweep), got {FLAGS.root!r}")
  runs = points(FLAGS.configs, parse_grid(FLAGS.grid), FLAGS.set)
  jobs: list[tuple[str, list[str]]] = []
  if FLAGS.tpu:
    print("# once: this code and its requirements on every worker")
    print("\n".join(tpu_setup(FLAGS.tpu, FLAGS.zone, FLAGS.repo, FLAGS.git)))
    print("# the runs (each resumes from its workdir when re-run)")
  for name, args in runs:
    workdir = os.path.join(FLAGS.root, name)   # a local folder or gs://bucket/.../name
    cmd = [sys.executable if FLAGS.run else "python", "main.py", *args, f"--workdir={workdir}"]
    if FLAGS.tpu:
      remote = (f"cd {FLAGS.repo} && " + " ".join(shlex.quote(c) for c in cmd) +
                " --config.distributed=True")
      print(f"gcloud compute tpus tpu-vm ssh {FLAGS.tpu} --zone={FLAGS.zone} --worker=all "
            f"--command={shlex.quote(remote)}")
    elif FLAGS.run and FLAGS.parallel > 1:
      jobs.append((name, cmd))
    elif FLAGS.run:
      print(f"== {name}", flush=True)
      subprocess.run(cmd, check=True)
    else:
      print(" ".join(shlex.quote(c) for c in cmd))
  if jobs:
    failed = run_parallel(jobs, FLAGS.root, FLAGS.parallel)
    if failed:
      raise SystemExit(f"{len(failed)} of {len(jobs)} runs failed: {', '.join(failed)} "
                       f"(logs in {FLAGS.root}/<name>.log)")


def run_parallel(jobs: list[tuple[str, list[str]]], root: str, parallel: int) -> list[str]:
  """Runs (name, command) jobs, ``parallel`` at a time; returns the names that failed.

  Each job's output goes to ``<root>/<name>.log``. XLA does not pre-allocate GPU memory
  (``XLA_PYTHON_CLIENT_PREALLOCATE=false`` unless set), so the processes share one GPU.
  A SIGTERM to the sweep (preemption) is passed on to every running job, which saves a
  checkpoint and stops; re-running the sweep resumes them all.
  """
  env = dict(os.environ)
  env.setdefault("XLA_PYTHON_CLIENT_PREALLOCATE", "false")
  os.makedirs(root, exist_ok=True)
  running: dict[str, subprocess.Popen] = {}
  failed: list[str] = []
  stopping = []
  old = signal.signal(signal.SIGTERM, lambda *_: stopping.append(1) or
                      [p.send_signal(signal.SIGTERM) for p in running.values()])
  queue = list(jobs)

  def reap() -> None:
    for name, p in list(running.items()):
      if p.poll() is not None:
        del running[name]
        print(f"== {name}: exit {p.returncode}", flush=True)
        if p.returncode:
          failed.append(name)

  try:
    while queue or running:
      while queue and len(running) < parallel and not stopping:
        name, cmd = queue.pop(0)
        with open(os.path.join(root, f"{name}.log"), "ab") as log:
          running[name] = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, env=env)
        print(f"== {name}: started", flush=True)
      if stopping:
        queue.clear()
      reap()
      time.sleep(0.2)
  finally:
    signal.signal(signal.SIGTERM, old)
  return failed


if __name__ == "__main__":
  app.run(main)

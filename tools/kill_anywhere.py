r"""Kill a tiny training run with SIGKILL at random moments, resume it each time, and check
that it ends bit-identical to an uninterrupted run.

Command:
  python tools/kill_anywhere.py [--kills=10] [--steps=24] [--seed=0] [--workdir=DIR]

A reference run (``main.py``, TemporalGap, batch 4, async checkpoints every 2 steps, one log
line per step) runs once uninterrupted. The second run is started, SIGKILLed and restarted
``--kills`` times; each kill is drawn at random from three phases:

* ``startup``: a random moment in the first seconds (imports, compile, restore);
* ``step``: just after a random step 1-4 steps past the resume point is logged (plus up
  to 0.3 s);
* ``checkpoint``: while the n-th asynchronous checkpoint of that start (n in 1..2) is being
  written (its ``*.orbax-checkpoint-tmp*`` folder exists).

A start that reaches the last step before its kill ends the kills (reported).

Then it runs to the end and the final parameters, optimizer state and BatchNorm statistics
are compared with the reference, and every loss the killed run logged (steps that ran twice
log twice) with the reference's loss at that step. Prints one JSON line (the last stdout
line): ``{"equal": true, "kills": [...], ...}``; exit status 1 when anything differs.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from tests import helpers  # noqa: E402  (synthetic clips, checkpoint reading)


def _cmd(workdir: Path, data: Path, steps: int) -> list[str]:
  return [sys.executable, "main.py", "--config=configs/temporal_gap.py", f"--workdir={workdir}",
          f"--config.data.pretrain={data}", f"--config.num_train_steps={steps}",
          "--config.batch_size=4", "--config.checkpoint_every_steps=2",
          "--config.log_every_steps=1", "--config.keep_checkpoints=3",
          "--config.data.num_workers=0", "--config.task.window_seconds=4.0",
          "--config.augment.gain_db=6", "--config.augment.time_masks=1"]


def _env() -> dict:
  return {**os.environ, "PYTHONPATH": str(REPO), "JAX_PLATFORMS": "cpu"}


def _losses(workdir: Path) -> list[tuple[int, float]]:
  out = []
  path = workdir / "metrics.jsonl"
  if not path.exists():
    return out
  for line in path.read_text().splitlines():
    try:
      r = json.loads(line)
    except json.JSONDecodeError:   # a line torn by the kill
      continue
    if "loss" in r:
      out.append((int(r["step"]), r["loss"]))
  return out


def _tmp_dirs(ckpt_dir: Path) -> set[str]:
  try:
    return {e.name for e in os.scandir(ckpt_dir) if "orbax-checkpoint-tmp" in e.name}
  except FileNotFoundError:
    return set()


def _latest(ckpt_dir: Path) -> int | None:
  try:
    steps = [int(e.name) for e in os.scandir(ckpt_dir) if e.name.isdigit()]
  except FileNotFoundError:
    return None
  return max(steps, default=None)


def kill_once(workdir: Path, data: Path, steps: int, rng: random.Random, startup_s: float
              ) -> dict:
  """Starts the run, kills it in a random phase; returns what happened."""
  ckpt_dir = workdir / "checkpoints"
  resumed_from = _latest(ckpt_dir) or 0
  phase = rng.choice(["startup", "step", "checkpoint"])
  target = None
  t0 = time.time()
  p = subprocess.Popen(_cmd(workdir, data, steps), cwd=REPO, env=_env(),
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
  logged_before = len(_losses(workdir))
  seen_tmp: set[str] = set()
  if phase == "startup":
    target = rng.uniform(0.0, startup_s)
    while p.poll() is None and time.time() - t0 < target:
      time.sleep(0.01)
  elif phase == "step":   # a few steps past the resume point, so every kill lands
    last = max(resumed_from + 1, min(steps - 1, resumed_from + 4))
    target = rng.randint(resumed_from + 1, last)
    while p.poll() is None and not any(s >= target for s, _ in _losses(workdir)[logged_before:]):
      time.sleep(0.005)
    time.sleep(rng.uniform(0.0, 0.3))
  else:
    target = rng.randint(1, 2)   # the n-th checkpoint written by this start
    while p.poll() is None:
      new = _tmp_dirs(ckpt_dir) - seen_tmp
      if new:
        seen_tmp |= new
        if len(seen_tmp) >= target:
          break
      time.sleep(0.002)
  writing = bool(_tmp_dirs(ckpt_dir))
  if p.poll() is None:
    p.send_signal(signal.SIGKILL)
  p.wait()
  return {"phase": phase, "target": target, "after_s": round(time.time() - t0, 2),
          "resumed_from": resumed_from, "killed": p.returncode == -signal.SIGKILL,
          "checkpoint_being_written": writing, "latest_after": _latest(ckpt_dir)}


def run(kills: int, steps: int, seed: int, root: Path) -> dict:
  data = root / "audio"
  data.mkdir(parents=True, exist_ok=True)
  helpers.write_clips(data, n=6, seconds=12.0)
  ref, killed = root / "ref", root / "killed"
  t0 = time.time()
  subprocess.run(_cmd(ref, data, steps), check=True, cwd=REPO, env=_env(),
                 capture_output=True)
  ref_s = time.time() - t0
  rng = random.Random(seed)
  log = []
  for k in range(kills):
    if (_latest(killed / "checkpoints") or 0) >= steps:
      break
    r = kill_once(killed, data, steps, rng, startup_s=ref_s * 0.6)
    print(f"kill {k + 1}/{kills}: {r}", file=sys.stderr, flush=True)
    log.append(r)
  subprocess.run(_cmd(killed, data, steps), check=True, cwd=REPO, env=_env(),
                 capture_output=True)
  step_a, a = helpers.final_state(ref)
  step_b, b = helpers.final_state(killed)
  ref_loss = dict(_losses(ref))
  logged = _losses(killed)
  loss_mismatch = [(s, v, ref_loss.get(s)) for s, v in logged if ref_loss.get(s) != v]
  diffs = {k: helpers.max_abs_diff(a[k], b[k]) for k in ("params", "opt_state", "batch_stats")
           if k in a}
  equal = (step_a == step_b == steps and all(d == 0.0 for d in diffs.values())
           and not loss_mismatch and {s for s, _ in logged} == set(range(1, steps + 1)))
  return {"equal": equal, "steps": steps, "final_steps": [step_a, step_b], "max_abs_diff": diffs,
          "losses_logged": len(logged), "loss_mismatches": loss_mismatch[:5],
          "kills_landed": sum(r["killed"] for r in log),
          "kills_during_checkpoint_write": sum(r["killed"] and r["checkpoint_being_written"]
                                               for r in log),
          "reference_run_s": round(ref_s, 1), "kills": log}


def main(argv=None) -> int:
  ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
  ap.add_argument("--kills", type=int, default=10)
  ap.add_argument("--steps", type=int, default=40)
  ap.add_argument("--seed", type=int, default=0)
  ap.add_argument("--workdir", default="", help="kept afterwards (default: a temporary folder)")
  args = ap.parse_args(argv)
  if args.workdir:
    out = run(args.kills, args.steps, args.seed, Path(args.workdir))
  else:
    with tempfile.TemporaryDirectory(prefix="kill_anywhere_") as d:
      out = run(args.kills, args.steps, args.seed, Path(d))
  print(json.dumps(out), flush=True)
  return 0 if out["equal"] else 1


if __name__ == "__main__":
  sys.exit(main())

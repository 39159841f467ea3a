r"""In-training probe curves: probe accuracy against pretraining step, from metrics.jsonl.

  python -m eval.curves --workdir=runs/tg_curve,runs/sg_curve --names=TemporalGap,SkipGram \
      --out=docs/results/curves.png

Every evaluator of ``config.evals`` writes ``<name>/accuracy`` to metrics.jsonl at step 0
(the random init) and every ``every_steps``; one panel per evaluator name, one line per
run, and a dotted line at each run's step-0 value (its own Untrained point). A table of
the same numbers goes to the ``.md`` beside the figure.
"""

from __future__ import annotations

import json
from pathlib import Path

from absl import app, flags

FLAGS = flags.FLAGS


def _define_flags() -> None:
  """Flags only when run as a program: eval.linear_eval also defines --workdir."""
  flags.DEFINE_list("workdir", None, "Run workdirs with in-training probes.")
  flags.DEFINE_list("names", None, "Display names (default: the workdirs' basenames).")
  flags.DEFINE_string("out", "curves.png", "Figure path (a .md table is written beside it).")
  flags.DEFINE_string("metric", "accuracy", "Which probe metric: accuracy | balanced_accuracy.")
  flags.mark_flag_as_required("workdir")

def read_curves(workdir: str | Path, metric: str = "accuracy") -> dict[str, list[tuple[int, float]]]:
  """{probe name: [(step, value), ...]} sorted by step (the last row of a step wins)."""
  curves: dict[str, dict[int, float]] = {}
  path = Path(workdir) / "metrics.jsonl"
  for line in path.read_text().splitlines():
    row = json.loads(line)
    for key, value in row.items():
      name, _, m = key.rpartition("/")
      if name and m == metric:
        curves.setdefault(name, {})[int(row["step"])] = float(value)
  return {k: sorted(v.items()) for k, v in curves.items()}


def table(runs: dict[str, dict[str, list[tuple[int, float]]]]) -> str:
  lines = []
  for probe in sorted({p for c in runs.values() for p in c}):
    steps = sorted({s for c in runs.values() for s, _ in c.get(probe, [])})
    lines += [f"**{probe}** (probe accuracy, %)", "",
              "| run | " + " | ".join(str(s) for s in steps) + " |",
              "|---|" + "---|" * len(steps)]
    for name, c in runs.items():
      vals = dict(c.get(probe, []))
      lines.append(f"| {name} | " + " | ".join(
          f"{100 * vals[s]:.1f}" if s in vals else "-" for s in steps) + " |")
    lines.append("")
  return "\n".join(lines)


def plot(runs: dict[str, dict[str, list[tuple[int, float]]]], out: Path) -> None:
  import matplotlib
  matplotlib.use("Agg")
  import matplotlib.pyplot as plt
  probes = sorted({p for c in runs.values() for p in c})
  fig, axes = plt.subplots(1, len(probes), figsize=(4.5 * len(probes), 3.4), squeeze=False)
  for ax, probe in zip(axes[0], probes):
    for i, (name, c) in enumerate(runs.items()):
      pts = c.get(probe, [])
      if not pts:
        continue
      steps, vals = zip(*pts)
      line, = ax.plot(steps, [100 * v for v in vals], marker="o", ms=3, label=name)
      if steps[0] == 0:
        ax.axhline(100 * vals[0], color=line.get_color(), ls=":", lw=1)
    ax.set_title(probe)
    ax.set_xlabel("pretraining step")
    ax.set_ylabel("probe accuracy (%)")
    ax.grid(alpha=0.3)
  axes[0][0].legend(fontsize=8)
  fig.tight_layout()
  fig.savefig(out, dpi=120)


def main(argv):
  del argv
  names = FLAGS.names or [Path(w).name for w in FLAGS.workdir]
  if len(names) != len(FLAGS.workdir):
    raise app.UsageError("--names needs one name per --workdir")
  runs = {n: read_curves(w, FLAGS.metric) for n, w in zip(names, FLAGS.workdir)}
  if not any(runs.values()):
    raise SystemExit(f"no '<probe>/{FLAGS.metric}' rows in the metrics.jsonl of {FLAGS.workdir}")
  out = Path(FLAGS.out)
  out.parent.mkdir(parents=True, exist_ok=True)
  plot(runs, out)
  out.with_suffix(".md").write_text(table(runs))
  print(table(runs))
  print(f"figure: {out}")


if __name__ == "__main__":
  _define_flags()
  app.run(main)

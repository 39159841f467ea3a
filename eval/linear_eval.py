r"""Downstream evaluation of pretrained encoders: linear probe (and fine-tuning).

  python -m eval.linear_eval --workdir=runs/tg --tasks=suite:all --baselines=untrained
  python -m eval.linear_eval --workdir=runs/tg,runs/sup --tasks=suite:msn,suite:digits --seeds=3
  python -m eval.linear_eval --workdir=runs/tg --tasks=folder:/data/birds --finetune_blocks=0,2,all
  python -m eval.linear_eval --workdir=runs/tg --tasks=manifest:/data/x.csv --step=1000
  python -m eval.linear_eval --workdir=runs/tg --baselines=untrained --features=blocks \
      --clip_pooling=stats --bn_reestimate

Protocol options (the same for every model of one invocation): ``--features``
(embedding | pooled | blocks, see ``ssl_audio.embed``), ``--clip_pooling`` (logits:
mean of slice logits; stats: the probe sees mean and std of the slice features of
each clip, as the MFCC baseline does), ``--bn_reestimate`` (BatchNorm statistics
re-estimated on the benchmark's train clips), ``--valid_holdout`` (what the probe's
hyper-parameters are chosen on where a task has no valid split: whole packages of train,
then a refit on all of train, see ``eval.probe.package_holdout``; or whole speakers, the
default before 2026-12-07). Non-default protocols write under
``<workdir>/eval/<protocol>/`` (e.g. ``blocks-stats-bn``, ``vgroup``). The Untrained baseline
(``--baselines=untrained``: the random init of the same architecture with BatchNorm
statistics measured on the run's own pool, as a trained model's are; ``untrained_init_bn``:
the init's identity statistics) uses ``--untrained_seeds`` init seeds (default 10): its
row is the mean and interval over them, and comparison.md adds each model's paired
difference against it. Rows named ``<method> s<k>`` (``--names="CBoW s0,CBoW s1,CBoW s2"``:
pretraining seeds of one recipe) also get one row per method: the mean and interval over
the runs, and Welch's interval of their difference from the Untrained init seeds.

Benchmarks (``--benchmarks``, also ``--tasks``): ``suite:NAME`` (digits, language, msn, instrument), ``suite:all``,
``manifest:PATH`` (label column; split column optional), ``folder:PATH`` (one
sub-folder per class). Without a split, ``ssl_audio.manifest.ensure_split`` hashes
the speaker, else the source, else the file name (70/10/20).

Outputs, per model: ``<workdir>/eval/<task>.json`` (per-seed numbers, mean, 95 %
t-interval, chance level, checkpoint step, settings) and ``<workdir>/eval/results.md``;
the Untrained baselines write under ``<workdir>/eval/untrained/`` (and ``untrained_init_bn/``). With several
models (workdirs or baselines): ``comparison.md`` and ``comparison.png`` in
``--out`` (default: the first workdir's eval/). Embeddings are cached under
``<workdir>/eval/cache/``. A workdir (and ``--out``) may be a ``gs://`` URL; every
output goes through ``ssl_audio.paths``.
"""

from __future__ import annotations

import io
import json
import os
import re
import statistics
import sys
import time

from absl import app, flags, logging
from etils.epath import Path

import data.suite  # registers suite: (and names the suite:all tasks)
from ssl_audio import audio as audio_lib
from ssl_audio import manifest as manifest_lib
from ssl_audio import paths

FLAGS = flags.FLAGS
flags.DEFINE_list("workdir", None, "Pretraining workdir(s), comma-separated.")
flags.DEFINE_list("benchmarks", ["suite:all"],
                  "Labelled benchmarks: suite:NAME, suite:all, manifest:PATH, folder:PATH.")
flags.DEFINE_alias("tasks", "benchmarks")   # the flag's first name, kept working
flags.DEFINE_enum("features", "embedding", ["embedding", "pooled", "blocks"],
                  "What is probed: the 128-d embedding, the pooled map before it, or block stats.")
flags.DEFINE_enum("clip_pooling", "logits", ["logits", "stats"],
                  "logits: mean of slice logits per clip; stats: probe on mean+std of slice features.")
flags.DEFINE_boolean("bn_reestimate", False,
                     "Re-estimate BatchNorm statistics on each benchmark's train clips first.")
# 5, not 3: with 3 pairs the t-quantile (4.30) left the baseline's interval at 6-8 points; 10,
# not 5: with 5 the inits' own spread was most of a method's Welch interval (README).
flags.DEFINE_enum("valid_holdout", "package", ["package", "group"],
                  "Tasks without a valid split (language, msn): hold out whole packages covering "
                  "the classes, then refit on all of train (package; see eval.probe), or whole "
                  "speakers of train (group: the default before 2026-12-07).")
flags.DEFINE_integer("untrained_seeds", 10, "Init seeds of the Untrained baseline (mean, interval); "
                     "10 since 2026-12-06 (5 before; README \"The random baseline over ten inits\").")
flags.DEFINE_integer("seeds", 5, "Probe seeds (reported as mean and 95% t-interval).")
flags.DEFINE_integer("step", None, "Checkpoint step (default: the latest of each workdir).")
flags.DEFINE_list("finetune_blocks", ["0"], "0 = linear probe; k = last k blocks + head; all.")
flags.DEFINE_integer("finetune_steps", 300, "Fine-tuning steps per seed (batch 64).")
flags.DEFINE_list("baselines", [], "Extra models built from the first workdir's meta: untrained "
                  "(random init, BatchNorm statistics of the run's pool), untrained_init_bn "
                  "(random init, identity statistics).")
flags.DEFINE_string("out", "", "Folder for the comparison table and chart (default: first workdir's eval/).")
flags.DEFINE_integer("max_clips", 0, "Use at most this many clips per task (0: all).")
flags.DEFINE_integer("probe_steps", 1000, "Linear-probe optimisation steps.")
flags.DEFINE_integer("batch_size", 256, "Slices per embedding batch (split over devices).")
flags.DEFINE_boolean("refresh", False, "Recompute embeddings even when cached.")
flags.DEFINE_enum("quant", None, ["none", "w8a8"],
                  "Override the checkpoints' encoder.quant: w8a8 = post-training int8 (qwix).")
flags.DEFINE_list("tflite", [], "One .tflite per workdir (python -m ssl_audio.export): embeddings "
                  "from the TFLite interpreter instead of JAX.")
flags.DEFINE_string("names", "", "Display names for the workdirs, comma-separated; rows named "
                    "'<method> s<k>' (pretraining seeds) also get one row per method.")


def expand_benchmarks(specs) -> list[str]:
  out = []
  for s in specs:
    s = s.strip()
    if not s:
      continue
    if s == "suite:all":
      out += [f"suite:{t}" for t in data.suite.BENCHMARKS]
    else:
      out.append(s)
  return out


def _stat(r: dict, key: str) -> dict:
  """A result's {mean, half_width} for ``key``, at the top or under ``linear_probe``."""
  return r.get(key) or (r.get("linear_probe") or {}).get(key) or {}


def _fmt(r: dict, key: str = "accuracy") -> str:
  v = _stat(r, key)
  if v.get("mean") is None:
    return "-"
  return f"{100 * v['mean']:.1f} ± {100 * v['half_width']:.1f}"


def _decode_clips(task: str, sample_rate: int, max_clips: int | None):
  """Whole clips (int16) for fine-tuning, with their labels and splits."""
  from eval import embeddings as E
  import numpy as np
  m = E.load_benchmark(task)
  rows = E.subset_rows(m, max_clips)
  clips, ok = [], []
  for r, x in E.iter_clips(m, rows, sample_rate):
    if isinstance(x, str):
      continue
    clips.append(audio_lib.to_int16(x))
    ok.append(r)
  ok = np.asarray(ok)
  return clips, m.column("label")[ok], m.column("split")[ok]


def protocol_dir(protocol: dict) -> str:
  """"" for the default protocol (the layout before the options), else e.g. "pooled-stats-bn"."""
  parts = [protocol["features"]] if protocol["features"] != "embedding" else []
  parts += [protocol["clip_pooling"]] if protocol["clip_pooling"] != "logits" else []
  parts += ["bn"] if protocol["bn_reestimate"] else []
  parts += ["vgroup"] if protocol.get("valid_holdout", "package") == "group" else []
  return "-".join(parts)


def evaluate_model(label: str, pre, eval_dir: Path, cache_dir: Path, tasks: list[str],
                   seeds: int, finetune_blocks: list[str], finetune_steps: int,
                   max_clips: int | None, probe_steps: int, refresh: bool,
                   protocol: dict) -> dict[str, dict]:
  from eval import probe
  from eval.evaluators import LinearProbeEvaluator
  results = {}
  eval_dir.mkdir(parents=True, exist_ok=True)
  for task in tasks:
    t0 = time.time()
    ev = LinearProbeEvaluator(manifest_lib.short_name(task, "file"), dict(
        benchmark=task, seeds=seeds, probe_steps=probe_steps, max_clips=max_clips,
        lrs=probe.DEFAULT_LRS, wds=probe.DEFAULT_WDS, **protocol), cache_dir=cache_dir,
        keep_audio=False, refresh=refresh)
    e, lp = ev.evaluate(pre)
    res = {"task": task, "model": label, "checkpoint_step": pre.step, "kind": pre.kind,
           "workdir": pre.workdir, "encoder": pre.info,
           "embeddings": {**e.info, "skipped_files": e.skipped, "skipped_reasons": e.reasons},
           "accuracy": lp["accuracy"], "balanced_accuracy": lp["balanced_accuracy"],
           "chance": lp["chance"], "protocol": protocol, "linear_probe": lp, "finetune": {}}
    for k in finetune_blocks:
      k = k.strip()
      if k in ("0", ""):
        continue
      clips, labels, splits = _decode_clips(task, pre.sample_rate, max_clips)
      kk = k if k == "all" else int(k)
      ft = probe.finetune(pre, clips, labels, splits, kk, seeds=tuple(range(seeds)),
                          steps=finetune_steps)
      res["finetune"][k] = ft
      logging.info("%s %s finetune k=%s: accuracy %s (%.0f%% of encoder FLOPs trained)", label,
                   task, k, _fmt(ft), 100 * ft["trained_flops_fraction"])
    res["seconds"] = round(time.time() - t0, 1)
    path = eval_dir / f"{manifest_lib.short_name(task, 'file')}.json"
    path.write_text(json.dumps(res, indent=1, default=str) + "\n")
    logging.info("%s %s: accuracy %s, balanced %s (chance %.1f), %d clips, %d skipped -> %s",
                 label, task, _fmt(res), _fmt(res, "balanced_accuracy"),
                 100 * res["chance"]["accuracy"], e.n_clips, e.skipped, path)
    print(f"{label:>16} {task:<22} acc {_fmt(res):>13}  bal {_fmt(res, 'balanced_accuracy'):>13}"
          f"  chance {100 * res['chance']['accuracy']:.1f}", flush=True)
    results[task] = res
  # results.md lists every task evaluated in this folder so far, not only this invocation's.
  everything = {}
  for f in sorted(eval_dir.glob("*.json")):
    try:
      r = json.loads(f.read_text())
      if r.get("checkpoint_step") == pre.step and r.get("kind") == pre.kind:
        everything[r["task"]] = r
    except (ValueError, KeyError, OSError):
      continue
  everything.update(results)
  write_results_md(eval_dir / "results.md", label, everything)
  return results


def write_results_md(path: Path, label: str, results: dict[str, dict]) -> None:
  lines = [f"# Downstream evaluation: {label}", ""]
  any_r = next(iter(results.values()), None)
  if any_r:
    i = any_r["encoder"]
    lines += [f"Checkpoint step {any_r['checkpoint_step']} ({any_r['kind']}), task {i['task']}, "
              f"width {i['width']}, {i['params']:,} encoder params, "
              f"{(i['flops_per_slice'] or float('nan')) / 1e6:.1f} MFLOPs per slice.", "",
              "Clip-level test accuracy (%), mean ± 95% t-interval half-width over seeds; "
              "linear probe on frozen slice embeddings, slice logits averaged per clip.", ""]
  lines += ["| task | accuracy | balanced accuracy | chance (majority / 1/C) | clips | skipped |",
            "|---|---|---|---|---|---|"]
  for task, r in results.items():
    emb = r["embeddings"]
    lines.append(f"| {task} | {_fmt(r)} | {_fmt(r, 'balanced_accuracy')} | "
                 f"{100 * r['chance']['accuracy']:.1f} / {100 * r['chance']['balanced_accuracy']:.1f} | "
                 f"{emb.get('clips', '-')} | {emb.get('skipped_files', 0)} |")
  ft = [(t, k, f) for t, r in results.items() for k, f in r["finetune"].items()]
  if ft:
    lines += ["", "Fine-tuning (last k blocks + head):", "",
              "| task | k | trained FLOPs | accuracy | balanced accuracy |", "|---|---|---|---|---|"]
    for t, k, f in ft:
      lines.append(f"| {t} | {k} | {100 * f['trained_flops_fraction']:.0f}% | {_fmt(f)} | "
                   f"{_fmt(f, 'balanced_accuracy')} |")
  path.write_text("\n".join(lines) + "\n")


def write_comparison(out: Path, models: dict[str, dict[str, dict]], tasks: list[str]) -> tuple[Path, Path]:
  """One markdown table (rows: models; columns: tasks) and a grouped bar chart."""
  out.mkdir(parents=True, exist_ok=True)
  names = list(models)
  short = [manifest_lib.short_name(t, "full") for t in tasks]
  any_r = next((r for rs in models.values() for r in rs.values()), {})
  p = any_r.get("protocol") or {}
  how = (f"features `{p.get('features', 'embedding')}`, clip pooling `{p.get('clip_pooling', 'logits')}`"
         f"{', BatchNorm re-estimated on train' if p.get('bn_reestimate') else ''}")
  lines = ["Clip-level test accuracy (%), linear probe (" + how + "), mean ± 95% t-interval "
           "half-width over seeds (Untrained: over init seeds).", "",
           "| model | step | " + " | ".join(short) + " |", "|---|---|" + "---|" * len(tasks)]
  for n in names:
    rs = models[n]
    step = next((r["checkpoint_step"] for r in rs.values()), "-")
    lines.append(f"| {n} | {step} | " + " | ".join(_fmt(rs[t]) if t in rs else "-" for t in tasks) + " |")
  ch = []
  for t in tasks:
    r = next((models[n][t] for n in names if t in models[n]), None)
    ch.append(f"{100 * r['chance']['accuracy']:.1f}" if r else "-")
  lines.append("| chance (majority) | | " + " | ".join(ch) + " |")
  lines += ["", "Balanced accuracy (%):", "", "| model | " + " | ".join(short) + " |",
            "|---|" + "---|" * len(tasks)]
  for n in names:
    rs = models[n]
    lines.append(f"| {n} | " + " | ".join(_fmt(rs[t], "balanced_accuracy") if t in rs else "-"
                                          for t in tasks) + " |")
  # Recipes are chosen on valid numbers, so the table shows them beside test: a gap that
  # appears on test only is a train/test shift (e.g. instrument's other soundfont), not lost information.
  avg = int(len(tasks) >= 2)   # a column for the average over tasks
  held_out = {"group": "held-out train groups", "package": "held-out train packages"}[
      p.get("valid_holdout", "group")]   # results written before the option: group
  lines += ["", "Valid accuracy (%) of the probe the valid split selected (split or "
            f"{held_out}; the numbers to choose a recipe on):", "",
            "| model | " + " | ".join(short + ["mean"] * avg) + " |",
            "|---|" + "---|" * (len(tasks) + avg)]
  for n in names:
    rs = models[n]
    cells = [_fmt(rs[t], "valid_accuracy") if t in rs else "-" for t in tasks]
    if avg:   # the four-task valid average: the statistic recipes are chosen on (README)
      v = [_stat(rs[t], "valid_accuracy").get("mean") if t in rs else None for t in tasks]
      cells.append(f"{100 * sum(v) / len(v):.1f}" if None not in v else "-")
    lines.append(f"| {n} | " + " | ".join(cells) + " |")
  if "Untrained" in models:
    lines += ["", "Paired difference vs Untrained (accuracy points; probe seed k vs init seed k):", "",
              "| model | " + " | ".join(short) + " |", "|---|" + "---|" * len(tasks)]
    for n in names:
      if n == "Untrained":
        continue
      cells = []
      for t in tasks:
        d = paired_difference(models[n][t], models["Untrained"][t]) if (
            t in models[n] and t in models["Untrained"]) else None
        cells.append(f"{100 * d['mean']:+.1f} ± {100 * d['half_width']:.1f}" if d else "-")
      lines.append(f"| {n} | " + " | ".join(cells) + " |")
    # Each init's own accuracies, so a method table can be recomputed from this file alone
    # (eval/seed_table.py) against more, or other, inits than one invocation scored.
    inits = {t: models["Untrained"][t].get("per_init") or [] for t in tasks if t in models["Untrained"]}
    n_inits = max((len(v) for v in inits.values()), default=0)
    if n_inits >= 2:
      lines += ["", "Untrained per init seed (test accuracy %, mean over probe seeds):", "",
                "| init | " + " | ".join(short) + " |", "|---|" + "---|" * len(tasks)]
      for k in range(n_inits):
        lines.append(f"| Untrained init {k} | " + " | ".join(
            f"{100 * inits[t][k]['accuracy']:.2f}" if k < len(inits.get(t, [])) else "-"
            for t in tasks) + " |")
  lines += method_table_lines(models, tasks, short)
  ft_rows = []
  for n in names:
    ks = sorted({k for r in models[n].values() for k in r["finetune"]})
    for k in ks:
      cells = []
      frac = None
      for t in tasks:
        f = models[n].get(t, {}).get("finetune", {}).get(k)
        cells.append(_fmt(f) if f else "-")
        frac = f["trained_flops_fraction"] if f else frac
      ft_rows.append(f"| {n} (fine-tune k={k}, {100 * (frac or 0):.0f}% FLOPs) | " + " | ".join(cells) + " |")
  if ft_rows:
    lines += ["", "Fine-tuning, accuracy (%):", "", "| model | " + " | ".join(short) + " |",
              "|---|" + "---|" * len(tasks)] + ft_rows
  md = out / "comparison.md"
  md.write_text("\n".join(lines) + "\n")

  import matplotlib
  matplotlib.use("Agg")
  import matplotlib.pyplot as plt
  import numpy as np
  fig, ax = plt.subplots(figsize=(max(6, 1.6 * len(tasks) * max(1, len(names)) / 2), 4))
  width = 0.8 / max(1, len(names))
  x = np.arange(len(tasks))
  for i, n in enumerate(names):
    means = [100 * models[n][t]["accuracy"]["mean"] if t in models[n] else np.nan for t in tasks]
    errs = [100 * models[n][t]["accuracy"]["half_width"] if t in models[n] else 0 for t in tasks]
    ax.bar(x + (i - (len(names) - 1) / 2) * width, means, width, yerr=errs, capsize=3, label=n)
  for j, c in enumerate(ch):
    if c != "-":
      ax.hlines(float(c), j - 0.4, j + 0.4, colors="k", linestyles="dashed", linewidth=1)
  ax.set_xticks(x, short)
  ax.set_ylabel("test accuracy (%)")
  ax.set_ylim(0, 100)
  ax.set_title("Linear probe (dashed: majority-class chance)")
  ax.legend(fontsize=8)
  fig.tight_layout()
  png = out / "comparison.png"
  buf = io.BytesIO()
  fig.savefig(buf, format="png", dpi=120)
  plt.close(fig)
  png.write_bytes(buf.getvalue())
  return md, png


def method_table_lines(models: dict[str, dict[str, dict]], tasks: list[str],
                       short: list[str]) -> list[str]:
  """The per-method table of comparison.md (rows named ``<method> s<k>``, 2+ runs) against
  the ``Untrained`` row's inits when there is one; [] without seeded rows."""
  names = list(models)
  lines: list[str] = []
  groups = seed_groups(names)
  avg = int(len(tasks) >= 2)   # a column for the suite average
  if groups:
    lines += ["", "Over pretraining seeds (rows named `<method> s<k>`): mean ± 95% t-interval over "
              "the runs' means" + (", and Welch's interval of the difference from Untrained's "
                                   "init seeds (bold: it excludes 0)" if "Untrained" in models else "")
              + ("; `mean`: the same over each run's (and each init's) average over the tasks"
                 if avg else "") + ":", "", "| method | runs | " + " | ".join(short + ["mean"] * avg)
              + (" | beats Untrained on |" if "Untrained" in models else " |"),
              "|---|---|" + "---|" * (len(tasks) + avg + ("Untrained" in models))]
    for method, members in groups.items():
      summ = method_summary([models[n] for n in members], models.get("Untrained"), tasks)
      cells = []
      for t in tasks + [SUITE_MEAN] * avg:
        if t not in summ:
          cells.append("-")
          continue
        c = f"{100 * summ[t]['mean']:.1f} ± {100 * summ[t]['half_width']:.1f}"
        v = summ[t].get("vs_untrained")
        if v:
          dc = f"{100 * v['mean']:+.1f} ± {100 * v['half_width']:.1f}"
          c += f" ({'**' + dc + '**' if v['beats'] or v['loses'] else dc})"
        cells.append(c)
      wins = ([str(sum(bool(summ[t].get("vs_untrained", {}).get("beats"))
                       for t in tasks if t in summ))] if "Untrained" in models else [])
      lines.append(f"| {method} | {len(members)} | " + " | ".join(cells + wins) + " |")
  return lines


# --baselines names: (row label, folder under <workdir>/eval/, BatchNorm statistics of the pool).
# "untrained" is the random init with its BatchNorm statistics measured on the run's own
# pool, as a trained model's running statistics are, so the row differs from a trained
# one by the learning alone; "untrained_init_bn" keeps the init's identity statistics
# (no normalisation; the baseline before 2026-12-05).
UNTRAINED = {"untrained": ("Untrained", "untrained", True),
             "untrained_init_bn": ("Untrained (init BN)", "untrained_init_bn", False)}


def combine_untrained(per_init: list[dict[str, dict]], label: str = "Untrained") -> dict[str, dict]:
  """One Untrained row over init seeds: each init's mean over probe seeds, then the mean
  and 95% t-interval over inits; ``per_init`` keeps each init's probe seeds for pairing."""
  from eval import probe
  out = {}
  for task in per_init[0]:
    runs = [r[task] for r in per_init if task in r]
    row = dict(runs[0], model=label, per_init=[
        {"seed": k, "accuracy": r["accuracy"]["mean"],
         "balanced_accuracy": r["balanced_accuracy"]["mean"],
         "per_seed": r["linear_probe"]["per_seed"]} for k, r in enumerate(runs)])
    for key in ("accuracy", "balanced_accuracy", "valid_accuracy"):
      vals = [(r.get(key) or r.get("linear_probe", {}).get(key) or {}).get("mean") for r in runs]
      if any(v is None for v in vals):   # results written before valid accuracy was reported
        continue
      mean, lo, hi = probe.t_interval(vals)
      row[key] = {"mean": mean, "half_width": (hi - lo) / 2, "n": len(runs), "over": "init seeds"}
    row["finetune"] = {}
    out[task] = row
  return out


def paired_difference(model: dict, untrained: dict) -> dict | None:
  """Accuracy of probe seed k of the model minus that of Untrained init seed k at probe
  seed k (same probe seed, so the pairs share minibatch order), mean and 95% interval."""
  from eval import probe
  inits = untrained.get("per_init") or []
  seeds = model["linear_probe"]["per_seed"]
  d = [s["accuracy"] - i["per_seed"][k]["accuracy"] for k, (s, i) in enumerate(zip(seeds, inits))
       if k < len(i["per_seed"])]
  if not d:
    return None
  mean, lo, hi = probe.t_interval(d)
  return {"mean": mean, "half_width": (hi - lo) / 2, "n": len(d)}


_SEED_SUFFIX = re.compile(r"^(.+) s(\d+)$")


def seed_groups(names: list[str]) -> dict[str, list[str]]:
  """Rows named ``<method> s<k>`` grouped by method (only methods with 2+ runs): the
  pretraining seeds of one recipe, summarised together."""
  groups: dict[str, list[str]] = {}
  for n in names:
    m = _SEED_SUFFIX.match(n)
    if m:
      groups.setdefault(m.group(1), []).append(n)
  return {k: v for k, v in groups.items() if len(v) >= 2}


SUITE_MEAN = "mean"   # method_summary's key for the average over tasks


def method_summary(runs: list[dict[str, dict]], untrained: dict[str, dict] | None,
                   tasks: list[str]) -> dict[str, dict]:
  """Per task: the mean and t-interval over pretraining runs of each run's mean accuracy
  (the interval of the method, not of one run's probe); with ``untrained``, Welch's
  interval of (runs) minus (the baseline's per-init means): seeds against seeds. Key
  ``SUITE_MEAN``: the same for the average over ``tasks`` (runs and inits that have all)."""
  from eval import probe

  def summarise(accs, inits):
    mean, lo, hi = probe.t_interval(accs)
    row = {"mean": mean, "half_width": (hi - lo) / 2, "n": len(accs)}
    if len(inits) >= 2:
      d, dlo, dhi = probe.welch_interval(accs, inits)
      row["vs_untrained"] = {"mean": d, "half_width": (dhi - dlo) / 2,
                             "beats": dlo > 0, "loses": dhi < 0}
    return row

  def init_accs(t):
    return [i["accuracy"] for i in ((untrained or {}).get(t, {}).get("per_init") or [])]

  out = {}
  for t in tasks:
    accs = [r[t]["accuracy"]["mean"] for r in runs if t in r]
    if len(accs) >= 2:
      out[t] = summarise(accs, init_accs(t))
  # The suite average: each run's (and each init's) mean over the tasks, then the same
  # intervals; averaging tasks first cancels part of the per-task seed noise.
  full = [r for r in runs if all(t in r for t in tasks)]
  per_init = [init_accs(t) for t in tasks]
  n_inits = min((len(a) for a in per_init), default=0)
  if len(tasks) >= 2 and len(full) >= 2:
    out[SUITE_MEAN] = summarise(
        [statistics.fmean(r[t]["accuracy"]["mean"] for t in tasks) for r in full],
        [statistics.fmean(a[k] for a in per_init) for k in range(n_inits)])
  return out


def main(argv):
  if len(argv) > 1:
    raise app.UsageError(f"unexpected arguments: {argv[1:]}")
  from ssl_audio.metric_writer import quiet_orbax_logging
  quiet_orbax_logging(logging.ERROR)
  from ssl_audio import pretrained
  if not FLAGS.workdir:
    raise app.UsageError("--workdir is required")
  tasks = expand_benchmarks(FLAGS.benchmarks)
  workdirs = [paths.absolute(w) for w in FLAGS.workdir]
  names = [n.strip() for n in FLAGS.names.split(",")] if FLAGS.names else []
  protocol = {"features": FLAGS.features, "clip_pooling": FLAGS.clip_pooling,
              "bn_reestimate": FLAGS.bn_reestimate, "valid_holdout": FLAGS.valid_holdout}
  sub = protocol_dir(protocol)
  if FLAGS.quant:   # results of a quantization override go beside the float ones
    sub = "-".join(p for p in (sub, f"quant_{FLAGS.quant}") if p)
  if FLAGS.tflite and len(FLAGS.tflite) != len(workdirs):
    raise app.UsageError("--tflite: give one file per --workdir")
  models: dict[str, dict[str, dict]] = {}
  common = dict(tasks=tasks, seeds=FLAGS.seeds, finetune_blocks=FLAGS.finetune_blocks,
                finetune_steps=FLAGS.finetune_steps, max_clips=FLAGS.max_clips or None,
                probe_steps=FLAGS.probe_steps, refresh=FLAGS.refresh, protocol=protocol)
  first_pre = None
  for i, wd in enumerate(workdirs):
    pre = pretrained.load_pretrained(wd, FLAGS.step, batch_size=FLAGS.batch_size,
                                     quant=FLAGS.quant)
    first_pre = first_pre or pre
    wd_sub = sub
    if FLAGS.tflite:
      from ssl_audio import export
      pre = export.tflite_embedder(pre, FLAGS.tflite[i])
      wd_sub = "-".join(p for p in (sub, "tflite_" + os.path.basename(FLAGS.tflite[i])) if p)
    label = names[i] if i < len(names) else os.path.basename(wd.rstrip("/"))
    logging.info("%s: %s", label, pre.info)
    models[label] = evaluate_model(label, pre, paths.path(wd) / "eval" / wd_sub,
                                   paths.path(wd) / "eval" / "cache",
                                   **common)
  for b in FLAGS.baselines:
    b = b.strip().lower()
    if b in UNTRAINED:
      label, folder, pool_bn = UNTRAINED[b]
      d = paths.path(first_pre.workdir) / "eval"
      per_init = []
      for k in range(max(1, FLAGS.untrained_seeds)):
        pre = pretrained.random_init(first_pre.meta, seed=k, workdir=first_pre.workdir,
                                     batch_size=FLAGS.batch_size)
        if pool_bn:
          pre = pretrained.with_pool_batch_stats(pre, seed=k)
        out_dir = d / folder / sub if k == 0 else d / folder / f"seed{k}" / sub
        per_init.append(evaluate_model(f"{label} seed {k}", pre, out_dir, d / "cache", **common))
      models[label] = combine_untrained(per_init, label)
    elif b:
      raise app.UsageError(f"--baselines: unknown baseline {b!r} (known: {', '.join(UNTRAINED)}); "
                           f"a Supervised baseline is a workdir of configs/supervised.py")
  if len(models) > 1:
    out = paths.path(FLAGS.out) if FLAGS.out else paths.path(workdirs[0]) / "eval" / sub
    md, png = write_comparison(out, models, tasks)
    print(md.read_text())
    print(f"comparison: {md} {png}")


if __name__ == "__main__":
  app.run(main)

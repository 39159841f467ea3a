r"""Any method's config plus in-training probes: the probe-accuracy-vs-step curves (issue #9).

Command (METHOD is a config file's name):
  python main.py --config=configs/probe_curve.py:temporal_gap --workdir=runs/tg_curve \
      --config.num_train_steps=2000

Probes (linear, 1 seed, up to 600 clips per benchmark, valid-selected lr/wd as in
eval/evaluators.py) on suite:digits and suite:instrument at step 0 (the random init) and
every 250 steps; `python -m eval.curves` plots them from metrics.jsonl.
"""

import importlib

import ml_collections

BENCHMARKS = ("digits", "instrument")


def get_config(method: str = "temporal_gap") -> ml_collections.ConfigDict:
  c = importlib.import_module(f"configs.{method}").get_config()
  for name in BENCHMARKS:
    c.evals[name] = ml_collections.ConfigDict(dict(
        type="linear_probe", benchmark=f"suite:{name}", every_steps=250, max_clips=600))
  return c

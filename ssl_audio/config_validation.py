"""Checks a config before anything is built or compiled; errors name the key."""

from __future__ import annotations

import numbers

import ml_collections

from ssl_audio import augment
from ssl_audio import frontend as fe


class ConfigError(ValueError):
  pass


def _need(ok: bool, key: str, msg: str) -> None:
  if not ok:
    raise ConfigError(f"config.{key}: {msg}")


def _int(c, key: str, lo: int) -> None:
  v = c
  for part in key.split("."):
    _need(part in v, key, "missing")
    v = v[part]
  _need(isinstance(v, numbers.Integral) and not isinstance(v, bool), key,
        f"must be an integer, got {v!r}")
  _need(v >= lo, key, f"must be >= {lo}, got {v}")


def _num(c, key: str, lo: float, hi: float = float("inf"), lo_open: bool = False) -> None:
  v = c
  for part in key.split("."):
    _need(part in v, key, "missing")
    v = v[part]
  _need(isinstance(v, numbers.Real) and not isinstance(v, bool), key, f"must be a number, got {v!r}")
  _need((v > lo if lo_open else v >= lo) and v <= hi, key,
        f"must be in {'(' if lo_open else '['}{lo}, {hi}], got {v}")


def check_config(c: ml_collections.ConfigDict) -> None:
  """Raises ConfigError naming the first bad key."""
  from ssl_audio import evaluators, tasks  # registries; imported late to keep this module light

  _int(c, "seed", 0)
  _int(c, "batch_size", 1)
  _int(c, "num_train_steps", 0)
  _int(c, "log_every_steps", 1)
  _int(c, "checkpoint_every_steps", 1)
  _int(c, "keep_checkpoints", 1)
  _int(c, "max_nonfinite_steps", 0)
  _int(c, "num_devices", 0)
  _need(c.optimizer.name in ("adam", "adamw", "sgd"), "optimizer.name",
        f"must be adam, adamw or sgd, got {c.optimizer.name!r}")
  _num(c, "optimizer.learning_rate", 0.0, 10.0, lo_open=True)
  _need(c.optimizer.schedule in ("constant", "cosine"), "optimizer.schedule",
        f"must be constant or cosine, got {c.optimizer.schedule!r}")
  _int(c, "optimizer.warmup_steps", 0)
  _num(c, "optimizer.weight_decay", 0.0)
  _num(c, "optimizer.grad_clip_norm", 0.0)
  _num(c, "encoder.width", 0.0, 64.0, lo_open=True)
  _int(c, "encoder.embedding_dim", 1)
  _need(c.encoder.norm in ("batch", "none"), "encoder.norm",
        f"must be batch or none, got {c.encoder.norm!r}")
  _need(c.encoder.get("quant", "none") in ("none", "w8a8"), "encoder.quant",
        f"must be none or w8a8 (ssl_audio.quant), got {c.encoder.get('quant')!r}")
  _need(c.encoder.input_norm in ("none", "pool"), "encoder.input_norm",
        f"must be none or pool, got {c.encoder.input_norm!r}")
  _num(c, "encoder.input_std", 0.0, lo_open=True)
  _int(c, "data.num_workers", 0)
  _need(isinstance(c.data.get("packed", False), bool), "data.packed",
        f"must be True or False, got {c.data.get('packed')!r}")
  _need(isinstance(c.data.get("packed_dir", ""), str), "data.packed_dir",
        f"must be a folder path, got {c.data.get('packed_dir')!r}")
  try:
    augment.AugmentConfig.from_config(c.augment).check()
  except (TypeError, ValueError) as e:
    raise ConfigError(str(e)) from None
  try:
    fe.FrontendConfig.from_dict(c.frontend).check()
  except (TypeError, ValueError) as e:
    raise ConfigError(str(e)) from None
  _need(bool(c.task.name), "task.name", f"must be one of {tasks.names()}")
  try:
    task_cls = tasks.get(c.task.name)
  except ValueError as e:
    raise ConfigError(str(e)) from None
  source = c.data.train if task_cls.needs_labels else c.data.pretrain
  key = "data.train" if task_cls.needs_labels else "data.pretrain"
  _need(isinstance(source, str) and bool(source), key, "must name a data source "
        "(suite:NAME, manifest:PATH.csv, folder:PATH or a folder of audio)")
  check = getattr(task_cls, "check_config", None)
  try:
    if check is not None:
      check(c)
    evaluators.check_configs(c)
  except ValueError as e:
    raise ConfigError(str(e)) from None

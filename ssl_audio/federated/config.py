"""``config.federated``: its checks (before anything is compiled) and the client-side
optimizer settings. Every error names its key."""

from __future__ import annotations

import ml_collections

from ssl_audio.config_validation import ConfigError, _int, _need, _num

SERVER_OPTIMIZERS = ("sgd", "adam")
BATCHNORM = ("average", "local")
PARALLELISM = ("sequential", "vmap")


def enabled(c: ml_collections.ConfigDict) -> bool:
  """True when the config asks for federated pretraining."""
  f = c.get("federated")
  return bool(f is not None and f.get("rounds", 0))


def group_columns(c: ml_collections.ConfigDict) -> list[str]:
  return [g.strip() for g in str(c.federated.group_by).split(",") if g.strip()]


def check_config(c: ml_collections.ConfigDict) -> None:
  """Raises ConfigError naming the first bad ``federated.*`` key (manifest-free checks)."""
  f = c.federated
  _int(c, "federated.rounds", 1)
  _int(c, "federated.clients_per_round", 1)
  _int(c, "federated.local_steps", 1)
  _int(c, "federated.log_every_rounds", 1)
  _int(c, "federated.checkpoint_every_rounds", 1)
  _need(f.server_optimizer in SERVER_OPTIMIZERS, "federated.server_optimizer",
        f"must be one of {SERVER_OPTIMIZERS}, got {f.server_optimizer!r}")
  _num(c, "federated.server_learning_rate", 0.0, 100.0, lo_open=True)
  _num(c, "federated.server_momentum", 0.0, 1.0)
  _need(f.batchnorm in BATCHNORM, "federated.batchnorm",
        f"must be one of {BATCHNORM}, got {f.batchnorm!r}")
  _need(f.client_parallelism in PARALLELISM, "federated.client_parallelism",
        f"must be one of {PARALLELISM}, got {f.client_parallelism!r}")
  _need(isinstance(f.iid, bool), "federated.iid", f"must be True or False, got {f.iid!r}")
  _need(isinstance(f.unroll_local_steps, bool), "federated.unroll_local_steps",
        f"must be True or False, got {f.unroll_local_steps!r}")
  cols = group_columns(c)
  _need(bool(cols), "federated.group_by", "must name at least one column (e.g. speaker,source,file)")
  _need(len(set(cols)) == len(cols), "federated.group_by", f"repeats a column: {f.group_by!r}")
  _need(c.get("distributed", False) is False, "distributed",
        "federated simulation runs in one process (real devices: ssl_audio/federated/flower_app.py)")
  d = f.dp
  _need(isinstance(d.enabled, bool), "federated.dp.enabled", f"must be True or False, got {d.enabled!r}")
  if not d.enabled:
    return
  _num(c, "federated.dp.clip_norm", 0.0, lo_open=True)
  _num(c, "federated.dp.noise_multiplier", 0.0)
  _num(c, "federated.dp.target_epsilon", 0.0)
  _num(c, "federated.dp.delta", 0.0, 1.0)
  _need(d.delta < 1.0, "federated.dp.delta", f"must be < 1, got {d.delta}")
  _need(d.noise_multiplier > 0 or d.target_epsilon > 0, "federated.dp.noise_multiplier",
        "DP needs a noise multiplier > 0 or federated.dp.target_epsilon > 0")
  _need(not (d.noise_multiplier > 0 and d.target_epsilon > 0), "federated.dp.target_epsilon",
        "give either federated.dp.noise_multiplier or federated.dp.target_epsilon, not both")
  try:
    import dp_accounting  # noqa: F401
  except ImportError:
    raise ConfigError("config.federated.dp.enabled: the privacy accountant needs dp-accounting "
                      "(pip install -r requirements-federated.txt)") from None


def check_clients(c: ml_collections.ConfigDict, num_clients: int) -> None:
  """Checks that need the number of clients (after the manifest is partitioned)."""
  _need(c.federated.clients_per_round <= num_clients, "federated.clients_per_round",
        f"{c.federated.clients_per_round} clients per round, but the data has only "
        f"{num_clients} clients (federated.group_by={c.federated.group_by!r})")


def client_config(c: ml_collections.ConfigDict) -> ml_collections.ConfigDict:
  """The config clients train with: the optimizer at a constant learning rate.

  Each round a client starts a fresh optimizer (standard FedAvg), so a warm-up or a
  decay measured in local steps would restart every round; the schedule is off.
  ``num_train_steps`` becomes the local steps of the whole run (examples seen =
  rounds x clients x local_steps x batch_size).
  """
  c = ml_collections.ConfigDict(c.to_dict())
  c.optimizer.schedule = "constant"
  c.optimizer.warmup_steps = 0
  c.num_train_steps = c.federated.rounds * c.federated.local_steps
  return c


__all__ = ["ConfigError", "enabled", "check_config", "check_clients", "client_config",
           "group_columns"]

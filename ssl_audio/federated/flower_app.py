"""Flower apps: the same client update and server aggregation, for real devices.

``client_app`` (a Flower ``ClientApp``) runs ``client.make_client_update`` on the
node's own clips; ``server_app`` (a ``ServerApp``) drives ``FederatedStrategy``, a
Flower ``FedAvg`` whose aggregation is ``server.py``'s (uploads weighted by clips,
then the server optimizer), so a Flower run computes what ``python main.py`` does in
one process (tests/test_federated.py checks the losses of a 2-client simulation).

Settings come from the Flower run config: ``config-file`` (a configs/*.py file),
``overrides`` (``"federated.rounds=10 batch_size=16"``) and ``workdir`` (the server
writes metrics.jsonl and the final checkpoint there, readable by ``eval.linear_eval``).
Each SuperNode's node config names its client: ``partition-id`` (an index into the
clients of ``data.pretrain`` as ``federated.group_by`` forms them; a phone with its own
manifest of one client uses 0) and optionally ``manifest`` (its local data source).
Commands: README "Federated pretraining". Needs ``pip install -r requirements-federated.txt``.

Not here (the in-process loop has them): DP-FedAvg, ``batchnorm="local"``, pool input
statistics, resuming a killed run.
"""

from __future__ import annotations

import ast
import importlib.util
import json
import os
from pathlib import Path
from typing import Any

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
from flwr.app import ArrayRecord, ConfigRecord, Context, Message, MetricRecord, RecordDict
from flwr.clientapp import ClientApp
from flwr.serverapp import Grid, ServerApp
from flwr.serverapp.strategy import FedAvg

from ssl_audio import checkpoint as ckpt
from ssl_audio import config_validation
from ssl_audio import manifest as manifest_lib
from ssl_audio import parallel
from ssl_audio import state as state_lib
from ssl_audio import tasks
from ssl_audio.config_validation import ConfigError
from ssl_audio.federated import clients as clients_lib
from ssl_audio.federated import config as fconfig
from ssl_audio.federated import server as server_lib
from ssl_audio.federated.client import make_client_update
from ssl_audio.federated.loop import client_key
from ssl_audio.metric_writer import MetricWriter

WEIGHT = "num-examples"   # FedAvg's weight key: the client's clips
REPO = Path(__file__).resolve().parents[2]


# ============================================================================ config

def load_config(config_file: str, overrides: str = "") -> ml_collections.ConfigDict:
  """configs/<x>.py's get_config() with ``key=value`` overrides (Python literals). A
  relative path that does not exist from here is taken from the repository root (Flower
  runs apps from its own folders)."""
  path = Path(config_file).expanduser()
  if not path.is_file() and not path.is_absolute():
    path = REPO / path
  spec = importlib.util.spec_from_file_location("flower_config", path)
  mod = importlib.util.module_from_spec(spec)
  spec.loader.exec_module(mod)
  c = mod.get_config()
  for item in overrides.split():
    key, _, text = item.partition("=")
    try:
      value = ast.literal_eval(text)
    except (ValueError, SyntaxError):
      value = text
    node = c
    *parents, leaf = key.split(".")
    for p in parents:
      node = node[p]
    node[leaf] = value
  return c


def check_config(c: ml_collections.ConfigDict) -> None:
  config_validation.check_config(c)
  fconfig.check_config(c)
  for ok, key, why in ((not c.federated.dp.enabled, "federated.dp.enabled", "DP-FedAvg"),
                       (c.federated.batchnorm == "average", "federated.batchnorm", "local statistics"),
                       (c.encoder.input_norm == "none", "encoder.input_norm", "pool statistics"),
                       (not tasks.get(c.task.name).needs_labels, "task.name", "labelled tasks")):
    if not ok:
      raise ConfigError(f"config.{key}: {why} run in the in-process simulation only "
                        "(python main.py), not in the Flower apps")


def _config(rc: dict) -> ml_collections.ConfigDict:
  c = load_config(str(rc["config-file"]), str(rc.get("overrides", "")))
  check_config(c)
  return c


# ============================================================================ trees <-> records

def _model(c: ml_collections.ConfigDict):
  task = state_lib.build_task(c)
  return task, state_lib.build_model(task)


def _template(c, task, model) -> tuple[dict, dict]:
  """(variables, upload) shape trees: what the server sends and a client returns."""
  batch = task.example_batch(2)
  shapes = jax.eval_shape(lambda: model.init(jax.random.key(0), batch, train=False))
  variables = {k: v for k, v in shapes.items() if k in ("params", "batch_stats") and v}
  return variables, dict(variables)   # batchnorm="average": statistics travel both ways


def to_record(tree) -> ArrayRecord:
  return ArrayRecord([np.asarray(x) for x in jax.tree.leaves(tree)])


def from_record(record: ArrayRecord, like) -> Any:
  return jax.tree.unflatten(jax.tree.structure(like), record.to_numpy_ndarrays())


# ============================================================================ the client

class _Worker:
  """One node's client: its clips, the jitted update (built once per process)."""

  def __init__(self, c: ml_collections.ConfigDict, partition_id: int, data: str | None):
    self.c = c
    if data:
      c.data.pretrain = data
    task_cls = tasks.get(c.task.name)
    m = manifest_lib.resolve(c.data.train if task_cls.needs_labels else c.data.pretrain)
    if task_cls.needs_labels:
      m = manifest_lib.ensure_split(m).where(split="train")
    self.clients = clients_lib.partition(m, fconfig.group_columns(c), c.federated.iid, c.seed)
    if not 0 <= partition_id < len(self.clients):
      raise ConfigError(f"node config partition-id={partition_id}: the data has "
                        f"{len(self.clients)} clients")
    self.cid = partition_id
    cc = fconfig.client_config(c)
    classes, counts = (m.label_counts() if task_cls.needs_labels else ([], []))
    self.task = state_lib.build_task(cc, classes, counts)
    self.model = state_lib.build_model(self.task)
    tx, schedule = state_lib.make_optimizer(cc)
    self.update = make_client_update(self.model, self.task, tx, schedule, parallel.make_mesh(1),
                                     c.federated.batchnorm, unroll=c.federated.unroll_local_steps)
    self.sampler = clients_lib.ClientSampler(m, self.task, self.clients, c.batch_size,
                                             c.federated.local_steps, c.seed, c.data.num_workers,
                                             classes or None, self.task.frontend.sample_rate)
    self.variables, _ = _template(cc, self.task, self.model)

  def train(self, rnd: int, variables) -> tuple[Any, dict]:
    batches = self.sampler.batches(rnd, self.cid)
    if batches is None:
      raise RuntimeError(f"client {self.clients.names[self.cid]}: no usable audio")
    up, _, metrics = self.update(variables, batches, client_key(self.c.seed, rnd, self.cid))
    metrics = {k: float(v) for k, v in jax.device_get(metrics).items()}
    metrics[WEIGHT] = int(self.clients.sizes[self.cid])
    return up, metrics


_WORKERS: dict[tuple, _Worker] = {}


def client_train(msg: Message, rc: dict, nc: dict) -> Message:
  """One round on this node: the server's weights in, the weight change and metrics out."""
  key = (rc["config-file"], rc.get("overrides", ""), int(nc["partition-id"]), nc.get("manifest"))
  if key not in _WORKERS:
    _WORKERS[key] = _Worker(_config(rc), int(nc["partition-id"]), nc.get("manifest"))
  w = _WORKERS[key]
  rnd = int(msg.content["config"]["server-round"]) - 1     # Flower counts rounds from 1
  variables = from_record(msg.content["arrays"], w.variables)
  up, metrics = w.train(rnd, variables)
  content = RecordDict({"arrays": to_record(up), "metrics": MetricRecord(metrics)})
  return Message(content=content, reply_to=msg)


# ============================================================================ the server

def _mean_metrics(contents: list[RecordDict], weight_key: str) -> MetricRecord:
  """Client metrics as the in-process loop logs them: the plain mean over the cohort."""
  ms = [next(iter(r.metric_records.values())) for r in contents]
  out = {k: float(np.mean([m[k] for m in ms])) for k in ms[0] if k != weight_key}
  out[weight_key] = int(sum(m[weight_key] for m in ms))
  return MetricRecord(out)


class FederatedStrategy(FedAvg):
  """FedAvg whose aggregation is server.py's: example-weighted mean of the clients'
  uploads (weight changes), then the configured server optimizer (FedAvg or FedAdam)."""

  def __init__(self, c: ml_collections.ConfigDict, variables: dict, num_nodes: int):
    f = c.federated
    super().__init__(fraction_train=min(1.0, f.clients_per_round / num_nodes),
                     fraction_evaluate=0.0, min_train_nodes=f.clients_per_round,
                     min_available_nodes=f.clients_per_round,
                     train_metrics_aggr_fn=_mean_metrics)
    self.variables = variables
    self.tx = server_lib.server_optimizer(f)
    self.opt_state = self.tx.init(variables["params"])
    self.apply = server_lib.make_apply(self.tx)
    self.history: list[dict] = []

  def aggregate_train(self, server_round, replies):
    replies = list(replies)
    valid, _ = self._check_and_log_replies(replies, is_train=True)
    if not valid:
      return None, None
    total, wsum = server_lib.zeros_like(self.variables), 0.0
    for msg in valid:
      up = from_record(msg.content["arrays"], self.variables)
      w = float(next(iter(msg.content.metric_records.values()))[WEIGHT])
      total, wsum = server_lib.accumulate(total, up, jnp.float32(w)), wsum + w
    update = server_lib.mean_update(total, wsum)
    v = self.variables
    params, stats, self.opt_state = self.apply(v["params"], v.get("batch_stats", {}),
                                               self.opt_state, update)
    self.variables = dict(v, params=params, **({"batch_stats": stats} if "batch_stats" in v else {}))
    metrics = _mean_metrics([m.content for m in valid], WEIGHT)
    self.history.append(dict(metrics, clients=len(valid)))
    return to_record(self.variables), metrics


def server_main(grid: Grid, rc: dict) -> FederatedStrategy:
  c = _config(rc)
  cc = fconfig.client_config(c)
  task, model = _model(cc)
  variables = state_lib.init_variables(model, task, c.seed)    # the in-process loop's init
  variables = {k: v for k, v in variables.items() if k in ("params", "batch_stats") and v}
  num_nodes = len(list(grid.get_node_ids())) or c.federated.clients_per_round
  strategy = FederatedStrategy(c, variables, num_nodes)
  strategy.start(grid, to_record(variables), num_rounds=c.federated.rounds)
  if rc.get("workdir"):   # relative: to the repository root, as config-file
    wd = Path(str(rc["workdir"])).expanduser()
    save(str(wd if wd.is_absolute() else REPO / wd), cc, task, model, strategy)
  return strategy


def make_apps(**run_config) -> tuple[ServerApp, ClientApp]:
  """(ServerApp, ClientApp) with default run-config values (``config-file``, ``overrides``,
  ``workdir``); the run config Flower passes (``flwr run``) takes precedence."""
  server_app, client_app = ServerApp(), ClientApp()

  @client_app.train()
  def _train(msg: Message, context: Context) -> Message:
    return client_train(msg, {**run_config, **context.run_config}, dict(context.node_config))

  @server_app.main()
  def _main(grid: Grid, context: Context) -> None:
    server_main(grid, {**run_config, **context.run_config})

  return server_app, client_app


# What pyproject.toml's [tool.flwr.app.components] names (README "Federated pretraining").
server_app, client_app = make_apps()


def save(workdir: str, cc, task, model, strategy: FederatedStrategy) -> None:
  """metrics.jsonl per round and the final server model as a TrainState checkpoint."""
  os.makedirs(workdir, exist_ok=True)
  writer = MetricWriter(workdir)
  for r, m in enumerate(strategy.history, start=1):
    writer.write(r, m)
  writer.close()
  tx, _ = state_lib.make_optimizer(cc)
  v = strategy.variables
  state = state_lib.TrainState(step=jnp.asarray(len(strategy.history), jnp.int32),
                               params=v["params"], batch_stats=v.get("batch_stats", {}),
                               opt_state=tx.init(v["params"]))
  info = state_lib.encoder_info(cc, task, state.variables())
  meta = {"config": json.loads(cc.to_json_best_effort()), "task": task.name, "frontend": task.frontend.to_dict(),
          "encoder": info, "classes": [], "class_counts": [], "data": cc.data.pretrain,
          "federated": {"engine": "flower"}}
  mgr = ckpt.manager(workdir)
  ckpt.save(mgr, len(strategy.history), state, {}, meta)
  mgr.wait_until_finished()
  mgr.close()

"""The federated round loop: ``python main.py`` runs it when ``config.federated.rounds > 0``.

Per round: pick a cohort (uniform without replacement; Poisson with DP), load each
client's ``local_steps`` batches from its own clips, run the client update (one
jitted function, ``client.py``), sum the uploads weighted by clips (uniform weights and
noise with DP), apply the server optimizer, log, maybe evaluate and checkpoint.

Checkpoint ``<round>``: ``state`` is a ``TrainState`` (step = round, the server's
params and statistics, a fresh client optimizer state) so every loader (``eval``,
``load_pretrained``) reads a federated run as any other; ``server`` holds the server
optimizer, the RNG and the clients' local statistics; ``data`` the round and counters.
Cohorts and batches are functions of (seed, round), so a run killed at any point
resumes to the parameters of an uninterrupted one.
"""

from __future__ import annotations

import os
import time

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
from absl import logging
from jax.sharding import NamedSharding, PartitionSpec as P

from ssl_audio import checkpoint as ckpt
from ssl_audio import config_validation
from ssl_audio import encoder as encoder_lib
from ssl_audio import environment
from ssl_audio import evaluators
from ssl_audio import manifest as manifest_lib
from ssl_audio import parallel
from ssl_audio import tasks
from ssl_audio import train
from ssl_audio.federated import clients as clients_lib
from ssl_audio.federated import config as fconfig
from ssl_audio.federated import dp
from ssl_audio.federated import server as server_lib
from ssl_audio.federated.client import make_client_update
from ssl_audio.metric_writer import MetricWriter
from ssl_audio.parallel import DATA_AXIS
from ssl_audio.state import TrainState


def privacy(c: ml_collections.ConfigDict, num_clients: int) -> dict:
  """DP settings of a run: sampling rate, δ, the noise multiplier (given or calibrated)
  and the ε of the whole run. {} without DP."""
  f = c.federated
  if not f.dp.enabled:
    return {}
  q = f.clients_per_round / num_clients
  delta = f.dp.delta or 1.0 / num_clients
  z = f.dp.noise_multiplier or dp.calibrate_noise(f.dp.target_epsilon, q, f.rounds, delta)
  return {"sampling_rate": q, "delta": delta, "noise_multiplier": z,
          "clip_norm": float(f.dp.clip_norm), "epsilon": dp.epsilon(z, q, f.rounds, delta)}


def client_key(seed: int, rnd: int, client: int) -> jax.Array:
  """The augmentation key of one client in one round (uint32 key data)."""
  k = jax.random.fold_in(jax.random.fold_in(jax.random.key(seed), rnd), client)
  return jax.random.key_data(k)


@jax.jit
def _set_client(stacked, k, stats):
  return jax.tree.map(lambda s, x: s.at[k].set(x), stacked, stats)


class Round:
  """One round's client work, sequential or vmapped, summed into ``total``."""

  def __init__(self, c, run, mesh, clip_norm):
    f = c.federated
    self.f, self.c, self.mesh = f, c, mesh
    self.vmap = f.client_parallelism == "vmap"
    self.update = make_client_update(run.model, run.task, run.tx, run.schedule, mesh,
                                     f.batchnorm, clip_norm, vmap=self.vmap,
                                     unroll=f.unroll_local_steps)
    lead = (None, None) if self.vmap else (None,)
    self.batch_sharding = NamedSharding(mesh, P(*lead, DATA_AXIS))

  def variables(self, state, server, cid):
    v = {"params": state.params}
    if state.batch_stats:
      v["batch_stats"] = (jax.tree.map(lambda s: s[cid], server.client_stats)
                          if self.f.batchnorm == "local" else state.batch_stats)
    return v

  def run(self, rnd, state, server, work, weights, total):
    """work: [(client id, batches)]; returns (total, weight sum, client_stats, metrics list)."""
    stats, mets, wsum = server.client_stats, [], 0.0
    if not self.vmap:
      for cid, b in work:
        up, new_stats, m = self.update(self.variables(state, server, cid),
                                       jax.device_put(b, self.batch_sharding),
                                       client_key(self.c.seed, rnd, cid))
        total = server_lib.accumulate(total, up, jnp.float32(weights[cid]))
        wsum += float(weights[cid])
        if self.f.batchnorm == "local" and state.batch_stats:
          stats = _set_client(stats, cid, new_stats)
        mets.append(m)
      return total, wsum, stats, mets
    chunk = self.f.clients_per_round   # one compiled shape; a short chunk is padded, weight 0
    for i in range(0, len(work), chunk):
      part = work[i:i + chunk]
      ids = [cid for cid, _ in part] + [part[0][0]] * (chunk - len(part))
      bs = [b for _, b in part] + [part[0][1]] * (chunk - len(part))
      w = np.array([weights[cid] for cid, _ in part] + [0.0] * (chunk - len(part)), np.float32)
      v = {"params": state.params}
      if state.batch_stats:
        v["batch_stats"] = (jax.tree.map(lambda s: s[np.array(ids)], server.client_stats)
                            if self.f.batchnorm == "local" else state.batch_stats)
      stacked = jax.tree.map(lambda *x: np.stack(x), *bs)
      keys = np.stack([client_key(self.c.seed, rnd, cid) for cid in ids])
      up, new_stats, m = self.update(v, jax.device_put(stacked, self.batch_sharding), keys)
      total = server_lib.accumulate_stacked(total, up, jnp.asarray(w))
      wsum += float(w.sum())
      host = jax.device_get(m)
      for j in range(len(part)):
        mets.append({k: v_[j] for k, v_ in host.items()})
        if self.f.batchnorm == "local" and state.batch_stats:
          stats = _set_client(stats, ids[j], jax.tree.map(lambda s: s[j], new_stats))
    return total, wsum, stats, mets


def train_and_evaluate(config: ml_collections.ConfigDict, workdir: str) -> dict:
  """Federated pretraining (or its resumption) in ``workdir``; returns the last logged metrics."""
  config_validation.check_config(config)
  fconfig.check_config(config)
  f = config.federated
  os.makedirs(workdir, exist_ok=True)
  mesh = parallel.make_mesh(config.num_devices or None)
  parallel.local_batch_size(config.batch_size, mesh)   # a client's batch splits over the devices
  mgr = ckpt.manager(workdir, max_to_keep=config.keep_checkpoints)

  # Clients first: a bad partition fails before anything is compiled.
  task_cls = tasks.get(config.task.name)
  manifest = manifest_lib.resolve(train.data_source(config, task_cls))
  pool = (manifest_lib.ensure_split(manifest).where(split="train") if task_cls.needs_labels
          else manifest)
  clients = clients_lib.partition(pool, fconfig.group_columns(config), f.iid, config.seed)
  fconfig.check_clients(config, len(clients))
  priv = privacy(config, len(clients))

  run = train.setup(fconfig.client_config(config), workdir, mgr, manifest)
  config = run.config
  assert len(run.manifest) == len(pool)
  sizes = clients.sizes
  meta = dict(run.meta, federated={
      "num_clients": len(clients), "clips_per_client": [int(s) for s in sizes],
      "clients": clients.names[:1000], **({"dp": priv} if priv else {})})
  logging.info("federated: %d clients (clips per client: min %d, median %d, max %d)%s",
               len(clients), sizes.min(), int(np.median(sizes)), sizes.max(),
               f"; DP noise multiplier {priv['noise_multiplier']:.4g}, ε = {priv['epsilon']:.3g} "
               f"at δ = {priv['delta']:.3g} after {f.rounds} rounds" if priv else "")

  server_tx = server_lib.server_optimizer(f)
  state = jax.device_put(run.state, parallel.replicated(mesh))
  local_bn = f.batchnorm == "local" and bool(state.batch_stats)
  server = server_lib.ServerState(
      opt_state=server_tx.init(state.params),
      rng=jax.random.key_data(jax.random.fold_in(jax.random.key(config.seed), 2**20)),
      client_stats=(jax.tree.map(lambda x: jnp.stack([x] * len(clients)), state.batch_stats)
                    if local_bn else {}))
  sampler = clients_lib.ClientSampler(
      run.manifest, run.task, clients, config.batch_size, f.local_steps, config.seed,
      config.data.num_workers, run.classes or None, run.task.frontend.sample_rate)
  start, examples_seen = 0, 0
  if mgr.latest_step() is not None:
    start = mgr.latest_step()
    state, data_state, restored_meta = ckpt.restore(mgr, start, ckpt.abstract(state))
    meta["environment"] = environment.history(restored_meta, start)
    server = ckpt.restore_server(mgr, start, ckpt.abstract(server))
    state = jax.device_put(state, parallel.replicated(mesh))
    examples_seen, sampler.skipped = data_state["examples_seen"], data_state["skipped"]
    logging.info("resumed from round %d", start)

  writer = MetricWriter(workdir, enabled=jax.process_index() == 0)
  evals = evaluators.make_evaluators(config, run.task.frontend, mesh)
  encoder = encoder_lib.from_config(config.encoder)
  if start == 0 and evals:
    train.evaluate_encoder(evals, encoder, state.variables(), run.task.frontend, mesh, writer, 0)

  rounds = Round(config, run, mesh, priv.get("clip_norm"))
  apply = server_lib.make_apply(server_tx)
  mean_update = jax.jit(server_lib.mean_update)
  template = {"params": state.params}
  if f.batchnorm == "average" and state.batch_stats:
    template["batch_stats"] = state.batch_stats
  up_bytes = server_lib.tree_bytes(template)
  down_bytes = server_lib.tree_bytes(state.variables())
  weights = np.ones(len(clients)) if priv else sizes.astype(np.float64)
  pending, last = [], {}
  t_log = time.time()
  with train._StopSignal() as stop:
    for rnd in range(start, f.rounds):
      cohort = sampler.cohort(rnd, f.clients_per_round, poisson=bool(priv))
      work = [(int(cid), b) for cid in cohort
              if (b := sampler.batches(rnd, int(cid))) is not None]
      total = server_lib.zeros_like(template)
      total, wsum, client_stats, mets = rounds.run(rnd, state, server, work, weights, total)
      rng = server.rng
      if priv:
        key, nxt = jax.random.split(jax.random.wrap_key_data(server.rng))
        rng = jax.random.key_data(nxt)
        upd = mean_update(total, wsum, (key, priv["noise_multiplier"] * priv["clip_norm"],
                                        float(f.clients_per_round)))
      elif wsum > 0:
        upd = mean_update(total, wsum)
      params, batch_stats, opt_state = state.params, state.batch_stats, server.opt_state
      if priv or wsum > 0:
        params, batch_stats, opt_state = apply(params, batch_stats, opt_state, upd)
      state = TrainState(step=state.step + 1, params=params, batch_stats=batch_stats,
                         opt_state=state.opt_state)
      server = server_lib.ServerState(opt_state=opt_state, rng=rng, client_stats=client_stats)
      n = len(work)
      examples = n * f.local_steps * config.batch_size
      examples_seen += examples
      host = jax.device_get(mets)
      rec = {k: float(np.mean([m[k] for m in host])) for k in host[0]} if host else {}
      rec.update(clients=n, examples=examples, examples_seen=examples_seen,
                 bytes_up=n * up_bytes, bytes_down=n * down_bytes, skipped_files=sampler.skipped)
      if priv:
        rec["clipped_fraction"] = (float(np.mean([m["update_norm"] > priv["clip_norm"]
                                                  for m in host])) if host else 0.0)
        rec["epsilon"] = dp.epsilon(priv["noise_multiplier"], priv["sampling_rate"], rnd + 1,
                                    priv["delta"])
      pending.append(rec)
      done = rnd + 1
      final = done == f.rounds
      if done % f.log_every_rounds == 0 or final or stop.received:
        dt = time.time() - t_log
        keys = sorted({k for r in pending for k in r})
        last = {k: float(np.mean([r[k] for r in pending if k in r])) for k in keys}
        for k in ("examples_seen", "skipped_files", "epsilon"):
          if k in pending[-1]:
            last[k] = pending[-1][k]
        last.update(rounds_per_minute=60 * len(pending) / dt,
                    examples_per_s=sum(r["examples"] for r in pending) / dt)
        writer.write(done, last)
        logging.info("round %d: %s", done, " ".join(f"{k}={v:.4g}" for k, v in last.items()))
        pending, t_log = [], time.time()
      due = [ev for ev in evals if done % ev.every_steps == 0 or final]
      if due:
        last.update(train.evaluate_encoder(due, encoder, state.variables(), run.task.frontend,
                                           mesh, writer, done))
        t_log = time.time()
      if done % f.checkpoint_every_rounds == 0 or final or stop.received:
        data_state = {"round": done, "examples_seen": examples_seen, "skipped": sampler.skipped}
        if priv:
          data_state["epsilon"] = rec["epsilon"]    # spent so far (meta: the whole run's)
        ckpt.save(mgr, done, state, data_state, meta, server=server)
      if stop.received:
        break
  sampler.close()
  mgr.wait_until_finished()
  writer.close()
  return last

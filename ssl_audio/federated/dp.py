"""Client-level differential privacy for FedAvg (DP-FedAvg, McMahan et al. 2018).

Each client's upload is clipped to L2 norm ``clip_norm``; the server adds Gaussian
noise of standard deviation ``noise_multiplier * clip_norm`` to the *sum* of the
clipped uploads and divides by the *expected* cohort size, so one client changes the
result by at most ``clip_norm / cohort`` whatever its data. Cohorts are Poisson
samples (each client joins a round with probability q = clients_per_round /
num_clients), which is what the accountant assumes. The privacy loss is counted by
``dp-accounting`` (RDP accountant, Poisson-sampled Gaussian).
"""

from __future__ import annotations

import contextlib
import logging

import jax
import jax.numpy as jnp
import optax


def clip(tree, clip_norm: float):
  """``tree`` scaled down to global L2 norm <= clip_norm (unchanged when already inside)."""
  norm = optax.tree.norm(tree)
  scale = jnp.minimum(1.0, clip_norm / jnp.maximum(norm, 1e-30))
  return jax.tree.map(lambda x: (x * scale).astype(x.dtype), tree)


def add_noise(tree, key, stddev: float):
  """``tree`` plus i.i.d. N(0, stddev^2) on every coordinate."""
  leaves, treedef = jax.tree.flatten(tree)
  keys = jax.random.split(key, len(leaves))
  noisy = [x + stddev * jax.random.normal(k, x.shape, x.dtype) for x, k in zip(leaves, keys)]
  return jax.tree.unflatten(treedef, noisy)


@contextlib.contextmanager
def _quiet_accountant():
  """The RDP accountant logs a warning for every fractional order it drops (hundreds per
  calibration at large sampling rates); the ε it returns is over the remaining orders."""
  logger = logging.getLogger("absl")
  level = logger.level
  logger.setLevel(logging.ERROR)
  try:
    yield
  finally:
    logger.setLevel(level)


def _event(noise_multiplier: float, sampling_rate: float, rounds: int):
  import dp_accounting as dpa
  return dpa.SelfComposedDpEvent(
      dpa.PoissonSampledDpEvent(sampling_rate, dpa.GaussianDpEvent(noise_multiplier)), rounds)


def epsilon(noise_multiplier: float, sampling_rate: float, rounds: int, delta: float) -> float:
  """ε after ``rounds`` rounds at ``delta`` (RDP accountant); 0 before the first round."""
  import dp_accounting as dpa
  if rounds <= 0:
    return 0.0
  with _quiet_accountant():
    acc = dpa.rdp.RdpAccountant()
    acc.compose(_event(noise_multiplier, sampling_rate, rounds))
    return float(acc.get_epsilon(delta))


def calibrate_noise(target_epsilon: float, sampling_rate: float, rounds: int, delta: float) -> float:
  """The smallest noise multiplier whose ε after ``rounds`` rounds is <= target_epsilon."""
  import dp_accounting as dpa
  with _quiet_accountant():
    return float(dpa.calibrate_dp_mechanism(
        dpa.rdp.RdpAccountant, lambda z: _event(z, sampling_rate, rounds), target_epsilon, delta,
        bracket_interval=dpa.ExplicitBracketInterval(1e-3, 1e3), tol=1e-4))

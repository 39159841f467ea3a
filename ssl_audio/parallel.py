"""Data parallelism: one ("data",) mesh over every device of every host.

Steps are written as per-device code and wrapped with ``jax.shard_map``; the code
averages gradients and metrics itself with ``lax.pmean(x, DATA_AXIS)``. This form
runs unchanged on 1 device, N devices and several hosts (stack.md §2: it never
hung on fake CPU devices, unlike auto-partitioned jit).
"""

from __future__ import annotations

import os
from typing import Any, Callable

import jax
import numpy as np
from absl import logging
from jax.sharding import NamedSharding, PartitionSpec as P

DATA_AXIS = "data"


def maybe_initialize_distributed(config) -> None:
  """Calls jax.distributed.initialize when the config or the environment asks for it.

  ``config.distributed`` True, or the usual cluster variables (Cloud TPU pods set
  them; so does SLURM), start the multi-host runtime. Must run before any JAX call.
  By hand: ``JAX_COORDINATOR_ADDRESS=host:port JAX_NUM_PROCESSES=2 JAX_PROCESS_ID=i``
  (on CPU also ``JAX_CPU_COLLECTIVES_IMPLEMENTATION=gloo``).
  """
  wanted = bool(config.get("distributed", False))
  env = any(k in os.environ for k in ("JAX_COORDINATOR_ADDRESS", "COORDINATOR_ADDRESS"))
  if wanted or env:
    # Without a cluster to detect (e.g. several processes on one machine), these two
    # variables give what jax.distributed cannot read from the environment itself.
    counts = {}
    if "JAX_NUM_PROCESSES" in os.environ and "JAX_PROCESS_ID" in os.environ:
      counts = dict(num_processes=int(os.environ["JAX_NUM_PROCESSES"]),
                    process_id=int(os.environ["JAX_PROCESS_ID"]))
    jax.distributed.initialize(**counts)
    logging.info("jax.distributed: process %d of %d, %d local / %d global devices",
                 jax.process_index(), jax.process_count(), jax.local_device_count(),
                 jax.device_count())


def make_mesh(num_devices: int | None = None) -> jax.sharding.Mesh:
  devices = jax.devices() if num_devices is None else jax.devices()[:num_devices]
  return jax.sharding.Mesh(np.array(devices), (DATA_AXIS,))


def replicated(mesh) -> NamedSharding:
  return NamedSharding(mesh, P())


def batch_sharded(mesh) -> NamedSharding:
  return NamedSharding(mesh, P(DATA_AXIS))


def shard_step(fn: Callable, mesh, in_specs: Any, out_specs: Any,
               donate_argnums: tuple[int, ...] = ()) -> Callable:
  """jit(shard_map(fn)) over the data axis."""
  return jax.jit(jax.shard_map(fn, mesh=mesh, in_specs=in_specs, out_specs=out_specs,
                               check_vma=False),
                 donate_argnums=donate_argnums)


def global_batch(local_batch: dict[str, np.ndarray], mesh) -> dict[str, jax.Array]:
  """This host's share of the batch -> global arrays sharded along the data axis."""
  sharding = batch_sharded(mesh)
  return jax.tree.map(lambda x: jax.make_array_from_process_local_data(sharding, x), local_batch)


def local_batch_size(global_batch_size: int, mesh) -> int:
  """Examples this host loads per step; the global batch must split evenly over devices."""
  n_dev = mesh.devices.size
  if global_batch_size % n_dev:
    raise ValueError(f"config.batch_size={global_batch_size} is not divisible by the "
                     f"{n_dev} devices of the mesh")
  return global_batch_size // jax.process_count()

"""What a run was computed on: versions, devices and CPU, stored in every checkpoint.

The same command, seed and data give bit-identical weights on one machine (tests/test_reliability),
but XLA compiles other code for another CPU (instruction set) or another jax, so a re-run elsewhere
is in effect a new seed. The checkpoint metadata keeps the list of environments a run was trained
on (``meta["environment"]``: one entry per change, from the step it took over), and a resume on a
different one says so in the log.
"""

from __future__ import annotations

import os
import platform
from importlib import metadata

from absl import logging

# The keys that change the numbers (compiled code and library versions); the rest is context.
NUMERIC_KEYS = ("cpu", "cpu_flags", "backend", "device_kind", "devices", "processes",
                "jax", "jaxlib", "flax", "optax", "xla_flags")
_PACKAGES = ("jax", "jaxlib", "flax", "optax", "orbax-checkpoint", "numpy")
# Instruction-set extensions XLA:CPU chooses kernels by.
_ISA = ("sse4_2", "avx", "avx2", "fma", "avx512f", "avx512bw", "avx512_vnni", "avx512_bf16",
        "amx_bf16", "amx_tile", "asimd", "sve")


def _cpuinfo() -> tuple[str, list[str]]:
  model, flags = "", []
  try:
    with open("/proc/cpuinfo") as f:
      for line in f:
        key, _, value = line.partition(":")
        key = key.strip()
        if key == "model name" and not model:
          model = value.strip()
        elif key in ("flags", "Features") and not flags:
          flags = [x for x in _ISA if x in set(value.split())]
  except OSError:   # not Linux: the platform's own names
    pass
  return model or platform.processor() or platform.machine(), flags


def _version(package: str) -> str | None:
  try:
    return metadata.version(package)
  except metadata.PackageNotFoundError:
    return None


def describe() -> dict:
  """This process's environment: CPU, cores, devices, library versions, XLA_FLAGS."""
  import jax
  cpu, flags = _cpuinfo()
  devices = jax.devices()
  out = {"cpu": cpu, "cpu_flags": flags, "cores": os.cpu_count(),
         "python": platform.python_version(), "os": platform.platform(terse=True),
         "backend": jax.default_backend(), "device_kind": devices[0].device_kind,
         "devices": len(devices), "processes": jax.process_count(),
         "xla_flags": os.environ.get("XLA_FLAGS", "")}
  out.update({p.replace("orbax-checkpoint", "orbax"): _version(p) for p in _PACKAGES})
  return out


def differences(a: dict, b: dict) -> dict[str, tuple]:
  """The numeric keys on which two environments differ: ``{key: (a's, b's)}``."""
  return {k: (a.get(k), b.get(k)) for k in NUMERIC_KEYS if a.get(k) != b.get(k)}


def history(restored: dict | None, step: int, current: dict | None = None) -> list[dict]:
  """The environment list to store from ``step`` on: the restored checkpoint's list (empty for
  checkpoints written before it existed), with ``current`` appended when it differs from the last
  entry. A resume on a different environment is logged: from there the run is not bit-identical
  to one trained on a single machine."""
  current = describe() if current is None else current
  past = list((restored or {}).get("environment") or [])
  if past:
    diff = differences(past[-1], current)
    if not diff:
      return past
    logging.warning("resuming at step %d in another environment than the checkpoint's (%s): the "
                    "run will not be bit-identical to one trained in a single environment", step,
                    "; ".join(f"{k}: {x!r} -> {y!r}" for k, (x, y) in diff.items()))
  return past + [dict(current, from_step=int(step))]

"""int8 in JAX with qwix: the encoder's convolutions and Dense in w8a8 fake quantization.

``encoder.quant = "w8a8"`` (a config key, stored in every checkpoint) wraps the
encoder with ``qwix.QtProvider``: int8 weights (per output channel, absmax) and int8
activations (per example, absmax) simulated in float, with straight-through
gradients. The parameter tree is the float one, so:

* QAT: train or fine-tune with the key set (``configs/qat.py`` starts from a float
  checkpoint via ``init_from``); the trainer, probes and checkpoints are unchanged.
* PTQ: evaluate a float checkpoint with the key set (``load_pretrained(...,
  quant="w8a8")``, ``python -m eval.linear_eval --quant=w8a8``). On this encoder the
  fake-quant forward equals qwix's PtqProvider with int8 ``QArray`` weights (tested);
  the int8 *file* for phones is ssl_audio.export's ``--quantize=int8``.

qwix is in requirements-export.txt; it is imported only when the key is set.
"""

from __future__ import annotations

MODES = ("none", "w8a8")


def check_mode(mode: str, key: str = "encoder.quant") -> str:
  if mode not in MODES:
    raise ValueError(f"config.{key}: must be one of {MODES}, got {mode!r}")
  return mode


def rules(mode: str, path: str = ".*"):
  import qwix
  check_mode(mode)
  return [qwix.QtRule(module_path=path, weight_qtype="int8", act_qtype="int8")]


def fake_quant(module, mode: str, path: str = ".*"):
  """``module`` (a top-level linen Module) with the convs and Dense of submodules
  matching ``path`` in ``mode`` ("encoder/.*": a task model's encoder); "none": itself."""
  if check_mode(mode) == "none":
    return module
  try:
    import qwix
  except ImportError as e:
    raise ImportError("encoder.quant needs qwix: pip install -r requirements-export.txt") from e
  return qwix.quantize_model(module, qwix.QtProvider(rules(mode, path)))


def ptq_params(module, variables: dict, example):
  """(qwix PtqProvider module, its params with int8 QArray weights) of a float model,
  for size and for the check that fake quant computes the PTQ forward."""
  import jax
  import qwix
  ptq = qwix.quantize_model(module, qwix.PtqProvider(rules("w8a8")))
  abstract = jax.eval_shape(ptq.init, jax.random.key(0), example)
  return ptq, qwix.quantize_params(variables["params"], abstract["params"])

r"""A checkpoint's encoder as a .tflite file, without TensorFlow.

    python -m ssl_audio.export --workdir=runs/cola --out=cola.tflite
    python -m ssl_audio.export --workdir=runs/cola --out=cola_int8.tflite --quantize=int8 \
        --calibration=manifest:$(python -m data.suite manifest pretrain)

Path: the checkpoint's encoder (``load_pretrained``) -> BatchNorm folded into the
frequency convolution (inference statistics; the encoder with ``norm="none"`` has
exactly that conv-with-bias layout) -> ``jax.export`` to StableHLO -> the
litert-converter MLIR passes -> a flatbuffer. Optional int8 with litert-quantizer
on the fp32 flatbuffer. Needs ``requirements-export.txt``.

``--input=waveform`` (default): [1, 15600] float32 samples in [-1, 1] at 16 kHz
(one 0.975-s slice) -> [1, 128]; the log-mel front-end of ``ssl_audio.frontend``
runs inside the graph (framed by static slices: the converter cannot lower the
framing gather with a dynamic batch). ``--input=logmel``: [1, 96, 64] log-mel
slices in. Signatures: ``serving_default`` (batch 1, static shapes: what XNNPACK
prefers) and, with ``--batch_signature`` (default), ``batch`` with a dynamic first
dimension. A JSON beside the file (``<out>.json``) holds what an app needs: sample
rate, slice samples, hop, n_mels, embedding size, signatures, the checkpoint's step,
task and width.

``--quantize``: ``none`` (fp32); ``dynamic`` (int8 weights, float activations); ``int8``
(int8 weights and activations, calibrated on ``--calibration_slices`` random slices
of ``--calibration``, default the checkpoint's pretraining pool). Only the encoder's
ops are quantized; the front-end stays float (quantizing it breaks the log: the
front-end's dynamic range is far wider than an int8 grid).
"""

from __future__ import annotations

import json
import os
import re
from typing import Callable, Sequence

import jax
import jax.numpy as jnp
import numpy as np

from ssl_audio import encoder as encoder_lib
from ssl_audio import frontend as fe

QUANTIZE = ("none", "dynamic", "int8")
INPUTS = ("waveform", "logmel")
BN_EPSILON = 1e-5          # flax.linen.BatchNorm's default, which the encoder uses
OUTPUT_NAME = "embedding"
BATCH_SIGNATURE = "batch"
DEFAULT_SIGNATURE = "serving_default"
# Ops of the encoder in the converted graph are located under the jitted function's
# module path (the Encoder's blocks and Dense); the front-end's are not.
ENCODER_TENSORS = r".*Encoder/.*"


class ExportError(ValueError):
  """A checkpoint, flag or graph that cannot be exported (the message names it)."""


# ============================================================================ JAX side

def fold_batchnorm(encoder: encoder_lib.Encoder, variables: dict
                   ) -> tuple[encoder_lib.Encoder, dict]:
  """(encoder with ``norm="none"``, its params) computing the same inference function.

  BatchNorm(conv(x)) with running statistics is conv'(x) + b': the kernel scaled per
  output channel by gamma / sqrt(var + eps), and b' = beta - mean * that scale.
  """
  if encoder.norm == "none":
    return encoder, {"params": variables["params"]}
  if encoder.norm != "batch":
    raise ExportError(f"encoder.norm={encoder.norm!r}: only 'batch' (folded) and 'none' export")
  if "batch_stats" not in variables:
    raise ExportError("encoder.norm='batch' but the checkpoint has no BatchNorm statistics")
  params = jax.tree.map(np.asarray, jax.device_get(dict(variables["params"])))
  stats = jax.device_get(variables["batch_stats"])
  folded = {}
  for name, block in params.items():
    if not name.startswith("block"):
      folded[name] = block
      continue
    bn, st = block["bn"], stats[name]["bn"]
    scale = np.asarray(bn["scale"], np.float64) / np.sqrt(np.asarray(st["var"], np.float64)
                                                          + BN_EPSILON)
    kernel = np.asarray(block["conv_freq"]["kernel"], np.float64) * scale
    bias = np.asarray(bn["bias"], np.float64) - np.asarray(st["mean"], np.float64) * scale
    folded[name] = {"conv_time": block["conv_time"],
                    "conv_freq": {"kernel": kernel.astype(np.float32),
                                  "bias": bias.astype(np.float32)}}
  plain = encoder_lib.Encoder(width=encoder.width, embedding_dim=encoder.embedding_dim,
                              channels=tuple(encoder.channels), norm="none",
                              input_mean=encoder.input_mean, input_std=encoder.input_std)
  return plain, {"params": folded}


def inference_fn(encoder: encoder_lib.Encoder, variables: dict, frontend: fe.FrontendConfig,
                 input_kind: str = "waveform") -> Callable[[jax.Array], jax.Array]:
  """The exported function, BatchNorm folded, weights closed over as constants.

  waveform [B, slice_samples] -> [B, D] (front-end inside), or log-mel [B, frames, mels].
  """
  if input_kind not in INPUTS:
    raise ExportError(f"--input={input_kind!r}: must be one of {INPUTS}")
  plain, folded = fold_batchnorm(encoder, variables)
  folded = jax.tree.map(jnp.asarray, folded)
  if input_kind == "logmel":
    return lambda mel: plain.apply(folded, mel, train=False)
  return lambda audio: plain.apply(folded, fe.log_mel(audio, frontend, gather_free=True),
                                   train=False)


def input_shape(frontend: fe.FrontendConfig, input_kind: str) -> tuple[int, ...]:
  """One example's shape (without the batch)."""
  if input_kind == "waveform":
    return (frontend.slice_samples,)
  return (frontend.slice_frames, frontend.n_mels)


# ============================================================================ StableHLO -> TFLite

def _converter():
  try:
    from litert_converter import converter_api_ext
    from litert_converter.mlir import ir, passmanager
  except ImportError as e:
    raise ImportError("export needs litert-converter: pip install -r requirements-export.txt") from e
  return converter_api_ext, ir, passmanager


# An op the passes could not lower (not an attribute such as ``mhlo.num_replicas = 1``).
_LEFT_OVER = re.compile(r"(?<![\w.])(stablehlo|chlo|mhlo)\.[a-z_]+\b(?!\s*=)")


def to_tflite(fn: Callable, example_shape: Sequence[int], input_name: str,
              batch_signature: bool = True) -> bytes:
  """fp32 flatbuffer of ``fn`` on float32 [1, *example_shape] (``serving_default``) and,
  with ``batch_signature``, on [b, *example_shape] with a dynamic b (``batch``)."""
  from jax import export as jax_export
  c, ir, passmanager = _converter()
  shapes = [(DEFAULT_SIGNATURE, "main", (1, *example_shape))]
  if batch_signature:
    b = jax_export.symbolic_shape("b")[0]
    shapes.append((BATCH_SIGNATURE, "batch", (b, *example_shape)))
  texts = []
  for _, func, shape in shapes:
    try:
      exported = jax_export.export(jax.jit(fn))(jax.ShapeDtypeStruct(shape, jnp.float32))
    except Exception as e:   # a model jax cannot trace or export
      raise ExportError(f"jax.export failed for input {shape}: {e}") from e
    txt = exported.mlir_module()
    texts.append(txt if func == "main" else txt.replace("@main(", f"@{func}(", 1))
  with ir.Context() as ctx, ir.Location.unknown():
    c.prepare_mlir_context(ctx)
    modules = [ir.Module.parse(t) for t in texts]
    module = modules[0] if len(modules) == 1 else c.merge_modules(modules)
    c.run_convert_to_tfl_passes(module, passmanager.PassManager(), c.ConvertToTFLConfig())
    left = sorted(set(m.group(0) for m in _LEFT_OVER.finditer(str(module))))
    if left:
      raise ExportError(f"the TFLite converter left ops it cannot lower: {left}")
    funcs = {str(op.attributes["sym_name"]).strip('"'): op for op in module.body.operations
             if "sym_name" in op.attributes}
    for signature, func, _ in shapes:
      c.set_signature(funcs[func], signature, [input_name], [OUTPUT_NAME])
    try:
      return bytes(c.export_flatbuffer_to_bytes(module.operation))
    except ValueError as e:
      raise ExportError(f"flatbuffer export failed: {e}") from e


# ============================================================================ int8 (litert-quantizer)

def quantize(fp32: bytes, mode: str, calibration: np.ndarray | None = None,
             input_name: str = "waveform", scope: str | None = ENCODER_TENSORS) -> bytes:
  """int8 flatbuffer of an fp32 one. ``mode``: dynamic (int8 weights, float
  activations) or int8 (int8 weights and activations, ranges from ``calibration``,
  [n, *example_shape] float32 inputs of the model). ``scope``: a regex of the tensor
  names to quantize (None: every supported op)."""
  if mode not in QUANTIZE or mode == "none":
    raise ExportError(f"--quantize={mode!r}: must be one of {QUANTIZE[1:]} here")
  try:
    from litert_quantizer import qtyping, quantizer
  except ImportError as e:
    raise ImportError("int8 export needs litert-quantizer: pip install -r requirements-export.txt") from e
  if mode == "int8" and (calibration is None or len(calibration) == 0):
    raise ExportError("--quantize=int8 needs calibration inputs (--calibration)")
  qt = quantizer.Quantizer(fp32)
  ops = qtyping.TFLOperationName.ALL_SUPPORTED
  regex = scope or ".*"
  if mode == "dynamic":
    qt.add_dynamic_config(regex=regex, operation_name=ops, num_bits=8)
    return bytes(qt.quantize(enable_progress_report=False).quantized_model)
  qt.add_static_config(regex=regex, operation_name=ops, activation_num_bits=8,
                       weight_num_bits=8)
  calibration = np.asarray(calibration, np.float32)
  # Every signature (subgraph) needs its own ranges: batch 1, and batches of 8.
  data = {DEFAULT_SIGNATURE: [{input_name: x[None]} for x in calibration]}
  if BATCH_SIGNATURE in _signature_names(fp32):
    data[BATCH_SIGNATURE] = [{input_name: calibration[i:i + 8]}
                             for i in range(0, len(calibration), 8)]
  result = qt.calibrate(data, num_threads=1)
  return bytes(qt.quantize(result, enable_progress_report=False).quantized_model)


def _signature_names(model: bytes) -> list[str]:
  from ai_edge_litert.interpreter import Interpreter
  return list(Interpreter(model_content=model).get_signature_list())


# ============================================================================ runtime

def run_tflite(model: bytes | str, x: np.ndarray, signature: str | None = None,
               num_threads: int = 1) -> np.ndarray:
  """Runs a model of this module on x [B, ...] float32 (``batch`` signature when B > 1
  and the file has one, else example by example)."""
  from ai_edge_litert.interpreter import Interpreter
  kw = {"model_path": model} if isinstance(model, str) else {"model_content": model}
  interp = Interpreter(num_threads=num_threads, **kw)
  sigs = interp.get_signature_list()
  x = np.asarray(x, np.float32)
  if signature is None:
    signature = BATCH_SIGNATURE if len(x) > 1 and BATCH_SIGNATURE in sigs else DEFAULT_SIGNATURE
  runner = interp.get_signature_runner(signature)
  name = sigs[signature]["inputs"][0]
  if signature == BATCH_SIGNATURE:
    return np.asarray(runner(**{name: x})[OUTPUT_NAME])
  return np.concatenate([np.asarray(runner(**{name: row[None]})[OUTPUT_NAME]) for row in x])


def tflite_embedder(pre, model_path: str):
  """``pre`` (a Pretrained of the checkpoint the file came from) whose ``embed_batch``
  runs the .tflite in ai-edge-litert, one slice at a time through ``serving_default``
  (as an app would: dynamic-range int8 quantizes activations per call, so batching
  would change the numbers); for ``python -m eval.linear_eval --tflite=...``."""
  import dataclasses
  from ssl_audio import pretrained
  if not os.path.isfile(model_path):
    raise FileNotFoundError(f"--tflite: {model_path} is not a file")

  @dataclasses.dataclass
  class TFLiteEmbedder(pretrained.Pretrained):
    model_path: str = ""

    def embed_batch(self, slices_audio) -> np.ndarray:
      if self.features != "embedding":
        raise ValueError(f"--tflite: the file outputs the embedding, not {self.features!r}")
      x = np.asarray(slices_audio)
      if x.dtype == np.int16:
        x = x.astype(np.float32) / 32768.0
      if len(x) == 0:
        return np.zeros((0, self.embedding_dim), np.float32)
      if not hasattr(self, "_runner"):
        from ai_edge_litert.interpreter import Interpreter
        interp = Interpreter(model_path=self.model_path, num_threads=1)
        sig = interp.get_signature_list()[DEFAULT_SIGNATURE]
        if sig["inputs"][0] != "waveform":
          raise ExportError(f"--tflite: {self.model_path} takes {sig['inputs'][0]}, not a waveform")
        self._runner = interp.get_signature_runner(DEFAULT_SIGNATURE)
      return np.concatenate([np.asarray(self._runner(waveform=row[None].astype(np.float32))
                                        [OUTPUT_NAME]) for row in x])

  fields = {f.name: getattr(pre, f.name) for f in dataclasses.fields(pre) if f.init}
  fields["identity"] = f"{pre.identity}-tflite-{os.path.basename(model_path)}"
  return TFLiteEmbedder(**fields, model_path=os.path.abspath(model_path))


# ============================================================================ checkpoint -> file

def export_checkpoint(workdir: str, out: str, step: int | None = None, input_kind: str = "waveform",
                      quantize_mode: str = "none", calibration: str | None = None,
                      calibration_slices: int = 200, batch_signature: bool = True,
                      seed: int = 0) -> dict:
  """Writes ``out`` (.tflite) and ``out + ".json"``; returns that metadata."""
  from ssl_audio import pretrained
  if quantize_mode not in QUANTIZE:
    raise ExportError(f"--quantize={quantize_mode!r}: must be one of {QUANTIZE}")
  if input_kind not in INPUTS:
    raise ExportError(f"--input={input_kind!r}: must be one of {INPUTS}")
  pre = pretrained.load_pretrained(workdir, step=step)
  frontend = pre.frontend
  fn = inference_fn(pre.encoder, pre.variables, frontend, input_kind)
  fp32 = to_tflite(fn, input_shape(frontend, input_kind), input_kind, batch_signature)
  model, cal_info = fp32, None
  if quantize_mode != "none":
    cal = None
    if quantize_mode == "int8":
      cal, cal_info = calibration_inputs(pre, calibration, calibration_slices, input_kind, seed)
    scope = ENCODER_TENSORS if input_kind == "waveform" else None
    model = quantize(fp32, quantize_mode, cal, input_kind, scope)
  os.makedirs(os.path.dirname(os.path.abspath(out)), exist_ok=True)
  with open(out, "wb") as f:
    f.write(model)
  meta = metadata(pre, input_kind, quantize_mode, batch_signature, len(model), model)
  if cal_info:
    meta["calibration"] = cal_info
  with open(out + ".json", "w") as f:
    json.dump(meta, f, indent=2)
  return meta


def metadata(pre, input_kind: str, quantize_mode: str, batch_signature: bool, n_bytes: int,
             model: bytes) -> dict:
  f = pre.frontend
  info = pre.info
  return {
      "format": "tflite", "input": input_kind, "quantize": quantize_mode,
      "input_shape": [1, *input_shape(f, input_kind)], "input_dtype": "float32",
      "input_range": "[-1, 1] (waveform)" if input_kind == "waveform" else "log-mel",
      "output": OUTPUT_NAME, "embedding_size": int(pre.encoder.embedding_dim),
      "signatures": _signature_names(model),
      "batch_signature": BATCH_SIGNATURE if batch_signature else None,
      "sample_rate": int(f.sample_rate), "slice_samples": int(f.slice_samples),
      "slice_seconds": f.slice_samples / f.sample_rate, "hop_length": int(f.hop_length),
      "win_length": int(f.win_length), "n_fft": int(f.n_fft), "n_mels": int(f.n_mels),
      "slice_frames": int(f.slice_frames), "frontend": f.to_dict(),
      "checkpoint": {"workdir": pre.workdir, "step": pre.step, "task": info["task"],
                     "width": info["width"], "params": info["params"],
                     "flops_per_slice": info["flops_per_slice"]},
      "bytes": n_bytes,
  }


def calibration_inputs(pre, source: str | None, n: int, input_kind: str, seed: int = 0
                       ) -> tuple[np.ndarray, dict]:
  """Model inputs for static int8: random slices of ``source`` (default: the
  checkpoint's pretraining pool), as waveforms or their log-mel."""
  from ssl_audio import manifest as manifest_lib
  from ssl_audio import normalization
  source = source or pre.meta.get("config", {}).get("data", {}).get("pretrain") or pre.meta.get("data")
  if not source:
    raise ExportError("--calibration: the checkpoint names no pretraining pool; pass one")
  try:
    manifest = manifest_lib.resolve(source)
  except Exception as e:
    raise ExportError(f"--calibration={source!r}: {e}") from e
  slices = normalization.random_slices(manifest, pre.frontend, n, seed)
  if input_kind == "logmel":
    slices = np.asarray(jax.jit(lambda a: fe.log_mel(a, pre.frontend))(slices))
  return slices, {"source": manifest.name, "slices": int(len(slices)), "seed": seed}


def main(argv):
  from absl import app, flags
  from ssl_audio.metric_writer import quiet_orbax_logging
  if len(argv) > 1:
    raise app.UsageError(f"unexpected arguments: {argv[1:]}")
  quiet_orbax_logging()
  F = flags.FLAGS
  try:
    meta = export_checkpoint(F.workdir, F.out, F.step, F.input, F.quantize, F.calibration,
                             F.calibration_slices, F.batch_signature, F.seed)
  except (ExportError, FileNotFoundError) as e:
    raise SystemExit(f"export: {e}")
  print(json.dumps({"out": F.out, "bytes": meta["bytes"], "signatures": meta["signatures"],
                    "step": meta["checkpoint"]["step"]}))


if __name__ == "__main__":
  from absl import app, flags
  flags.DEFINE_string("workdir", None, "A training workdir (or <workdir>/checkpoints/<step>).")
  flags.DEFINE_integer("step", None, "Checkpoint step (default: the latest).")
  flags.DEFINE_string("out", None, "Output .tflite path (metadata: <out>.json).")
  flags.DEFINE_enum("input", "waveform", list(INPUTS), "waveform: front-end in the graph.")
  flags.DEFINE_string("quantize", "none", f"One of {QUANTIZE}.")
  flags.DEFINE_string("calibration", None, "Audio for int8 calibration (default: the pool).")
  flags.DEFINE_integer("calibration_slices", 200, "Random slices used to calibrate int8.")
  flags.DEFINE_bool("batch_signature", True, "Also a 'batch' signature with a dynamic batch.")
  flags.DEFINE_integer("seed", 0, "Seed of the calibration slices.")
  flags.mark_flags_as_required(["workdir", "out"])
  app.run(main)

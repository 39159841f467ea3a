r"""Quantization-aware fine-tuning (QAT): a float checkpoint's encoder trained further
with int8 weights and activations simulated (qwix fake quant, ssl_audio/quant.py).

Command (the method after the colon is the checkpoint's pretext task; its loss is
the fine-tuning loss):
  python main.py --config=configs/qat.py:cola --workdir=runs/cola_qat \
      --config.init_from=runs/cola --config.num_train_steps=200
  python -m eval.linear_eval --workdir=runs/cola_qat --benchmarks=suite:all   # evaluated in w8a8
  python -m eval.linear_eval --workdir=runs/cola --benchmarks=suite:all --quant=w8a8   # PTQ

Keys (beyond the method's): ``init_from`` (a workdir or checkpoint step: encoder params
and BatchNorm statistics at step 0; the heads and the optimizer start fresh),
``encoder.quant = "w8a8"`` (stored in the checkpoint, so load_pretrained, the probes
and HEAR evaluate it quantized), a short constant schedule at a tenth of the method's
learning rate (fine-tuning, not pretraining). Needs requirements-export.txt (qwix).

Result: not measured yet (README "Mobile: export, int8, distillation").
"""

import importlib


def get_config(method: str = "cola"):
  c = importlib.import_module(f"configs.{method}").get_config()
  c.init_from = ""
  c.encoder.quant = "w8a8"
  c.num_train_steps = 200
  c.optimizer.learning_rate = c.optimizer.learning_rate * 0.1
  c.optimizer.schedule = "constant"
  c.optimizer.warmup_steps = 0
  return c

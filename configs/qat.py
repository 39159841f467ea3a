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

Result (2026-12-02, 2-core CPU; runs/cola = COLA width 1, 1000 steps; 200 QAT steps,
1.46 steps/s): clip test accuracy %, digits/language/msn/instrument (mean): float
22.0/28.8/78.9/47.5 (44.3); PTQ w8a8 18.1/28.3/78.8/46.4 (42.9); QAT w8a8
20.9/28.6/78.5/45.2 (43.3); QAT then static int8 .tflite 21.5/29.1/78.7/45.6 (43.7)
against 18.6/28.3/78.6/46.2 (42.9) for static int8 of the float checkpoint (README
"Mobile: export, int8, distillation").
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

r"""COLA pretrained on the speech-only view of the pool (the paper's RQ3 analogue).

Command:
  python main.py --config=configs/cola_speech.py --workdir=runs/cola_speech

The same recipe as configs/cola.py; only ``data.pretrain`` differs:
``suite:pretrain_speech`` is the 107 speech files (8 languages the language benchmark
does not use) of ``suite:pretrain``, which also holds music and ambience.

Result: see README, "Results" (RQ3).
"""

from configs import cola


def get_config():
  c = cola.get_config()
  c.data.pretrain = "suite:pretrain_speech"
  return c

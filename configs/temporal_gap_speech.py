r"""TemporalGap pretrained on the speech-only view of the pool (the paper's RQ3 analogue).

Command:
  python main.py --config=configs/temporal_gap_speech.py --workdir=runs/tg_speech

The same recipe as configs/temporal_gap.py; only ``data.pretrain`` differs:
``suite:pretrain_speech`` is the 107 speech files (8 languages the language
benchmark does not use) of ``suite:pretrain``, against its music and ambience too.

Result: not yet measured.
"""

from configs import temporal_gap


def get_config():
  c = temporal_gap.get_config()
  c.data.pretrain = "suite:pretrain_speech"
  return c

r"""COLA pretrained with FedAvg over the speakers and sources of suite:pretrain (RQ4).

Command:
  python main.py --config=configs/federated_cola.py --workdir=runs/fed_cola

The same clients and budget as configs/federated_temporal_gap.py (11 clients, 4 a round,
1 local step of batch 16: 64 examples a round, 700 rounds = 44,800 examples), with COLA's
model, sampler and loss: a client's negatives are the other 15 crops of its own batch,
so a non-IID client (one speaker, one package) contrasts only against its own audio.
COLA because it is the method here that learns something a random encoder lacks at this
budget (README "Results"); TemporalGap stays within the noise of its own init.

Result (2026-12-02, idle 2-core CPU; python -m eval.linear_eval --workdir=runs/fed_cola
--benchmarks=suite:all): 117 rounds/min, 3.03 MB up and down per client and round; pretext
loss 2.30 vs log 16 = 2.77 over the last 100 rounds (positive found 26%); clip test
accuracy digits 31.1, language 30.1, msn 75.7, instrument 44.8 (mean 45.4) against 42.4
for centralised COLA on the same 44,800 examples and 47.2 with --config.federated.iid=True
(README "RQ4: federated vs centralised": every variant, command and number).
"""

from configs import cola
from configs.federated_temporal_gap import fedavg_as_centralised_budget


def get_config():
  return fedavg_as_centralised_budget(cola.get_config())

"""Federated pretraining: FedAvg / FedAdam over the clients of a manifest, with
optional client-level differential privacy (DP-FedAvg), simulated in one process.

* ``clients``  manifest rows -> clients (speaker, else source, else file) and their batches
* ``client``   the client update: one pure jitted function (params, batches, rng) -> update
* ``server``   weighted averaging, the server optimizer, the server's state
* ``dp``       clipping, Gaussian noise and the privacy accountant (dp-accounting)
* ``loop``     the round loop (checkpoints, metrics); ``python main.py`` runs it when
               ``config.federated.rounds > 0``
* ``flower_app`` the same client update and aggregation as a Flower ClientApp/ServerApp

Every task runs unchanged: the client update is the trainer's own step body
(``train.make_step_body``) scanned over ``local_steps`` batches.
"""

"""Federated training on Flower: sites that learn together without sharing what they see.

Flower is the engine (its simulation engine, or a SuperLink with one SuperNode per
site); fleetmind brings the apps that run on it and the run directory they leave::

    settings.py       FederationSettings: the one set of settings of a run
    sites.py          each site's environment parameters (drawn, or a site config)
    site_training.py  a site's round: K steps of the ordinary learner from the global weights
    client_app.py     the ClientApp: train and evaluate messages -> site_training
    strategies.py     Flower's strategies, the finite-update guard, the DP wrappers
    secure_aggregation.py  SecAgg+ (Flower's workflow and mods): the server sees only sums
    accountant.py     the privacy spent, with dp-accounting, for the mechanism that ran
    server_app.py     the ServerApp: rounds, per-round metrics, the global checkpoint
    global_run.py     the run directory: config, rows, checkpoints, curve, summary
    run.py            fleetmind federate: resolve the settings, run an engine
    deployment.py     the deployment engine on this machine: SuperLink, SuperNodes, flwr run
    supernode.py      one site's SuperNode (fleetmind site): TLS, node key, its private env
    pki.py            its throwaway CA, TLS certificate and SuperNode keys

A Flower user can run the same apps with ``flwr run`` (docs/federated.md).
"""

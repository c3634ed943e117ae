"""Kubernetes deployment of fleetmind: manifests as data, written as a kustomization.

``fleetmind deploy serve PATH --name NAME`` renders, for a run directory or a model
repository, everything that a served, autoscaled fleet needs::

    spec = ServeDeployConfig(name="cartpole").checked(Path("runs/cartpole"))
    objects = serve_objects(spec)                 # plain dicts, one per Kubernetes object
    write_kustomization(Path("k8s/cartpole"), objects, files)   # atomically

``fleetmind deploy train ENV_ID`` renders a training fleet: learners in a
StatefulSet with a volume for the run directory, one actor Deployment per learner
(:mod:`fleetmind.deploy.train_render`).

The container image is built from ``deploy/Dockerfile`` (``scripts/build-image``).
:mod:`fleetmind.deploy.local_cluster` runs a rendered kustomization on one machine
(pods as processes in network namespaces), for tests and benchmarks.
"""

"""A Kubernetes cluster on one machine, for tests and benchmarks (root and iproute2).

It reads a rendered kustomization and runs each pod of its Deployments and
StatefulSets as processes in a network namespace of its own, on a bridge, with
the container's command, arguments, environment and volumes (folders of this
machine, bind-mounted); it answers the Services' names from a small DNS server
with the Ready pods they select, and runs the pods' probes as kubelet does::

    with LocalCluster(Path("k8s/cartpole"), tmp, claims={"cartpole-models": run}) as cluster:
        cluster.wait_ready()
        cluster.run_client([sys.executable, "-m", "fleetmind.deploy.local_cluster.load",
                            "dns:///cartpole.agents.svc.cluster.local:8001", "--model", "m"])
        cluster.scale("cartpole", 3)
        cluster.rolling_update("cartpole")

What it does not do (docs/deploy.md): no kube-proxy (a ClusterIP Service is
answered like a headless one, with the pods' addresses), no scheduler, no
resource limits, no NetworkPolicy, no image pulls.
"""

from fleetmind.deploy.local_cluster.cluster import LocalCluster
from fleetmind.deploy.local_cluster.pod_spec import FLEETMIND_IMAGE, Image

__all__ = ["FLEETMIND_IMAGE", "Image", "LocalCluster"]

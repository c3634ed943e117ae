"""What must hold between a training fleet's objects and the commands its pods run."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

from fleetmind.cli.actor_cmd import build_config as actor_config
from fleetmind.cli.main import build_parser
from fleetmind.cli.train_cmd import build_configs, flag_values
from fleetmind.config import config_to_dict
from fleetmind.deploy.train_pods import POD_INDEX_LABEL
from fleetmind.deploy.train_render import TrainRendering, referenced_secrets
from fleetmind.deploy.train_spec import CONFIG_FILE, RUN_DIR, TrainDeployment
from fleetmind.rpc.learner_service import SERVICE
from fleetmind.runtime.dist_config import (
    ActorConfig,
    DistConfig,
    LearnerServeConfig,
    apply_env,
)
from fleetmind.runtime.learner.collective import RankInfo

Case = tuple[TrainDeployment, TrainRendering]
Obj = dict[str, Any]


def _kind(rendering: TrainRendering, kind: str) -> list[Obj]:
    return [o for o in rendering.all_objects() if o["kind"] == kind]


def _learners(rendering: TrainRendering) -> Obj:
    (sts,) = _kind(rendering, "StatefulSet")
    return sts


def _learner(rendering: TrainRendering) -> Obj:
    (container,) = _learners(rendering)["spec"]["template"]["spec"]["containers"]
    return container


def _actors(rendering: TrainRendering) -> list[Obj]:
    return _kind(rendering, "Deployment")


def _values(container: Obj) -> dict[str, str]:
    return {e["name"]: e["value"] for e in container["env"] if "value" in e}


def _pod_env(container: Obj, ordinal: int) -> dict[str, str]:
    """The container's variables as kubelet gives them to the pod with ``ordinal``."""
    env = _values(container)
    for e in container["env"]:
        if "valueFrom" in e:
            path = e["valueFrom"]["fieldRef"]["fieldPath"]
            assert path == f"metadata.labels['{POD_INDEX_LABEL}']"
            env[e["name"]] = str(ordinal)
    return env


def _templates(rendering: TrainRendering) -> list[Obj]:
    return [
        o["spec"]["template"]
        for o in rendering.all_objects()
        if o["kind"] in {"StatefulSet", "Deployment", "Job"}
    ]


def test_every_variable_is_an_option_the_command_reads(trained: Case) -> None:
    _, rendering = trained
    learner_options = {f.name for f in dataclasses.fields(LearnerServeConfig)}
    actor_options = {f.name for f in dataclasses.fields(ActorConfig)}
    for name in _values(_learner(rendering)):
        if name.startswith("FLEETMIND_"):
            assert name.removeprefix("FLEETMIND_").lower() in learner_options, name
    for deployment in _actors(rendering):
        (container,) = deployment["spec"]["template"]["spec"]["containers"]
        assert container["args"] == ["actor"]
        for name in _values(container):
            assert name.startswith("FLEETMIND_")
            assert name.removeprefix("FLEETMIND_").lower() in actor_options, name


def test_the_learner_reads_its_command_line_and_settings(trained: Case, tmp_path: Path) -> None:
    dep, rendering = trained
    (config_map,) = _kind(rendering, "ConfigMap")
    settings = tmp_path / CONFIG_FILE
    settings.write_text(config_map["data"][CONFIG_FILE])
    args = list(_learner(rendering)["args"])
    assert args[0] == "learner"
    mounts = {m["name"]: m["mountPath"] for m in _learner(rendering)["volumeMounts"]}
    assert args[args.index("--config") + 1] == f"{mounts['config']}/{CONFIG_FILE}"
    args[args.index("--config") + 1] = str(settings)
    parsed = build_parser().parse_args(args)  # every flag is one `fleetmind learner` takes
    train, algo = build_configs(parsed)
    assert train.run_dir == Path(RUN_DIR)  # the same run on every start
    assert {**config_to_dict(train), "run_dir": None} == {
        **config_to_dict(dep.train),
        "run_dir": None,
    }
    assert config_to_dict(algo) == config_to_dict(dep.algo)
    dist = flag_values(parsed, DistConfig)
    assert dist["mode"] == dep.dist.mode
    assert dist.get("max_policy_lag") == dep.dist.max_policy_lag
    assert RUN_DIR.startswith(mounts["data"] + "/")
    listen = apply_env(LearnerServeConfig(), set(), _values(_learner(rendering)))
    ports = {p["containerPort"] for p in _learner(rendering)["ports"]}
    assert int(listen.listen.rpartition(":")[2]) in ports
    assert listen.insecure == dep.config.insecure
    assert (listen.token_file is not None) == (dep.config.token_secret is not None)


def test_several_learners_get_torchruns_variables(trained: Case) -> None:
    dep, rendering = trained
    sts = _learners(rendering)
    container = _learner(rendering)
    assert sts["spec"]["replicas"] == dep.dist.learners
    if dep.dist.learners == 1:
        assert RankInfo.from_env(_pod_env(container, 0)) is None
        return
    assert sts["spec"]["podManagementPolicy"] == "Parallel"  # the group meets all at once
    service = _kind(rendering, "Service")[0]
    assert service["metadata"]["name"] == sts["spec"]["serviceName"]
    assert service["spec"]["publishNotReadyAddresses"] is True  # named before Ready
    learner0 = f"{sts['metadata']['name']}-0.{sts['spec']['serviceName']}"
    for ordinal in range(dep.dist.learners):
        rank = RankInfo.from_env(_pod_env(container, ordinal))
        assert rank is not None
        assert (rank.rank, rank.world_size, rank.local_rank) == (ordinal, dep.dist.learners, 0)
        assert rank.master_addr == learner0
        by_name = {p["name"]: p["containerPort"] for p in container["ports"]}
        assert rank.master_port == by_name["rendezvous"]
        service_ports = {p["targetPort"]: p["port"] for p in service["spec"]["ports"]}
        assert service_ports["rendezvous"] == rank.master_port


def test_every_learner_has_actors_and_every_actor_a_learner(trained: Case) -> None:
    dep, rendering = trained
    sts = _learners(rendering)
    hosts = {
        f"{sts['metadata']['name']}-{r}.{sts['spec']['serviceName']}": r
        for r in range(sts["spec"]["replicas"])
    }
    grpc = {p["name"]: p["containerPort"] for p in _learner(rendering)["ports"]}["grpc"]
    fed: dict[int, int] = {}
    for deployment in _actors(rendering):
        (container,) = deployment["spec"]["template"]["spec"]["containers"]
        config = actor_config(build_parser().parse_args(["actor"]), _values(container))
        host, _, port = config.learner.rpartition(":")
        assert int(port) == grpc
        fed[hosts[host]] = fed.get(hosts[host], 0) + deployment["spec"]["replicas"]
        assert config.env_id == dep.train.env_id
        assert config.envs == dep.envs_per_actor
        assert "readinessProbe" not in container  # an actor serves nothing
    assert sorted(fed) == list(range(dep.dist.learners))
    assert min(fed.values()) >= 1
    assert sum(fed.values()) == dep.dist.actors


def test_selectors_match_their_pods_and_nothing_else(trained: Case) -> None:
    _, rendering = trained
    sts = _learners(rendering)
    learner_labels = sts["spec"]["template"]["metadata"]["labels"]
    actor_labels = [d["spec"]["template"]["metadata"]["labels"] for d in _actors(rendering)]
    assert sts["spec"]["selector"]["matchLabels"].items() <= learner_labels.items()
    for service in _kind(rendering, "Service"):
        assert service["spec"]["selector"].items() <= learner_labels.items()
        assert service["spec"]["clusterIP"] == "None"
        targets = {p["targetPort"] for p in service["spec"]["ports"]}
        assert targets <= {p["name"] for p in _learner(rendering)["ports"]}
    for deployment, labels in zip(_actors(rendering), actor_labels, strict=True):
        selector = deployment["spec"]["selector"]["matchLabels"]
        assert selector.items() <= labels.items()
        assert not selector.items() <= learner_labels.items()
        others = [a for a in actor_labels if a is not labels]
        assert not any(selector.items() <= other.items() for other in others)


def test_only_actors_reach_learners_and_only_learners_the_rendezvous(trained: Case) -> None:
    dep, rendering = trained
    learner_labels = _learners(rendering)["spec"]["template"]["metadata"]["labels"]
    actor_labels = [d["spec"]["template"]["metadata"]["labels"] for d in _actors(rendering)]
    ports = {p["name"]: p["containerPort"] for p in _learner(rendering)["ports"]}
    policies = {
        tuple(sorted(p["spec"]["podSelector"]["matchLabels"].items())): p
        for p in _kind(rendering, "NetworkPolicy")
    }
    assert len(policies) == 2

    def selects(selector: Obj, labels: dict[str, str]) -> bool:
        return bool(selector["matchLabels"].items() <= labels.items())

    for policy in policies.values():
        spec = policy["spec"]
        assert spec["policyTypes"] == ["Ingress"]
        if selects(spec["podSelector"], learner_labels):
            for rule in spec["ingress"]:
                peers = [peer["podSelector"] for peer in rule["from"]]  # no rule from anyone
                open_ports = {p["port"] for p in rule.get("ports", [])} or set(ports.values())
                if any(selects(s, a) for s in peers for a in actor_labels):
                    assert open_ports == {ports["grpc"]}
                else:
                    assert all(selects(s, learner_labels) for s in peers)
            if dep.dist.learners > 1:
                reach = [r for r in spec["ingress"] if "ports" not in r]
                assert reach  # learners reach each other on the rendezvous and gloo's ports
        else:
            assert all(selects(spec["podSelector"], a) for a in actor_labels)
            assert spec["ingress"] == []  # actors listen on nothing


def test_the_learner_probes_its_grpc_health(trained: Case) -> None:
    dep, rendering = trained
    container = _learner(rendering)
    numbers = {p["containerPort"] for p in container["ports"]}
    for probe in ("startupProbe", "readinessProbe", "livenessProbe"):
        spec = container[probe]
        if dep.config.tls_secret is None:
            assert spec["grpc"]["port"] in numbers
        else:
            assert spec["tcpSocket"]["port"] == "grpc"
    if dep.config.tls_secret is None:
        assert container["readinessProbe"]["grpc"]["service"] == SERVICE.full_name
    startup = container["startupProbe"]
    # the group may take --collective-timeout-s to meet before a learner listens
    assert startup["periodSeconds"] * startup["failureThreshold"] > dep.dist.collective_timeout_s


def test_every_pod_is_locked_down(trained: Case) -> None:
    for template in _templates(trained[1]):
        pod = template["spec"]
        assert pod["securityContext"]["runAsNonRoot"] is True
        assert pod["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}
        assert pod["automountServiceAccountToken"] is False
        for container in pod["containers"]:
            ctx = container["securityContext"]
            assert ctx["readOnlyRootFilesystem"] is True
            assert ctx["allowPrivilegeEscalation"] is False
            assert ctx["capabilities"] == {"drop": ["ALL"]}
            assert set(container["resources"]) == {"requests", "limits"}
            assert "/tmp" in {m["mountPath"] for m in container["volumeMounts"]}


def test_every_reference_is_rendered_or_documented(trained: Case) -> None:
    dep, rendering = trained
    names = {(o["kind"], o["metadata"]["name"]) for o in rendering.all_objects()}
    documented = referenced_secrets(dep)
    sts = _learners(rendering)
    (template,) = sts["spec"]["volumeClaimTemplates"]
    run_claim = f"{template['metadata']['name']}-{sts['metadata']['name']}-0"
    for pod in _templates(rendering):
        mounted = {m["name"] for c in pod["spec"]["containers"] for m in c["volumeMounts"]}
        declared = {v["name"] for v in pod["spec"]["volumes"]}
        if pod is sts["spec"]["template"]:
            declared.add(template["metadata"]["name"])
        assert mounted == declared
        for volume in pod["spec"]["volumes"]:
            if "secret" in volume:
                assert volume["secret"]["secretName"] in documented
                assert volume["secret"]["secretName"] in rendering.files["README.md"]
            if "configMap" in volume:
                assert ("ConfigMap", volume["configMap"]["name"]) in names
            if "persistentVolumeClaim" in volume:  # the reader: learner 0's claim
                assert volume["persistentVolumeClaim"] == {"claimName": run_claim, "readOnly": True}
        for container in pod["spec"]["containers"]:
            for env in container.get("env", []):
                assert "secretKeyRef" not in env.get("valueFrom", {})
    assert all(o["kind"] != "Secret" for o in rendering.all_objects())
    assert run_claim in rendering.files["README.md"]
    if dep.config.storage_class is not None:
        assert template["spec"]["storageClassName"] == dep.config.storage_class


def test_names_fit_kubernetes_limits(trained: Case) -> None:
    _, rendering = trained
    for obj in rendering.all_objects():
        assert len(obj["metadata"]["name"]) <= 63
    assert len(_learners(rendering)["metadata"]["name"]) <= 52  # the revision label adds 11

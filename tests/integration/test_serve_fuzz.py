"""Random requests never crash the server: every answer is OK or a proper client status.

The default run throws a few hundred requests; ``-m slow`` (or
``FLEETMIND_FUZZ_EXAMPLES=5000``) throws thousands.
"""

from __future__ import annotations

import os
from collections.abc import Iterator

import grpc
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from fleetmind.rpc.generated import grpc_predict_v2_pb2 as pb
from fleetmind.serve import Client
from fleetmind.serve.config import ServeConfig
from fleetmind.serve.testing import ServerThread, write_toy_checkpoint

EXAMPLES = int(os.environ.get("FLEETMIND_FUZZ_EXAMPLES", "300"))
PROPER = {
    grpc.StatusCode.OK,
    grpc.StatusCode.INVALID_ARGUMENT,
    grpc.StatusCode.NOT_FOUND,
    grpc.StatusCode.RESOURCE_EXHAUSTED,
}


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerThread]:
    run_dir = tmp_path_factory.mktemp("fuzz")
    write_toy_checkpoint(run_dir, seed=2)
    config = ServeConfig(
        host="127.0.0.1", port=0, model_name="m", max_message_mib=1, reload_interval_s=None
    )
    with ServerThread(run_dir, config) as running:
        yield running


@pytest.fixture(scope="module")
def raw_call(server: ServerThread) -> Iterator[grpc.UnaryUnaryMultiCallable]:
    with grpc.insecure_channel(f"127.0.0.1:{server.port}") as channel:
        yield channel.unary_unary("/inference.GRPCInferenceService/ModelInfer")


datatypes = st.sampled_from(["FP32", "FP64", "INT64", "BOOL", "BYTES", "FP16", "", "fp32", "??"])
shapes = st.lists(st.integers(-3, 9), max_size=4)
tensors = st.fixed_dictionaries(
    {"name": st.sampled_from(["observation", "obs", ""]), "datatype": datatypes, "shape": shapes}
)
requests = st.builds(
    lambda model, version, inputs, raw, fp32, outputs: (model, version, inputs, raw, fp32, outputs),
    st.sampled_from(["m", "", "other"]),
    st.sampled_from(["", "1", "2", "x"]),
    st.lists(tensors, max_size=3),
    st.lists(st.binary(max_size=200), max_size=3),
    st.lists(st.floats(width=32), max_size=40),
    st.lists(st.sampled_from(["action", "value", "logits", ""]), max_size=3),
)


def _encode(case: tuple) -> bytes:  # type: ignore[type-arg]
    model, version, inputs, raw, fp32, outputs = case
    request = pb.ModelInferRequest(model_name=model, model_version=version)
    for tensor in inputs:
        request.inputs.add(**tensor)
    if inputs and fp32:
        request.inputs[0].contents.fp32_contents.extend(fp32)
    request.raw_input_contents.extend(raw)
    for name in outputs:
        request.outputs.add(name=name)
    return request.SerializeToString()


def _status(call: grpc.UnaryUnaryMultiCallable, payload: bytes) -> grpc.StatusCode:
    try:
        call(payload, timeout=10)
    except grpc.RpcError as exc:
        return exc.code()  # type: ignore[no-any-return]
    return grpc.StatusCode.OK


def _fuzz(raw_call: grpc.UnaryUnaryMultiCallable, examples: int) -> None:
    @settings(max_examples=examples, deadline=None, suppress_health_check=list(HealthCheck))
    @given(st.one_of(requests.map(_encode), st.binary(max_size=300)))
    def check(payload: bytes) -> None:
        assert _status(raw_call, payload) in PROPER

    check()


def test_random_requests_get_proper_statuses(server: ServerThread, raw_call) -> None:  # type: ignore[no-untyped-def]
    _fuzz(raw_call, EXAMPLES)
    with Client(f"127.0.0.1:{server.port}") as client:
        assert client.server_ready()


@pytest.mark.slow
def test_thousands_of_random_requests(server: ServerThread, raw_call) -> None:  # type: ignore[no-untyped-def]
    _fuzz(raw_call, max(EXAMPLES, 5000))
    with Client(f"127.0.0.1:{server.port}") as client:
        assert client.server_ready()

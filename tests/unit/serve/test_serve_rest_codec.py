"""REST bodies become the gRPC flavour's messages, and outputs become REST replies."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import grpc
import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from fleetmind.core import errors
from fleetmind.core.errors import InvalidInputError
from fleetmind.rpc.status import HTTP_STATUS, http_status
from fleetmind.serve.batcher import BatchPolicy
from fleetmind.serve.config import ServeConfig
from fleetmind.serve.model import LoadedModel, ServedModel, agent_forward, build_served_model
from fleetmind.serve.protocol import decode_observations, requested_outputs
from fleetmind.serve.rest_codec import infer_reply, infer_request
from fleetmind.serve.testing import toy_agent

OBS = np.arange(8, dtype=np.float32).reshape(2, 4) / 10


@pytest.fixture(scope="module")
def model() -> ServedModel:
    return build_served_model(
        "m", "1", LoadedModel(toy_agent()), Path("toy"), policy=BatchPolicy(in_thread=False)
    )


def _body(**document: Any) -> bytes:
    return json.dumps(document).encode()


def _tensor(**overrides: Any) -> dict[str, Any]:
    tensor = {"name": "observation", "shape": [2, 4], "datatype": "FP32", "data": OBS.tolist()}
    return tensor | overrides


@pytest.mark.parametrize("data", [OBS.tolist(), OBS.ravel().tolist(), [[0, 0, 0, 0], [1, 2, 3, 4]]])
def test_json_data_flat_nested_or_integer_decodes_like_raw_bytes(
    model: ServedModel, data: list[Any]
) -> None:
    request, binary = infer_request(_body(inputs=[_tensor(data=data)]), None)
    assert not binary
    rows = decode_observations(request, model)
    np.testing.assert_array_equal(rows, np.asarray(data, np.float32).reshape(2, 4))


def test_binary_input_and_output_flags(model: ServedModel) -> None:
    head = _body(
        id="r1",
        inputs=[_tensor(data=None) | {"parameters": {"binary_data_size": 32}}],
        outputs=[{"name": "value", "parameters": {"binary_data": True}}, {"name": "action"}],
        parameters={"binary_data_output": False},
    ).replace(b', "data": null', b"")
    request, binary = infer_request(head + OBS.tobytes(), len(head))
    assert request.id == "r1"
    np.testing.assert_array_equal(decode_observations(request, model), OBS)
    names = requested_outputs(request, model)
    assert names == ("value", "action")
    outputs = agent_forward(toy_agent())(OBS)
    body, length = infer_reply(model, request, names, outputs, binary)
    assert length is not None
    reply = json.loads(body[:length])
    assert reply["id"] == "r1"
    assert reply["outputs"][0] == {
        "name": "value",
        "datatype": "FP32",
        "shape": [2],
        "parameters": {"binary_data_size": 8},
    }
    assert reply["outputs"][1]["data"] == np.asarray(outputs["action"]).tolist()
    np.testing.assert_array_equal(np.frombuffer(body[length:], np.float32), outputs["value"])


@pytest.mark.parametrize(
    ("body", "length", "message"),
    [
        (b"\xff\xfe", None, "not JSON"),
        (b"null", None, "send an object"),
        (_body(inputs=[]), None, "'inputs' is empty"),
        (_body(inputs=[1]), None, "inputs[0] is not an object"),
        (_body(inputs=[_tensor(name=3)]), None, "'inputs[0].name' is 3"),
        (_body(inputs=[_tensor(shape=[2, "4"])]), None, "list of integers"),
        (_body(inputs=[_tensor(shape=[2, True])]), None, "list of integers"),
        (_body(inputs=[_tensor(shape=[-2, 4])]), None, "negative dimension"),
        (_body(inputs=[_tensor(data=[True] * 8)]), None, "takes numbers"),
        (_body(inputs=[_tensor(data="1,2")]), None, "send a list of numbers"),
        (_body(inputs=[_tensor(data=[1] * 9)]), None, "holds 9 values"),
        (_body(inputs=[_tensor(data=[10**30] * 8)]), None, "takes numbers"),
        (_body(inputs=[_tensor(datatype="BYTES")]), None, "'BYTES' is not supported"),
        (
            _body(inputs=[{"name": "observation", "shape": [2, 4], "datatype": "FP32"}]),
            None,
            "no 'data'",
        ),
        (_body(inputs=[_tensor()], outputs=[{"name": 1}]), None, "'outputs[0].name' is 1"),
        (_body(inputs=[_tensor()], outputs=["value"]), None, "outputs[0] is not an object"),
        (_body(inputs=[_tensor()], parameters={"binary_data_output": 1}), None, "true or false"),
        (_body(inputs=[_tensor()]), 10_000, "Inference-Header-Content-Length is 10000"),
        (_body(inputs=[_tensor()]) + b"xx", None, "not JSON"),
        (_body(inputs=[_tensor()]) + b"xx", len(_body(inputs=[_tensor()])), "2 bytes follow"),
        (b"[" * 100_000, None, "JSON"),
    ],
)
def test_bad_bodies_say_what_is_wrong(body: bytes, length: int | None, message: str) -> None:
    with pytest.raises(InvalidInputError, match=message.replace("[", r"\[").replace("]", r"\]")):
        infer_request(body, length)


def test_every_error_class_has_one_http_status() -> None:
    assert http_status(errors.InvalidInputError("x")) == 400
    assert http_status(errors.NotFoundError("x")) == 404
    assert http_status(errors.OverloadedError("x")) == 429
    assert http_status(errors.AuthenticationError("x")) == 401
    assert http_status(errors.UnavailableError("x")) == 503
    assert http_status(ValueError("not ours")) == 500
    assert HTTP_STATUS[grpc.StatusCode.OK] == 200


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"http_port": 70000}, "http_port=70000"),
        ({"http_port": 8001, "port": 8001}, "gRPC port too"),
        ({"http_body_timeout_s": 0}, "http_body_timeout_s=0"),
    ],
)
def test_http_settings_are_validated(overrides: dict[str, Any], message: str) -> None:
    with pytest.raises(errors.ConfigError, match=message):
        ServeConfig(**overrides).validate()  # type: ignore[arg-type]


_JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=8),
    lambda inner: st.lists(inner, max_size=6) | st.dictionaries(st.text(max_size=8), inner),
    max_leaves=30,
)
_TENSOR = st.fixed_dictionaries(
    {},
    optional={
        "name": st.sampled_from(["observation", "x"]) | _JSON,
        "shape": st.lists(st.integers(-2, 5), max_size=3) | _JSON,
        "datatype": st.sampled_from(["FP32", "INT64", "BOOL", "FOO"]) | _JSON,
        "data": st.lists(st.floats(width=32) | st.integers(-9, 9), max_size=12) | _JSON,
        "parameters": st.fixed_dictionaries({"binary_data_size": st.integers(-1, 40) | _JSON}),
    },
)
_DOCUMENT = st.fixed_dictionaries(
    {},
    optional={
        "id": _JSON,
        "inputs": st.lists(_TENSOR, max_size=2) | _JSON,
        "outputs": st.lists(st.fixed_dictionaries({"name": _JSON}), max_size=2) | _JSON,
        "parameters": st.dictionaries(st.sampled_from(["binary_data_output"]), _JSON),
    },
)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(document=_DOCUMENT, tail=st.binary(max_size=40), split=st.booleans())
def test_any_body_is_decoded_or_refused_with_a_reason(
    model: ServedModel, document: dict[str, Any], tail: bytes, split: bool
) -> None:
    head = json.dumps(document).encode()
    try:
        request, _ = infer_request(head + tail, len(head) if split else None)
        decode_observations(request, model)
        requested_outputs(request, model)
    except InvalidInputError as exc:  # anything else fails the test
        message = str(exc)
    else:
        return
    assert message, "a refusal must say why"

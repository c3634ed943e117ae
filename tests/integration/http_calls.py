"""Plain HTTP calls for the REST tests (the standard library's client, nothing of ours)."""

from __future__ import annotations

import http.client
import json
import ssl
from typing import Any


def call(
    port: int,
    method: str,
    path: str,
    body: bytes | None = None,
    headers: dict[str, str] | None = None,
    *,
    host: str = "127.0.0.1",
    tls: ssl.SSLContext | None = None,
    timeout: float = 10.0,
) -> tuple[int, dict[str, str], bytes]:
    """``(status, headers, body)`` of one request on a fresh connection."""
    if tls is None:
        conn: http.client.HTTPConnection = http.client.HTTPConnection(host, port, timeout=timeout)
    else:
        conn = http.client.HTTPSConnection(host, port, timeout=timeout, context=tls)
    try:
        conn.request(method, path, body=body, headers=headers or {})
        reply = conn.getresponse()
        return reply.status, dict(reply.getheaders()), reply.read()
    finally:
        conn.close()


def infer_body(rows: Any, **extra: Any) -> bytes:
    """A JSON inference request carrying ``rows`` as the observation input."""
    import numpy as np

    array = np.asarray(rows, dtype=np.float32)
    tensor = {
        "name": "observation",
        "shape": list(array.shape),
        "datatype": "FP32",
        "data": array.tolist(),
    }
    return json.dumps({"inputs": [tensor], **extra}).encode()


def post_json(
    port: int, path: str, body: bytes, headers: dict[str, str] | None = None, **kwargs: Any
) -> tuple[int, Any]:
    """``(status, decoded JSON reply)`` of a POST."""
    sent = {"Content-Type": "application/json", **(headers or {})}
    status, _, reply = call(port, "POST", path, body, sent, **kwargs)
    return status, json.loads(reply)

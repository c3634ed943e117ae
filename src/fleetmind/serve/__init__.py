"""Serving agents over the Open Inference Protocol (KServe V2) with dynamic batching.

Server: ``fleetmind serve PATH`` (:func:`fleetmind.serve.server.serve`). Client::

    from fleetmind.serve import Client
    with Client("localhost:8001") as client:
        action = client.act("cartpole", observation)

The client module imports no torch; the server modules load lazily.
"""

from fleetmind.serve.client import Client, InferReply, ModelInfo

__all__ = ["Client", "InferReply", "ModelInfo"]

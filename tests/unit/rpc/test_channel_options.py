"""Channel settings become the gRPC channel arguments they stand for."""

from fleetmind.rpc.channel import ChannelConfig


def test_reconnect_backoff_is_bounded_only_when_asked() -> None:
    default = dict(ChannelConfig().options())
    assert "grpc.max_reconnect_backoff_ms" not in default
    bounded = dict(ChannelConfig(max_reconnect_backoff_s=2.0).options())
    assert bounded["grpc.max_reconnect_backoff_ms"] == 2000
    assert bounded["grpc.initial_reconnect_backoff_ms"] == 1000
    tiny = dict(ChannelConfig(max_reconnect_backoff_s=0.01).options())
    assert tiny["grpc.max_reconnect_backoff_ms"] == 100

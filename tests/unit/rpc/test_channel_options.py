"""Channel and server settings become the gRPC arguments they stand for."""

import json

import pytest

from fleetmind.core.errors import ConfigError
from fleetmind.rpc.channel import ChannelConfig
from fleetmind.rpc.server import ServerConfig


def test_reconnect_backoff_is_bounded_only_when_asked() -> None:
    default = dict(ChannelConfig().options())
    assert "grpc.max_reconnect_backoff_ms" not in default
    bounded = dict(ChannelConfig(max_reconnect_backoff_s=2.0).options())
    assert bounded["grpc.max_reconnect_backoff_ms"] == 2000
    assert bounded["grpc.initial_reconnect_backoff_ms"] == 1000
    tiny = dict(ChannelConfig(max_reconnect_backoff_s=0.01).options())
    assert tiny["grpc.max_reconnect_backoff_ms"] == 100


def test_a_closed_connection_may_resolve_the_name_again_within_a_second() -> None:
    # gRPC's default waits 30 s between resolutions: a client would reach a new replica
    # only then, not when the old replica ends its connection (--max-connection-age-s)
    options = dict(ChannelConfig().options())
    assert options["grpc.dns_min_time_between_resolutions_ms"] == 1000


def test_retry_budget_is_in_the_service_config_only_when_asked() -> None:
    assert "retryThrottling" not in json.loads(ChannelConfig().service_config())
    budget = json.loads(ChannelConfig(retry_budget_tokens=10).service_config())
    assert budget["retryThrottling"] == {"maxTokens": 10, "tokenRatio": 0.1}
    with pytest.raises(ConfigError, match="retry_budget_tokens=0"):
        ChannelConfig(retry_budget_tokens=0).service_config()


def test_pending_call_limit_becomes_core_backlog_limits() -> None:
    assert "grpc.server.max_pending_requests" not in dict(ServerConfig().options())
    options = dict(ServerConfig(max_pending_calls=256).options())
    assert options["grpc.server.max_pending_requests"] == 128
    assert options["grpc.server.max_pending_requests_hard_limit"] == 256
    with pytest.raises(ConfigError, match="max_pending_calls=1"):
        ServerConfig(max_pending_calls=1).options()

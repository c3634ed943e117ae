from google.protobuf.internal import containers as _containers
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class Tensor(_message.Message):
    __slots__ = ("name", "datatype", "shape", "raw")
    NAME_FIELD_NUMBER: _ClassVar[int]
    DATATYPE_FIELD_NUMBER: _ClassVar[int]
    SHAPE_FIELD_NUMBER: _ClassVar[int]
    RAW_FIELD_NUMBER: _ClassVar[int]
    name: str
    datatype: str
    shape: _containers.RepeatedScalarFieldContainer[int]
    raw: bytes
    def __init__(self, name: _Optional[str] = ..., datatype: _Optional[str] = ..., shape: _Optional[_Iterable[int]] = ..., raw: _Optional[bytes] = ...) -> None: ...

class NormStats(_message.Message):
    __slots__ = ("mean", "var", "count")
    MEAN_FIELD_NUMBER: _ClassVar[int]
    VAR_FIELD_NUMBER: _ClassVar[int]
    COUNT_FIELD_NUMBER: _ClassVar[int]
    mean: Tensor
    var: Tensor
    count: float
    def __init__(self, mean: _Optional[_Union[Tensor, _Mapping]] = ..., var: _Optional[_Union[Tensor, _Mapping]] = ..., count: _Optional[float] = ...) -> None: ...

class RegisterRequest(_message.Message):
    __slots__ = ("actor_id", "num_envs", "env_id", "pid", "host")
    ACTOR_ID_FIELD_NUMBER: _ClassVar[int]
    NUM_ENVS_FIELD_NUMBER: _ClassVar[int]
    ENV_ID_FIELD_NUMBER: _ClassVar[int]
    PID_FIELD_NUMBER: _ClassVar[int]
    HOST_FIELD_NUMBER: _ClassVar[int]
    actor_id: str
    num_envs: int
    env_id: str
    pid: int
    host: str
    def __init__(self, actor_id: _Optional[str] = ..., num_envs: _Optional[int] = ..., env_id: _Optional[str] = ..., pid: _Optional[int] = ..., host: _Optional[str] = ...) -> None: ...

class RegisterResponse(_message.Message):
    __slots__ = ("session_id", "incarnation", "version", "algo", "algo_config", "train_config", "rollout_steps", "seed", "mode", "session_secret")
    SESSION_ID_FIELD_NUMBER: _ClassVar[int]
    INCARNATION_FIELD_NUMBER: _ClassVar[int]
    VERSION_FIELD_NUMBER: _ClassVar[int]
    ALGO_FIELD_NUMBER: _ClassVar[int]
    ALGO_CONFIG_FIELD_NUMBER: _ClassVar[int]
    TRAIN_CONFIG_FIELD_NUMBER: _ClassVar[int]
    ROLLOUT_STEPS_FIELD_NUMBER: _ClassVar[int]
    SEED_FIELD_NUMBER: _ClassVar[int]
    MODE_FIELD_NUMBER: _ClassVar[int]
    SESSION_SECRET_FIELD_NUMBER: _ClassVar[int]
    session_id: str
    incarnation: int
    version: int
    algo: str
    algo_config: str
    train_config: str
    rollout_steps: int
    seed: int
    mode: str
    session_secret: str
    def __init__(self, session_id: _Optional[str] = ..., incarnation: _Optional[int] = ..., version: _Optional[int] = ..., algo: _Optional[str] = ..., algo_config: _Optional[str] = ..., train_config: _Optional[str] = ..., rollout_steps: _Optional[int] = ..., seed: _Optional[int] = ..., mode: _Optional[str] = ..., session_secret: _Optional[str] = ...) -> None: ...

class HeartbeatRequest(_message.Message):
    __slots__ = ("session_id", "incarnation", "session_secret")
    SESSION_ID_FIELD_NUMBER: _ClassVar[int]
    INCARNATION_FIELD_NUMBER: _ClassVar[int]
    SESSION_SECRET_FIELD_NUMBER: _ClassVar[int]
    session_id: str
    incarnation: int
    session_secret: str
    def __init__(self, session_id: _Optional[str] = ..., incarnation: _Optional[int] = ..., session_secret: _Optional[str] = ...) -> None: ...

class HeartbeatResponse(_message.Message):
    __slots__ = ("version", "done")
    VERSION_FIELD_NUMBER: _ClassVar[int]
    DONE_FIELD_NUMBER: _ClassVar[int]
    version: int
    done: bool
    def __init__(self, version: _Optional[int] = ..., done: _Optional[bool] = ...) -> None: ...

class StageTimes(_message.Message):
    __slots__ = ("env", "inference", "rpc", "push", "wait")
    ENV_FIELD_NUMBER: _ClassVar[int]
    INFERENCE_FIELD_NUMBER: _ClassVar[int]
    RPC_FIELD_NUMBER: _ClassVar[int]
    PUSH_FIELD_NUMBER: _ClassVar[int]
    WAIT_FIELD_NUMBER: _ClassVar[int]
    env: float
    inference: float
    rpc: float
    push: float
    wait: float
    def __init__(self, env: _Optional[float] = ..., inference: _Optional[float] = ..., rpc: _Optional[float] = ..., push: _Optional[float] = ..., wait: _Optional[float] = ...) -> None: ...

class TrajectoryChunk(_message.Message):
    __slots__ = ("session_id", "incarnation", "policy_version", "num_steps", "num_envs", "tensors", "obs_stats", "episode_returns", "episode_lengths", "times", "env_steps", "num_agents", "agent_episode_returns", "session_secret", "seq")
    SESSION_ID_FIELD_NUMBER: _ClassVar[int]
    INCARNATION_FIELD_NUMBER: _ClassVar[int]
    POLICY_VERSION_FIELD_NUMBER: _ClassVar[int]
    NUM_STEPS_FIELD_NUMBER: _ClassVar[int]
    NUM_ENVS_FIELD_NUMBER: _ClassVar[int]
    TENSORS_FIELD_NUMBER: _ClassVar[int]
    OBS_STATS_FIELD_NUMBER: _ClassVar[int]
    EPISODE_RETURNS_FIELD_NUMBER: _ClassVar[int]
    EPISODE_LENGTHS_FIELD_NUMBER: _ClassVar[int]
    TIMES_FIELD_NUMBER: _ClassVar[int]
    ENV_STEPS_FIELD_NUMBER: _ClassVar[int]
    NUM_AGENTS_FIELD_NUMBER: _ClassVar[int]
    AGENT_EPISODE_RETURNS_FIELD_NUMBER: _ClassVar[int]
    SESSION_SECRET_FIELD_NUMBER: _ClassVar[int]
    SEQ_FIELD_NUMBER: _ClassVar[int]
    session_id: str
    incarnation: int
    policy_version: int
    num_steps: int
    num_envs: int
    tensors: _containers.RepeatedCompositeFieldContainer[Tensor]
    obs_stats: NormStats
    episode_returns: _containers.RepeatedScalarFieldContainer[float]
    episode_lengths: _containers.RepeatedScalarFieldContainer[int]
    times: StageTimes
    env_steps: int
    num_agents: int
    agent_episode_returns: _containers.RepeatedScalarFieldContainer[float]
    session_secret: str
    seq: int
    def __init__(self, session_id: _Optional[str] = ..., incarnation: _Optional[int] = ..., policy_version: _Optional[int] = ..., num_steps: _Optional[int] = ..., num_envs: _Optional[int] = ..., tensors: _Optional[_Iterable[_Union[Tensor, _Mapping]]] = ..., obs_stats: _Optional[_Union[NormStats, _Mapping]] = ..., episode_returns: _Optional[_Iterable[float]] = ..., episode_lengths: _Optional[_Iterable[int]] = ..., times: _Optional[_Union[StageTimes, _Mapping]] = ..., env_steps: _Optional[int] = ..., num_agents: _Optional[int] = ..., agent_episode_returns: _Optional[_Iterable[float]] = ..., session_secret: _Optional[str] = ..., seq: _Optional[int] = ...) -> None: ...

class PushResponse(_message.Message):
    __slots__ = ("accepted", "dropped", "version", "done")
    ACCEPTED_FIELD_NUMBER: _ClassVar[int]
    DROPPED_FIELD_NUMBER: _ClassVar[int]
    VERSION_FIELD_NUMBER: _ClassVar[int]
    DONE_FIELD_NUMBER: _ClassVar[int]
    accepted: int
    dropped: int
    version: int
    done: bool
    def __init__(self, accepted: _Optional[int] = ..., dropped: _Optional[int] = ..., version: _Optional[int] = ..., done: _Optional[bool] = ...) -> None: ...

class GetWeightsRequest(_message.Message):
    __slots__ = ("session_id", "incarnation", "have_version", "wait_s", "session_secret")
    SESSION_ID_FIELD_NUMBER: _ClassVar[int]
    INCARNATION_FIELD_NUMBER: _ClassVar[int]
    HAVE_VERSION_FIELD_NUMBER: _ClassVar[int]
    WAIT_S_FIELD_NUMBER: _ClassVar[int]
    SESSION_SECRET_FIELD_NUMBER: _ClassVar[int]
    session_id: str
    incarnation: int
    have_version: int
    wait_s: float
    session_secret: str
    def __init__(self, session_id: _Optional[str] = ..., incarnation: _Optional[int] = ..., have_version: _Optional[int] = ..., wait_s: _Optional[float] = ..., session_secret: _Optional[str] = ...) -> None: ...

class WeightsChunk(_message.Message):
    __slots__ = ("version", "total_bytes", "offset", "data", "manifest", "sha256", "obs_stats")
    VERSION_FIELD_NUMBER: _ClassVar[int]
    TOTAL_BYTES_FIELD_NUMBER: _ClassVar[int]
    OFFSET_FIELD_NUMBER: _ClassVar[int]
    DATA_FIELD_NUMBER: _ClassVar[int]
    MANIFEST_FIELD_NUMBER: _ClassVar[int]
    SHA256_FIELD_NUMBER: _ClassVar[int]
    OBS_STATS_FIELD_NUMBER: _ClassVar[int]
    version: int
    total_bytes: int
    offset: int
    data: bytes
    manifest: str
    sha256: bytes
    obs_stats: NormStats
    def __init__(self, version: _Optional[int] = ..., total_bytes: _Optional[int] = ..., offset: _Optional[int] = ..., data: _Optional[bytes] = ..., manifest: _Optional[str] = ..., sha256: _Optional[bytes] = ..., obs_stats: _Optional[_Union[NormStats, _Mapping]] = ...) -> None: ...

class ExchangeResponse(_message.Message):
    __slots__ = ("push", "weights")
    PUSH_FIELD_NUMBER: _ClassVar[int]
    WEIGHTS_FIELD_NUMBER: _ClassVar[int]
    push: PushResponse
    weights: WeightsChunk
    def __init__(self, push: _Optional[_Union[PushResponse, _Mapping]] = ..., weights: _Optional[_Union[WeightsChunk, _Mapping]] = ...) -> None: ...

class StatusRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class StatusResponse(_message.Message):
    __slots__ = ("version", "env_steps", "incarnation", "live_actors", "done", "mode", "queue_depth", "episode_return_mean", "episodes", "insecure")
    VERSION_FIELD_NUMBER: _ClassVar[int]
    ENV_STEPS_FIELD_NUMBER: _ClassVar[int]
    INCARNATION_FIELD_NUMBER: _ClassVar[int]
    LIVE_ACTORS_FIELD_NUMBER: _ClassVar[int]
    DONE_FIELD_NUMBER: _ClassVar[int]
    MODE_FIELD_NUMBER: _ClassVar[int]
    QUEUE_DEPTH_FIELD_NUMBER: _ClassVar[int]
    EPISODE_RETURN_MEAN_FIELD_NUMBER: _ClassVar[int]
    EPISODES_FIELD_NUMBER: _ClassVar[int]
    INSECURE_FIELD_NUMBER: _ClassVar[int]
    version: int
    env_steps: int
    incarnation: int
    live_actors: int
    done: bool
    mode: str
    queue_depth: int
    episode_return_mean: float
    episodes: int
    insecure: bool
    def __init__(self, version: _Optional[int] = ..., env_steps: _Optional[int] = ..., incarnation: _Optional[int] = ..., live_actors: _Optional[int] = ..., done: _Optional[bool] = ..., mode: _Optional[str] = ..., queue_depth: _Optional[int] = ..., episode_return_mean: _Optional[float] = ..., episodes: _Optional[int] = ..., insecure: _Optional[bool] = ...) -> None: ...

from google.protobuf.internal import containers as _containers
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class PreviewRequest(_message.Message):
    __slots__ = ("set_weight", "backend", "reload")
    SET_WEIGHT_FIELD_NUMBER: _ClassVar[int]
    BACKEND_FIELD_NUMBER: _ClassVar[int]
    RELOAD_FIELD_NUMBER: _ClassVar[int]
    set_weight: SetWeightRequest
    backend: BackendChange
    reload: ReloadPreview
    def __init__(self, set_weight: _Optional[_Union[SetWeightRequest, _Mapping]] = ..., backend: _Optional[_Union[BackendChange, _Mapping]] = ..., reload: _Optional[_Union[ReloadPreview, _Mapping]] = ...) -> None: ...

class BackendChange(_message.Message):
    __slots__ = ("name", "action")
    NAME_FIELD_NUMBER: _ClassVar[int]
    ACTION_FIELD_NUMBER: _ClassVar[int]
    name: str
    action: str
    def __init__(self, name: _Optional[str] = ..., action: _Optional[str] = ...) -> None: ...

class ReloadPreview(_message.Message):
    __slots__ = ("config_yaml",)
    CONFIG_YAML_FIELD_NUMBER: _ClassVar[int]
    config_yaml: str
    def __init__(self, config_yaml: _Optional[str] = ...) -> None: ...

class PreviewResponse(_message.Message):
    __slots__ = ("vips", "notes", "connected")
    VIPS_FIELD_NUMBER: _ClassVar[int]
    NOTES_FIELD_NUMBER: _ClassVar[int]
    CONNECTED_FIELD_NUMBER: _ClassVar[int]
    vips: _containers.RepeatedCompositeFieldContainer[VipPreview]
    notes: _containers.RepeatedScalarFieldContainer[str]
    connected: bool
    def __init__(self, vips: _Optional[_Iterable[_Union[VipPreview, _Mapping]]] = ..., notes: _Optional[_Iterable[str]] = ..., connected: _Optional[bool] = ...) -> None: ...

class VipPreview(_message.Message):
    __slots__ = ("frontend", "vip", "length", "moved", "moved_share", "minimum", "moves", "recreated", "created", "removed", "removal_in", "drained", "flushed", "before", "after", "digest_before", "digest_after")
    FRONTEND_FIELD_NUMBER: _ClassVar[int]
    VIP_FIELD_NUMBER: _ClassVar[int]
    LENGTH_FIELD_NUMBER: _ClassVar[int]
    MOVED_FIELD_NUMBER: _ClassVar[int]
    MOVED_SHARE_FIELD_NUMBER: _ClassVar[int]
    MINIMUM_FIELD_NUMBER: _ClassVar[int]
    MOVES_FIELD_NUMBER: _ClassVar[int]
    RECREATED_FIELD_NUMBER: _ClassVar[int]
    CREATED_FIELD_NUMBER: _ClassVar[int]
    REMOVED_FIELD_NUMBER: _ClassVar[int]
    REMOVAL_IN_FIELD_NUMBER: _ClassVar[int]
    DRAINED_FIELD_NUMBER: _ClassVar[int]
    FLUSHED_FIELD_NUMBER: _ClassVar[int]
    BEFORE_FIELD_NUMBER: _ClassVar[int]
    AFTER_FIELD_NUMBER: _ClassVar[int]
    DIGEST_BEFORE_FIELD_NUMBER: _ClassVar[int]
    DIGEST_AFTER_FIELD_NUMBER: _ClassVar[int]
    frontend: str
    vip: str
    length: int
    moved: int
    moved_share: float
    minimum: int
    moves: _containers.RepeatedCompositeFieldContainer[BucketMove]
    recreated: str
    created: bool
    removed: bool
    removal_in: float
    drained: _containers.RepeatedScalarFieldContainer[str]
    flushed: _containers.RepeatedScalarFieldContainer[str]
    before: _containers.RepeatedCompositeFieldContainer[AsShare]
    after: _containers.RepeatedCompositeFieldContainer[AsShare]
    digest_before: str
    digest_after: str
    def __init__(self, frontend: _Optional[str] = ..., vip: _Optional[str] = ..., length: _Optional[int] = ..., moved: _Optional[int] = ..., moved_share: _Optional[float] = ..., minimum: _Optional[int] = ..., moves: _Optional[_Iterable[_Union[BucketMove, _Mapping]]] = ..., recreated: _Optional[str] = ..., created: _Optional[bool] = ..., removed: _Optional[bool] = ..., removal_in: _Optional[float] = ..., drained: _Optional[_Iterable[str]] = ..., flushed: _Optional[_Iterable[str]] = ..., before: _Optional[_Iterable[_Union[AsShare, _Mapping]]] = ..., after: _Optional[_Iterable[_Union[AsShare, _Mapping]]] = ..., digest_before: _Optional[str] = ..., digest_after: _Optional[str] = ...) -> None: ...

class BucketMove(_message.Message):
    __slots__ = ("from_as", "to_as", "buckets")
    FROM_AS_FIELD_NUMBER: _ClassVar[int]
    TO_AS_FIELD_NUMBER: _ClassVar[int]
    BUCKETS_FIELD_NUMBER: _ClassVar[int]
    from_as: str
    to_as: str
    buckets: int
    def __init__(self, from_as: _Optional[str] = ..., to_as: _Optional[str] = ..., buckets: _Optional[int] = ...) -> None: ...

class ReleaseCheckerIsolationRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class ReleaseCheckerIsolationResponse(_message.Message):
    __slots__ = ("released",)
    RELEASED_FIELD_NUMBER: _ClassVar[int]
    released: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, released: _Optional[_Iterable[str]] = ...) -> None: ...

class GetVersionRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class VersionInfo(_message.Message):
    __slots__ = ("version", "commit", "config_generation", "started", "api_security", "warnings")
    VERSION_FIELD_NUMBER: _ClassVar[int]
    COMMIT_FIELD_NUMBER: _ClassVar[int]
    CONFIG_GENERATION_FIELD_NUMBER: _ClassVar[int]
    STARTED_FIELD_NUMBER: _ClassVar[int]
    API_SECURITY_FIELD_NUMBER: _ClassVar[int]
    WARNINGS_FIELD_NUMBER: _ClassVar[int]
    version: str
    commit: str
    config_generation: int
    started: float
    api_security: str
    warnings: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, version: _Optional[str] = ..., commit: _Optional[str] = ..., config_generation: _Optional[int] = ..., started: _Optional[float] = ..., api_security: _Optional[str] = ..., warnings: _Optional[_Iterable[str]] = ...) -> None: ...

class ListFrontendsRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class ListFrontendsResponse(_message.Message):
    __slots__ = ("frontends", "draining_vips")
    FRONTENDS_FIELD_NUMBER: _ClassVar[int]
    DRAINING_VIPS_FIELD_NUMBER: _ClassVar[int]
    frontends: _containers.RepeatedCompositeFieldContainer[FrontendInfo]
    draining_vips: _containers.RepeatedCompositeFieldContainer[DrainingVip]
    def __init__(self, frontends: _Optional[_Iterable[_Union[FrontendInfo, _Mapping]]] = ..., draining_vips: _Optional[_Iterable[_Union[DrainingVip, _Mapping]]] = ...) -> None: ...

class GetFrontendRequest(_message.Message):
    __slots__ = ("name",)
    NAME_FIELD_NUMBER: _ClassVar[int]
    name: str
    def __init__(self, name: _Optional[str] = ...) -> None: ...

class PoolBackendInfo(_message.Message):
    __slots__ = ("name", "weight", "effective_weight", "flush", "state", "address", "buckets", "weight_override", "weight_override_seconds_left", "slow_start_elapsed", "slow_start_duration", "vpp_weight")
    NAME_FIELD_NUMBER: _ClassVar[int]
    WEIGHT_FIELD_NUMBER: _ClassVar[int]
    EFFECTIVE_WEIGHT_FIELD_NUMBER: _ClassVar[int]
    FLUSH_FIELD_NUMBER: _ClassVar[int]
    STATE_FIELD_NUMBER: _ClassVar[int]
    ADDRESS_FIELD_NUMBER: _ClassVar[int]
    BUCKETS_FIELD_NUMBER: _ClassVar[int]
    WEIGHT_OVERRIDE_FIELD_NUMBER: _ClassVar[int]
    WEIGHT_OVERRIDE_SECONDS_LEFT_FIELD_NUMBER: _ClassVar[int]
    SLOW_START_ELAPSED_FIELD_NUMBER: _ClassVar[int]
    SLOW_START_DURATION_FIELD_NUMBER: _ClassVar[int]
    VPP_WEIGHT_FIELD_NUMBER: _ClassVar[int]
    name: str
    weight: int
    effective_weight: int
    flush: bool
    state: str
    address: str
    buckets: int
    weight_override: bool
    weight_override_seconds_left: float
    slow_start_elapsed: int
    slow_start_duration: float
    vpp_weight: int
    def __init__(self, name: _Optional[str] = ..., weight: _Optional[int] = ..., effective_weight: _Optional[int] = ..., flush: _Optional[bool] = ..., state: _Optional[str] = ..., address: _Optional[str] = ..., buckets: _Optional[int] = ..., weight_override: _Optional[bool] = ..., weight_override_seconds_left: _Optional[float] = ..., slow_start_elapsed: _Optional[int] = ..., slow_start_duration: _Optional[float] = ..., vpp_weight: _Optional[int] = ...) -> None: ...

class PoolInfo(_message.Message):
    __slots__ = ("name", "active", "backends")
    NAME_FIELD_NUMBER: _ClassVar[int]
    ACTIVE_FIELD_NUMBER: _ClassVar[int]
    BACKENDS_FIELD_NUMBER: _ClassVar[int]
    name: str
    active: bool
    backends: _containers.RepeatedCompositeFieldContainer[PoolBackendInfo]
    def __init__(self, name: _Optional[str] = ..., active: _Optional[bool] = ..., backends: _Optional[_Iterable[_Union[PoolBackendInfo, _Mapping]]] = ...) -> None: ...

class FrontendInfo(_message.Message):
    __slots__ = ("name", "address", "protocol", "port", "encap", "src_ip_sticky", "flush_on_down", "new_flows_table_length", "description", "state", "pools", "state_detail", "draining", "table")
    NAME_FIELD_NUMBER: _ClassVar[int]
    ADDRESS_FIELD_NUMBER: _ClassVar[int]
    PROTOCOL_FIELD_NUMBER: _ClassVar[int]
    PORT_FIELD_NUMBER: _ClassVar[int]
    ENCAP_FIELD_NUMBER: _ClassVar[int]
    SRC_IP_STICKY_FIELD_NUMBER: _ClassVar[int]
    FLUSH_ON_DOWN_FIELD_NUMBER: _ClassVar[int]
    NEW_FLOWS_TABLE_LENGTH_FIELD_NUMBER: _ClassVar[int]
    DESCRIPTION_FIELD_NUMBER: _ClassVar[int]
    STATE_FIELD_NUMBER: _ClassVar[int]
    POOLS_FIELD_NUMBER: _ClassVar[int]
    STATE_DETAIL_FIELD_NUMBER: _ClassVar[int]
    DRAINING_FIELD_NUMBER: _ClassVar[int]
    TABLE_FIELD_NUMBER: _ClassVar[int]
    name: str
    address: str
    protocol: str
    port: int
    encap: str
    src_ip_sticky: bool
    flush_on_down: bool
    new_flows_table_length: int
    description: str
    state: str
    pools: _containers.RepeatedCompositeFieldContainer[PoolInfo]
    state_detail: str
    draining: _containers.RepeatedCompositeFieldContainer[DrainingAs]
    table: VipTableInfo
    def __init__(self, name: _Optional[str] = ..., address: _Optional[str] = ..., protocol: _Optional[str] = ..., port: _Optional[int] = ..., encap: _Optional[str] = ..., src_ip_sticky: _Optional[bool] = ..., flush_on_down: _Optional[bool] = ..., new_flows_table_length: _Optional[int] = ..., description: _Optional[str] = ..., state: _Optional[str] = ..., pools: _Optional[_Iterable[_Union[PoolInfo, _Mapping]]] = ..., state_detail: _Optional[str] = ..., draining: _Optional[_Iterable[_Union[DrainingAs, _Mapping]]] = ..., table: _Optional[_Union[VipTableInfo, _Mapping]] = ...) -> None: ...

class VipTableInfo(_message.Message):
    __slots__ = ("known", "digest", "length", "weights", "weight_scale", "weight_error", "shares")
    KNOWN_FIELD_NUMBER: _ClassVar[int]
    DIGEST_FIELD_NUMBER: _ClassVar[int]
    LENGTH_FIELD_NUMBER: _ClassVar[int]
    WEIGHTS_FIELD_NUMBER: _ClassVar[int]
    WEIGHT_SCALE_FIELD_NUMBER: _ClassVar[int]
    WEIGHT_ERROR_FIELD_NUMBER: _ClassVar[int]
    SHARES_FIELD_NUMBER: _ClassVar[int]
    known: bool
    digest: str
    length: int
    weights: bool
    weight_scale: int
    weight_error: float
    shares: _containers.RepeatedCompositeFieldContainer[AsShare]
    def __init__(self, known: _Optional[bool] = ..., digest: _Optional[str] = ..., length: _Optional[int] = ..., weights: _Optional[bool] = ..., weight_scale: _Optional[int] = ..., weight_error: _Optional[float] = ..., shares: _Optional[_Iterable[_Union[AsShare, _Mapping]]] = ...) -> None: ...

class AsShare(_message.Message):
    __slots__ = ("address", "backend", "buckets", "bucket_share", "weight_share", "vpp_weight")
    ADDRESS_FIELD_NUMBER: _ClassVar[int]
    BACKEND_FIELD_NUMBER: _ClassVar[int]
    BUCKETS_FIELD_NUMBER: _ClassVar[int]
    BUCKET_SHARE_FIELD_NUMBER: _ClassVar[int]
    WEIGHT_SHARE_FIELD_NUMBER: _ClassVar[int]
    VPP_WEIGHT_FIELD_NUMBER: _ClassVar[int]
    address: str
    backend: str
    buckets: int
    bucket_share: float
    weight_share: float
    vpp_weight: int
    def __init__(self, address: _Optional[str] = ..., backend: _Optional[str] = ..., buckets: _Optional[int] = ..., bucket_share: _Optional[float] = ..., weight_share: _Optional[float] = ..., vpp_weight: _Optional[int] = ...) -> None: ...

class DrainingAs(_message.Message):
    __slots__ = ("address", "backend", "pool", "seconds_left", "why")
    ADDRESS_FIELD_NUMBER: _ClassVar[int]
    BACKEND_FIELD_NUMBER: _ClassVar[int]
    POOL_FIELD_NUMBER: _ClassVar[int]
    SECONDS_LEFT_FIELD_NUMBER: _ClassVar[int]
    WHY_FIELD_NUMBER: _ClassVar[int]
    address: str
    backend: str
    pool: str
    seconds_left: float
    why: str
    def __init__(self, address: _Optional[str] = ..., backend: _Optional[str] = ..., pool: _Optional[str] = ..., seconds_left: _Optional[float] = ..., why: _Optional[str] = ...) -> None: ...

class DrainingVip(_message.Message):
    __slots__ = ("frontend", "address", "protocol", "port", "seconds_left")
    FRONTEND_FIELD_NUMBER: _ClassVar[int]
    ADDRESS_FIELD_NUMBER: _ClassVar[int]
    PROTOCOL_FIELD_NUMBER: _ClassVar[int]
    PORT_FIELD_NUMBER: _ClassVar[int]
    SECONDS_LEFT_FIELD_NUMBER: _ClassVar[int]
    frontend: str
    address: str
    protocol: str
    port: int
    seconds_left: float
    def __init__(self, frontend: _Optional[str] = ..., address: _Optional[str] = ..., protocol: _Optional[str] = ..., port: _Optional[int] = ..., seconds_left: _Optional[float] = ...) -> None: ...

class ListBackendsRequest(_message.Message):
    __slots__ = ("page_size", "page_token", "frontend", "state")
    PAGE_SIZE_FIELD_NUMBER: _ClassVar[int]
    PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    FRONTEND_FIELD_NUMBER: _ClassVar[int]
    STATE_FIELD_NUMBER: _ClassVar[int]
    page_size: int
    page_token: str
    frontend: str
    state: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, page_size: _Optional[int] = ..., page_token: _Optional[str] = ..., frontend: _Optional[str] = ..., state: _Optional[_Iterable[str]] = ...) -> None: ...

class ListBackendsResponse(_message.Message):
    __slots__ = ("backends", "next_page_token", "total")
    BACKENDS_FIELD_NUMBER: _ClassVar[int]
    NEXT_PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    TOTAL_FIELD_NUMBER: _ClassVar[int]
    backends: _containers.RepeatedCompositeFieldContainer[BackendInfo]
    next_page_token: str
    total: int
    def __init__(self, backends: _Optional[_Iterable[_Union[BackendInfo, _Mapping]]] = ..., next_page_token: _Optional[str] = ..., total: _Optional[int] = ...) -> None: ...

class GetBackendRequest(_message.Message):
    __slots__ = ("name",)
    NAME_FIELD_NUMBER: _ClassVar[int]
    name: str
    def __init__(self, name: _Optional[str] = ...) -> None: ...

class BackendRequest(_message.Message):
    __slots__ = ("name", "for_seconds")
    NAME_FIELD_NUMBER: _ClassVar[int]
    FOR_SECONDS_FIELD_NUMBER: _ClassVar[int]
    name: str
    for_seconds: float
    def __init__(self, name: _Optional[str] = ..., for_seconds: _Optional[float] = ...) -> None: ...

class ProbeResult(_message.Message):
    __slots__ = ("ok", "code", "detail", "duration", "time")
    OK_FIELD_NUMBER: _ClassVar[int]
    CODE_FIELD_NUMBER: _ClassVar[int]
    DETAIL_FIELD_NUMBER: _ClassVar[int]
    DURATION_FIELD_NUMBER: _ClassVar[int]
    TIME_FIELD_NUMBER: _ClassVar[int]
    ok: bool
    code: str
    detail: str
    duration: float
    time: float
    def __init__(self, ok: _Optional[bool] = ..., code: _Optional[str] = ..., detail: _Optional[str] = ..., duration: _Optional[float] = ..., time: _Optional[float] = ...) -> None: ...

class Transition(_message.Message):
    __slots__ = ("to", "time", "code", "detail")
    FROM_FIELD_NUMBER: _ClassVar[int]
    TO_FIELD_NUMBER: _ClassVar[int]
    TIME_FIELD_NUMBER: _ClassVar[int]
    CODE_FIELD_NUMBER: _ClassVar[int]
    DETAIL_FIELD_NUMBER: _ClassVar[int]
    to: str
    time: float
    code: str
    detail: str
    def __init__(self, to: _Optional[str] = ..., time: _Optional[float] = ..., code: _Optional[str] = ..., detail: _Optional[str] = ..., **kwargs) -> None: ...

class BackendInfo(_message.Message):
    __slots__ = ("name", "address", "healthcheck", "enabled", "state", "counter", "rise", "fall", "state_since", "last_probe", "transitions", "frontends", "probe_in_flight", "override", "override_seconds_left", "suppressed", "flap_penalty", "reuse_in_seconds", "checks", "failed_checks", "downs", "downtime_seconds", "reported", "reported_by")
    NAME_FIELD_NUMBER: _ClassVar[int]
    ADDRESS_FIELD_NUMBER: _ClassVar[int]
    HEALTHCHECK_FIELD_NUMBER: _ClassVar[int]
    ENABLED_FIELD_NUMBER: _ClassVar[int]
    STATE_FIELD_NUMBER: _ClassVar[int]
    COUNTER_FIELD_NUMBER: _ClassVar[int]
    RISE_FIELD_NUMBER: _ClassVar[int]
    FALL_FIELD_NUMBER: _ClassVar[int]
    STATE_SINCE_FIELD_NUMBER: _ClassVar[int]
    LAST_PROBE_FIELD_NUMBER: _ClassVar[int]
    TRANSITIONS_FIELD_NUMBER: _ClassVar[int]
    FRONTENDS_FIELD_NUMBER: _ClassVar[int]
    PROBE_IN_FLIGHT_FIELD_NUMBER: _ClassVar[int]
    OVERRIDE_FIELD_NUMBER: _ClassVar[int]
    OVERRIDE_SECONDS_LEFT_FIELD_NUMBER: _ClassVar[int]
    SUPPRESSED_FIELD_NUMBER: _ClassVar[int]
    FLAP_PENALTY_FIELD_NUMBER: _ClassVar[int]
    REUSE_IN_SECONDS_FIELD_NUMBER: _ClassVar[int]
    CHECKS_FIELD_NUMBER: _ClassVar[int]
    FAILED_CHECKS_FIELD_NUMBER: _ClassVar[int]
    DOWNS_FIELD_NUMBER: _ClassVar[int]
    DOWNTIME_SECONDS_FIELD_NUMBER: _ClassVar[int]
    REPORTED_FIELD_NUMBER: _ClassVar[int]
    REPORTED_BY_FIELD_NUMBER: _ClassVar[int]
    name: str
    address: str
    healthcheck: str
    enabled: bool
    state: str
    counter: int
    rise: int
    fall: int
    state_since: float
    last_probe: ProbeResult
    transitions: _containers.RepeatedCompositeFieldContainer[Transition]
    frontends: _containers.RepeatedScalarFieldContainer[str]
    probe_in_flight: bool
    override: bool
    override_seconds_left: float
    suppressed: bool
    flap_penalty: float
    reuse_in_seconds: float
    checks: int
    failed_checks: int
    downs: int
    downtime_seconds: float
    reported: str
    reported_by: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, name: _Optional[str] = ..., address: _Optional[str] = ..., healthcheck: _Optional[str] = ..., enabled: _Optional[bool] = ..., state: _Optional[str] = ..., counter: _Optional[int] = ..., rise: _Optional[int] = ..., fall: _Optional[int] = ..., state_since: _Optional[float] = ..., last_probe: _Optional[_Union[ProbeResult, _Mapping]] = ..., transitions: _Optional[_Iterable[_Union[Transition, _Mapping]]] = ..., frontends: _Optional[_Iterable[str]] = ..., probe_in_flight: _Optional[bool] = ..., override: _Optional[bool] = ..., override_seconds_left: _Optional[float] = ..., suppressed: _Optional[bool] = ..., flap_penalty: _Optional[float] = ..., reuse_in_seconds: _Optional[float] = ..., checks: _Optional[int] = ..., failed_checks: _Optional[int] = ..., downs: _Optional[int] = ..., downtime_seconds: _Optional[float] = ..., reported: _Optional[str] = ..., reported_by: _Optional[_Iterable[str]] = ...) -> None: ...

class ListHealthChecksRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class ListHealthChecksResponse(_message.Message):
    __slots__ = ("healthchecks",)
    HEALTHCHECKS_FIELD_NUMBER: _ClassVar[int]
    healthchecks: _containers.RepeatedCompositeFieldContainer[HealthCheckInfo]
    def __init__(self, healthchecks: _Optional[_Iterable[_Union[HealthCheckInfo, _Mapping]]] = ...) -> None: ...

class GetHealthCheckRequest(_message.Message):
    __slots__ = ("name",)
    NAME_FIELD_NUMBER: _ClassVar[int]
    name: str
    def __init__(self, name: _Optional[str] = ...) -> None: ...

class HealthCheckInfo(_message.Message):
    __slots__ = ("name", "type", "port", "interval", "fast_interval", "down_interval", "timeout", "rise", "fall", "probe_ipv4_src", "probe_ipv6_src", "params", "backends")
    class ParamsEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: str
        def __init__(self, key: _Optional[str] = ..., value: _Optional[str] = ...) -> None: ...
    NAME_FIELD_NUMBER: _ClassVar[int]
    TYPE_FIELD_NUMBER: _ClassVar[int]
    PORT_FIELD_NUMBER: _ClassVar[int]
    INTERVAL_FIELD_NUMBER: _ClassVar[int]
    FAST_INTERVAL_FIELD_NUMBER: _ClassVar[int]
    DOWN_INTERVAL_FIELD_NUMBER: _ClassVar[int]
    TIMEOUT_FIELD_NUMBER: _ClassVar[int]
    RISE_FIELD_NUMBER: _ClassVar[int]
    FALL_FIELD_NUMBER: _ClassVar[int]
    PROBE_IPV4_SRC_FIELD_NUMBER: _ClassVar[int]
    PROBE_IPV6_SRC_FIELD_NUMBER: _ClassVar[int]
    PARAMS_FIELD_NUMBER: _ClassVar[int]
    BACKENDS_FIELD_NUMBER: _ClassVar[int]
    name: str
    type: str
    port: int
    interval: float
    fast_interval: float
    down_interval: float
    timeout: float
    rise: int
    fall: int
    probe_ipv4_src: str
    probe_ipv6_src: str
    params: _containers.ScalarMap[str, str]
    backends: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, name: _Optional[str] = ..., type: _Optional[str] = ..., port: _Optional[int] = ..., interval: _Optional[float] = ..., fast_interval: _Optional[float] = ..., down_interval: _Optional[float] = ..., timeout: _Optional[float] = ..., rise: _Optional[int] = ..., fall: _Optional[int] = ..., probe_ipv4_src: _Optional[str] = ..., probe_ipv6_src: _Optional[str] = ..., params: _Optional[_Mapping[str, str]] = ..., backends: _Optional[_Iterable[str]] = ...) -> None: ...

class SetWeightRequest(_message.Message):
    __slots__ = ("frontend", "pool", "backend", "weight", "flush", "for_seconds")
    FRONTEND_FIELD_NUMBER: _ClassVar[int]
    POOL_FIELD_NUMBER: _ClassVar[int]
    BACKEND_FIELD_NUMBER: _ClassVar[int]
    WEIGHT_FIELD_NUMBER: _ClassVar[int]
    FLUSH_FIELD_NUMBER: _ClassVar[int]
    FOR_SECONDS_FIELD_NUMBER: _ClassVar[int]
    frontend: str
    pool: str
    backend: str
    weight: int
    flush: bool
    for_seconds: float
    def __init__(self, frontend: _Optional[str] = ..., pool: _Optional[str] = ..., backend: _Optional[str] = ..., weight: _Optional[int] = ..., flush: _Optional[bool] = ..., for_seconds: _Optional[float] = ...) -> None: ...

class WatchRequest(_message.Message):
    __slots__ = ("log", "log_level", "backend", "frontend", "vpp")
    LOG_FIELD_NUMBER: _ClassVar[int]
    LOG_LEVEL_FIELD_NUMBER: _ClassVar[int]
    BACKEND_FIELD_NUMBER: _ClassVar[int]
    FRONTEND_FIELD_NUMBER: _ClassVar[int]
    VPP_FIELD_NUMBER: _ClassVar[int]
    log: bool
    log_level: str
    backend: bool
    frontend: bool
    vpp: bool
    def __init__(self, log: _Optional[bool] = ..., log_level: _Optional[str] = ..., backend: _Optional[bool] = ..., frontend: _Optional[bool] = ..., vpp: _Optional[bool] = ...) -> None: ...

class LogEvent(_message.Message):
    __slots__ = ("level", "event", "message", "logger", "fields_json")
    LEVEL_FIELD_NUMBER: _ClassVar[int]
    EVENT_FIELD_NUMBER: _ClassVar[int]
    MESSAGE_FIELD_NUMBER: _ClassVar[int]
    LOGGER_FIELD_NUMBER: _ClassVar[int]
    FIELDS_JSON_FIELD_NUMBER: _ClassVar[int]
    level: str
    event: str
    message: str
    logger: str
    fields_json: str
    def __init__(self, level: _Optional[str] = ..., event: _Optional[str] = ..., message: _Optional[str] = ..., logger: _Optional[str] = ..., fields_json: _Optional[str] = ...) -> None: ...

class BackendEvent(_message.Message):
    __slots__ = ("backend", "transition", "counter", "enabled")
    BACKEND_FIELD_NUMBER: _ClassVar[int]
    TRANSITION_FIELD_NUMBER: _ClassVar[int]
    COUNTER_FIELD_NUMBER: _ClassVar[int]
    ENABLED_FIELD_NUMBER: _ClassVar[int]
    backend: str
    transition: Transition
    counter: int
    enabled: bool
    def __init__(self, backend: _Optional[str] = ..., transition: _Optional[_Union[Transition, _Mapping]] = ..., counter: _Optional[int] = ..., enabled: _Optional[bool] = ...) -> None: ...

class FrontendEvent(_message.Message):
    __slots__ = ("frontend", "to")
    FRONTEND_FIELD_NUMBER: _ClassVar[int]
    FROM_FIELD_NUMBER: _ClassVar[int]
    TO_FIELD_NUMBER: _ClassVar[int]
    frontend: str
    to: str
    def __init__(self, frontend: _Optional[str] = ..., to: _Optional[str] = ..., **kwargs) -> None: ...

class VppEvent(_message.Message):
    __slots__ = ("connected", "version", "reason")
    CONNECTED_FIELD_NUMBER: _ClassVar[int]
    VERSION_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    connected: bool
    version: str
    reason: str
    def __init__(self, connected: _Optional[bool] = ..., version: _Optional[str] = ..., reason: _Optional[str] = ...) -> None: ...

class Event(_message.Message):
    __slots__ = ("id", "time", "log", "backend", "frontend", "vpp")
    ID_FIELD_NUMBER: _ClassVar[int]
    TIME_FIELD_NUMBER: _ClassVar[int]
    LOG_FIELD_NUMBER: _ClassVar[int]
    BACKEND_FIELD_NUMBER: _ClassVar[int]
    FRONTEND_FIELD_NUMBER: _ClassVar[int]
    VPP_FIELD_NUMBER: _ClassVar[int]
    id: int
    time: float
    log: LogEvent
    backend: BackendEvent
    frontend: FrontendEvent
    vpp: VppEvent
    def __init__(self, id: _Optional[int] = ..., time: _Optional[float] = ..., log: _Optional[_Union[LogEvent, _Mapping]] = ..., backend: _Optional[_Union[BackendEvent, _Mapping]] = ..., frontend: _Optional[_Union[FrontendEvent, _Mapping]] = ..., vpp: _Optional[_Union[VppEvent, _Mapping]] = ...) -> None: ...

class CheckConfigRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class CheckConfigResponse(_message.Message):
    __slots__ = ("ok", "parse_error", "semantic_error")
    OK_FIELD_NUMBER: _ClassVar[int]
    PARSE_ERROR_FIELD_NUMBER: _ClassVar[int]
    SEMANTIC_ERROR_FIELD_NUMBER: _ClassVar[int]
    ok: bool
    parse_error: str
    semantic_error: str
    def __init__(self, ok: _Optional[bool] = ..., parse_error: _Optional[str] = ..., semantic_error: _Optional[str] = ...) -> None: ...

class ReloadConfigRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class ReloadConfigResponse(_message.Message):
    __slots__ = ("ok", "parse_error", "semantic_error", "generation", "apply_error")
    OK_FIELD_NUMBER: _ClassVar[int]
    PARSE_ERROR_FIELD_NUMBER: _ClassVar[int]
    SEMANTIC_ERROR_FIELD_NUMBER: _ClassVar[int]
    GENERATION_FIELD_NUMBER: _ClassVar[int]
    APPLY_ERROR_FIELD_NUMBER: _ClassVar[int]
    ok: bool
    parse_error: str
    semantic_error: str
    generation: int
    apply_error: str
    def __init__(self, ok: _Optional[bool] = ..., parse_error: _Optional[str] = ..., semantic_error: _Optional[str] = ..., generation: _Optional[int] = ..., apply_error: _Optional[str] = ...) -> None: ...

class GetVPPInfoRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class VPPInfo(_message.Message):
    __slots__ = ("version", "build_date", "build_directory", "pid", "boottime_ns", "connecttime_ns", "weights", "api_mode", "api_sent", "api_received")
    VERSION_FIELD_NUMBER: _ClassVar[int]
    BUILD_DATE_FIELD_NUMBER: _ClassVar[int]
    BUILD_DIRECTORY_FIELD_NUMBER: _ClassVar[int]
    PID_FIELD_NUMBER: _ClassVar[int]
    BOOTTIME_NS_FIELD_NUMBER: _ClassVar[int]
    CONNECTTIME_NS_FIELD_NUMBER: _ClassVar[int]
    WEIGHTS_FIELD_NUMBER: _ClassVar[int]
    API_MODE_FIELD_NUMBER: _ClassVar[int]
    API_SENT_FIELD_NUMBER: _ClassVar[int]
    API_RECEIVED_FIELD_NUMBER: _ClassVar[int]
    version: str
    build_date: str
    build_directory: str
    pid: int
    boottime_ns: int
    connecttime_ns: int
    weights: bool
    api_mode: str
    api_sent: int
    api_received: int
    def __init__(self, version: _Optional[str] = ..., build_date: _Optional[str] = ..., build_directory: _Optional[str] = ..., pid: _Optional[int] = ..., boottime_ns: _Optional[int] = ..., connecttime_ns: _Optional[int] = ..., weights: _Optional[bool] = ..., api_mode: _Optional[str] = ..., api_sent: _Optional[int] = ..., api_received: _Optional[int] = ...) -> None: ...

class GetVPPLBStateRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class VPPLBConf(_message.Message):
    __slots__ = ("ip4_src_address", "ip6_src_address", "sticky_buckets_per_core", "flow_timeout")
    IP4_SRC_ADDRESS_FIELD_NUMBER: _ClassVar[int]
    IP6_SRC_ADDRESS_FIELD_NUMBER: _ClassVar[int]
    STICKY_BUCKETS_PER_CORE_FIELD_NUMBER: _ClassVar[int]
    FLOW_TIMEOUT_FIELD_NUMBER: _ClassVar[int]
    ip4_src_address: str
    ip6_src_address: str
    sticky_buckets_per_core: int
    flow_timeout: int
    def __init__(self, ip4_src_address: _Optional[str] = ..., ip6_src_address: _Optional[str] = ..., sticky_buckets_per_core: _Optional[int] = ..., flow_timeout: _Optional[int] = ...) -> None: ...

class VPPLBAs(_message.Message):
    __slots__ = ("address", "weight", "buckets")
    ADDRESS_FIELD_NUMBER: _ClassVar[int]
    WEIGHT_FIELD_NUMBER: _ClassVar[int]
    BUCKETS_FIELD_NUMBER: _ClassVar[int]
    address: str
    weight: int
    buckets: int
    def __init__(self, address: _Optional[str] = ..., weight: _Optional[int] = ..., buckets: _Optional[int] = ...) -> None: ...

class VPPLBVip(_message.Message):
    __slots__ = ("frontend", "prefix", "protocol", "port", "encap", "src_ip_sticky", "new_flows_table_length", "ases", "table_digest")
    FRONTEND_FIELD_NUMBER: _ClassVar[int]
    PREFIX_FIELD_NUMBER: _ClassVar[int]
    PROTOCOL_FIELD_NUMBER: _ClassVar[int]
    PORT_FIELD_NUMBER: _ClassVar[int]
    ENCAP_FIELD_NUMBER: _ClassVar[int]
    SRC_IP_STICKY_FIELD_NUMBER: _ClassVar[int]
    NEW_FLOWS_TABLE_LENGTH_FIELD_NUMBER: _ClassVar[int]
    ASES_FIELD_NUMBER: _ClassVar[int]
    TABLE_DIGEST_FIELD_NUMBER: _ClassVar[int]
    frontend: str
    prefix: str
    protocol: int
    port: int
    encap: str
    src_ip_sticky: bool
    new_flows_table_length: int
    ases: _containers.RepeatedCompositeFieldContainer[VPPLBAs]
    table_digest: str
    def __init__(self, frontend: _Optional[str] = ..., prefix: _Optional[str] = ..., protocol: _Optional[int] = ..., port: _Optional[int] = ..., encap: _Optional[str] = ..., src_ip_sticky: _Optional[bool] = ..., new_flows_table_length: _Optional[int] = ..., ases: _Optional[_Iterable[_Union[VPPLBAs, _Mapping]]] = ..., table_digest: _Optional[str] = ...) -> None: ...

class VPPLBState(_message.Message):
    __slots__ = ("conf", "vips")
    CONF_FIELD_NUMBER: _ClassVar[int]
    VIPS_FIELD_NUMBER: _ClassVar[int]
    conf: VPPLBConf
    vips: _containers.RepeatedCompositeFieldContainer[VPPLBVip]
    def __init__(self, conf: _Optional[_Union[VPPLBConf, _Mapping]] = ..., vips: _Optional[_Iterable[_Union[VPPLBVip, _Mapping]]] = ...) -> None: ...

class SyncVPPLBStateRequest(_message.Message):
    __slots__ = ("frontend",)
    FRONTEND_FIELD_NUMBER: _ClassVar[int]
    frontend: str
    def __init__(self, frontend: _Optional[str] = ...) -> None: ...

class SyncVPPLBStateResponse(_message.Message):
    __slots__ = ("changes", "errors")
    CHANGES_FIELD_NUMBER: _ClassVar[int]
    ERRORS_FIELD_NUMBER: _ClassVar[int]
    changes: int
    errors: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, changes: _Optional[int] = ..., errors: _Optional[_Iterable[str]] = ...) -> None: ...

class GetVPPLBCountersRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class VipCounters(_message.Message):
    __slots__ = ("frontend", "next", "first", "untracked", "no_server", "next_rate", "first_rate", "untracked_rate", "no_server_rate", "has_route", "route_packets", "route_bytes", "route_packets_rate", "route_bytes_rate")
    FRONTEND_FIELD_NUMBER: _ClassVar[int]
    NEXT_FIELD_NUMBER: _ClassVar[int]
    FIRST_FIELD_NUMBER: _ClassVar[int]
    UNTRACKED_FIELD_NUMBER: _ClassVar[int]
    NO_SERVER_FIELD_NUMBER: _ClassVar[int]
    NEXT_RATE_FIELD_NUMBER: _ClassVar[int]
    FIRST_RATE_FIELD_NUMBER: _ClassVar[int]
    UNTRACKED_RATE_FIELD_NUMBER: _ClassVar[int]
    NO_SERVER_RATE_FIELD_NUMBER: _ClassVar[int]
    HAS_ROUTE_FIELD_NUMBER: _ClassVar[int]
    ROUTE_PACKETS_FIELD_NUMBER: _ClassVar[int]
    ROUTE_BYTES_FIELD_NUMBER: _ClassVar[int]
    ROUTE_PACKETS_RATE_FIELD_NUMBER: _ClassVar[int]
    ROUTE_BYTES_RATE_FIELD_NUMBER: _ClassVar[int]
    frontend: str
    next: int
    first: int
    untracked: int
    no_server: int
    next_rate: float
    first_rate: float
    untracked_rate: float
    no_server_rate: float
    has_route: bool
    route_packets: int
    route_bytes: int
    route_packets_rate: float
    route_bytes_rate: float
    def __init__(self, frontend: _Optional[str] = ..., next: _Optional[int] = ..., first: _Optional[int] = ..., untracked: _Optional[int] = ..., no_server: _Optional[int] = ..., next_rate: _Optional[float] = ..., first_rate: _Optional[float] = ..., untracked_rate: _Optional[float] = ..., no_server_rate: _Optional[float] = ..., has_route: _Optional[bool] = ..., route_packets: _Optional[int] = ..., route_bytes: _Optional[int] = ..., route_packets_rate: _Optional[float] = ..., route_bytes_rate: _Optional[float] = ...) -> None: ...

class VPPLBCounters(_message.Message):
    __slots__ = ("vips",)
    VIPS_FIELD_NUMBER: _ClassVar[int]
    vips: _containers.RepeatedCompositeFieldContainer[VipCounters]
    def __init__(self, vips: _Optional[_Iterable[_Union[VipCounters, _Mapping]]] = ...) -> None: ...

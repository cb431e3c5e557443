"""ioc.yaml: pydantic models, loading with located errors, JSON schema."""

from ._load import (
    DATA_ROOT_ENV,
    ConfigError,
    ConfigIssue,
    Locator,
    load_config,
    load_config_located,
    located_issues,
    parse_config,
    parse_config_located,
)
from ._models import (
    AccessConfig,
    BlueskyConfig,
    EngineConfig,
    HistogramConfig,
    IocConfig,
    NexusConfig,
    PublishConfig,
    RoiConfig,
    ScanConfig,
    SourceConfig,
    StompConfig,
    WebConfig,
)
from ._paths import PathRefusedError, resolve_under
from ._runtime import RUNTIME_DIR_ENV, pid_file
from ._schema import config_schema
from ._world import Finding, check_world

__all__ = [
    "AccessConfig",
    "BlueskyConfig",
    "DATA_ROOT_ENV",
    "ConfigError",
    "ConfigIssue",
    "EngineConfig",
    "Finding",
    "HistogramConfig",
    "IocConfig",
    "Locator",
    "NexusConfig",
    "PathRefusedError",
    "PublishConfig",
    "RUNTIME_DIR_ENV",
    "RoiConfig",
    "ScanConfig",
    "SourceConfig",
    "StompConfig",
    "WebConfig",
    "check_world",
    "config_schema",
    "load_config",
    "load_config_located",
    "located_issues",
    "parse_config",
    "parse_config_located",
    "pid_file",
    "resolve_under",
]

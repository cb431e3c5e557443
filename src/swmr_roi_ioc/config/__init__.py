"""ioc.yaml: pydantic models, loading with located errors, JSON schema."""

from ._load import DATA_ROOT_ENV, ConfigError, ConfigIssue, load_config, parse_config
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
from ._schema import config_schema

__all__ = [
    "AccessConfig",
    "BlueskyConfig",
    "DATA_ROOT_ENV",
    "ConfigError",
    "ConfigIssue",
    "EngineConfig",
    "HistogramConfig",
    "IocConfig",
    "NexusConfig",
    "PublishConfig",
    "RoiConfig",
    "ScanConfig",
    "SourceConfig",
    "StompConfig",
    "WebConfig",
    "config_schema",
    "load_config",
    "parse_config",
]

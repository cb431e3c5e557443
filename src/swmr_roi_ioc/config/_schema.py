"""The JSON Schema of ioc.yaml, generated from the models (never by hand)."""

from __future__ import annotations

import json
from typing import Any

from ._models import IocConfig


def config_schema() -> dict[str, Any]:
    schema = IocConfig.model_json_schema()
    schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    schema["title"] = "swmr-roi-ioc ioc.yaml"
    return schema


def config_schema_json() -> str:
    return json.dumps(config_schema(), indent=2) + "\n"

"""Load ioc.yaml into an IocConfig, with errors that name FILE:LINE: key."""

from __future__ import annotations

import difflib
import os
import types
import typing
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ValidationError
from ruamel.yaml import YAML
from ruamel.yaml.comments import CommentedMap, CommentedSeq
from ruamel.yaml.error import MarkedYAMLError, YAMLError

from swmr_roi_ioc._errors import SwmrRoiError

from ._models import IocConfig
from ._world import Finding

#: Environment variable that overrides ``data_root``.
DATA_ROOT_ENV = "SWMR_ROI_DATA_ROOT"
#: Environment variable that overrides ``screens_dir`` (the container sets /epics/opi).
SCREENS_DIR_ENV = "SWMR_ROI_SCREENS_DIR"


#: Where a key of the config is: (key path as pydantic's ``loc``) -> 1-based line.
Locator = Callable[[Sequence[int | str]], int]


@dataclass(frozen=True)
class ConfigIssue:
    """One thing wrong with a config file, located for a person."""

    file: str
    line: int
    key: str
    message: str
    #: a warning: the config can run, but probably not as meant
    warning: bool = False

    def __str__(self) -> str:
        key = f" {self.key}:" if self.key else ""
        level = " warning:" if self.warning else ""
        return f"{self.file}:{self.line}:{level}{key} {self.message}"


class ConfigError(SwmrRoiError):
    """ioc.yaml could not be used; ``issues`` say where and why."""

    def __init__(self, issues: Sequence[ConfigIssue]) -> None:
        self.issues = list(issues)
        super().__init__("\n".join(str(i) for i in self.issues))


def _key_path(loc: Sequence[int | str]) -> str:
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += f".{part}" if out else str(part)
    return out


def located_issues(file: str, locate: Locator, findings: Sequence[Finding]) -> list[ConfigIssue]:
    """``findings`` (by key path) as issues located at their line, in line order."""
    issues = [
        ConfigIssue(file, locate(f.loc), _key_path(f.loc), f.message, warning=f.warning)
        for f in findings
    ]
    return sorted(issues, key=lambda i: i.line)


def _line_of(doc: Any, loc: Sequence[int | str]) -> int:
    """1-based line of the deepest YAML node that ``loc`` reaches."""
    line = 1
    node = doc
    for part in loc:
        if isinstance(node, CommentedMap) and isinstance(part, str) and part in node:
            line = node.lc.key(part)[0] + 1
            node = node[part]
        elif isinstance(node, CommentedSeq) and isinstance(part, int) and 0 <= part < len(node):
            line = node.lc.item(part)[0] + 1
            node = node[part]
        else:
            break
    return line


def _model_at(loc: Sequence[int | str]) -> type[BaseModel] | None:
    """The model whose keys sit at ``loc`` (list indices skipped)."""
    model: type[BaseModel] = IocConfig
    for part in loc:
        if isinstance(part, int):
            continue
        field = model.model_fields.get(part)
        if field is None:
            return None
        inner = _model_in(field.annotation)
        if inner is None:
            return None
        model = inner
    return model


def _model_in(annotation: Any) -> type[BaseModel] | None:
    """The pydantic model inside ``X``, ``list[X]``, ``X | None``."""
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    origin = typing.get_origin(annotation)
    if origin in (list, typing.Union, types.UnionType):
        for arg in typing.get_args(annotation):
            found = _model_in(arg)
            if found is not None:
                return found
    return None


def _unknown_key(loc: Sequence[int | str]) -> str:
    """'unknown key', with the nearest valid key(s) at that place."""
    key = str(loc[-1]) if loc else ""
    model = _model_at(loc[:-1])
    known = sorted(model.model_fields) if model is not None else []
    close = difflib.get_close_matches(key, known, n=2, cutoff=0.6)
    if close:
        return f"unknown key; did you mean {' or '.join(repr(c) for c in close)}?"
    if known:
        return f"unknown key; the keys here are {', '.join(known)}"
    return "unknown key (not in the schema; see `swmr-roi-ioc schema`)"


def _message(error: Any) -> str:
    msg = str(error["msg"])
    for lead in ("Value error, ", "Assertion failed, "):
        msg = msg.removeprefix(lead)
    if error["type"] == "extra_forbidden":
        return _unknown_key(error["loc"])
    if error["type"] == "missing":
        return "required key is missing"
    got = error.get("input")
    if "(got" not in msg and not isinstance(got, dict | list):
        msg += f" (got {got!r})"
    return msg


def parse_config(text: str, file: str = "<string>") -> IocConfig:
    """Parse and validate ioc.yaml text. Raises ConfigError."""
    return parse_config_located(text, file)[0]


def parse_config_located(text: str, file: str = "<string>") -> tuple[IocConfig, Locator]:
    """Like :func:`parse_config`, also returning where each key is (for later
    checks that locate what they find)."""
    yaml = YAML(typ="rt")  # round-trip loader: safe, and keeps line numbers
    try:
        doc = yaml.load(text)
    except MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = mark.line + 1 if mark is not None else 1
        problem = exc.problem or exc.context or "YAML syntax error"
        raise ConfigError([ConfigIssue(file, line, "", f"YAML syntax error: {problem}")]) from exc
    except YAMLError as exc:
        raise ConfigError([ConfigIssue(file, 1, "", f"YAML error: {exc}")]) from exc
    if doc is None:
        raise ConfigError([ConfigIssue(file, 1, "", "the file is empty; expected a mapping")])
    if not isinstance(doc, CommentedMap):
        raise ConfigError(
            [
                ConfigIssue(
                    file,
                    1,
                    "",
                    f"expected a mapping at top level, got {type(doc).__name__}",
                )
            ]
        )
    try:
        config = IocConfig.model_validate(_plain(doc))
    except ValidationError as exc:
        issues = [
            ConfigIssue(file, _line_of(doc, err["loc"]), _key_path(err["loc"]), _message(err))
            for err in exc.errors()
        ]
        raise ConfigError(sorted(issues, key=lambda i: i.line)) from exc
    issues = [
        ConfigIssue(file, _line_of(doc, loc), _key_path(loc), message)
        for loc, message in _cross_checks(config)
    ]
    if issues:
        raise ConfigError(issues)
    root = os.environ.get(DATA_ROOT_ENV)
    if root:
        if not Path(root).is_absolute():
            raise ConfigError(
                [
                    ConfigIssue(
                        file,
                        1,
                        "data_root",
                        f"{DATA_ROOT_ENV}={root!r} is not absolute",
                    )
                ]
            )
        config = config.model_copy(update={"data_root": root})
    screens = os.environ.get(SCREENS_DIR_ENV)
    if screens:
        config = config.model_copy(update={"screens_dir": screens})
    return config, lambda loc: _line_of(doc, loc)


def _cross_checks(config: IocConfig) -> list[tuple[tuple[str | int, ...], str]]:
    """Checks across keys, each located at the key to change."""
    out: list[tuple[tuple[str | int, ...], str]] = []
    plugin = config.source.plugin_prefix
    if plugin and (plugin.startswith(config.prefix) or config.prefix.startswith(plugin)):
        out.append(
            (
                ("prefix",),
                f"{config.prefix!r} overlaps the camera plugin's prefix {plugin!r}: "
                "their PV names could collide",
            )
        )
    return out


def _plain(node: Any) -> Any:
    """ruamel containers -> plain dict/list, so pydantic sees ordinary Python."""
    if isinstance(node, dict):
        return {str(k) if not isinstance(k, str) else k: _plain(v) for k, v in node.items()}
    if isinstance(node, list):
        return [_plain(v) for v in node]
    return node


def load_config(path: str | os.PathLike[str]) -> IocConfig:
    """Read and validate an ioc.yaml file. Raises ConfigError."""
    return load_config_located(path)[0]


def load_config_located(path: str | os.PathLike[str]) -> tuple[IocConfig, Locator]:
    """Like :func:`load_config`, also returning where each key is."""
    name = os.fspath(path)
    try:
        raw = Path(name).read_bytes()
    except OSError as exc:
        reason = exc.strerror or str(exc)
        raise ConfigError([ConfigIssue(name, 1, "", f"cannot read the file: {reason}")]) from exc
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        what = "an HDF5 file" if raw.startswith(b"\x89HDF") else "binary data"
        raise ConfigError(
            [
                ConfigIssue(
                    name,
                    1,
                    "",
                    f"not a YAML text file ({what}); an ioc.yaml is expected here",
                )
            ]
        ) from exc
    if "\0" in text:
        raise ConfigError(
            [ConfigIssue(name, 1, "", "not a YAML text file (binary data); expected an ioc.yaml")]
        )
    return parse_config_located(text, name)

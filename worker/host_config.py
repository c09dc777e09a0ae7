"""The host limits as the volunteer sets them: `worker.toml` in the worker's home, then environment
variables `ARN_WORKER_*`, then the `worker join` command line, each overriding the one before.

    # ~/.autoresearch-worker/worker.toml
    when = "idle"
    idle_minutes = 15
    hours = "22-07,12-13"
    max_gpu_temp = 80
    max_gpu_power = 250
    max_cpu_load = 0.8
    idle_command = "xprintidle"                  # prints the desktop's idle time in milliseconds
    ignore_gpu_processes = ["firefox", "steam"]  # never make the GPU busy (display servers never do)

An unknown key is refused rather than ignored: a misspelt cap must not silently lift the cap.
"""

from __future__ import annotations

import os
import tomllib
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from pydantic import Field, ValidationError, field_validator
from pydantic_settings import BaseSettings, PydanticBaseSettingsSource, SettingsConfigDict

from worker.host_limits import HostGate, HostLimits, HostLimitsError, When, parse_hours
from worker.host_probe import SystemProbe

CONFIG_FILE = "worker.toml"
ENV_PREFIX = "ARN_WORKER_"


class HostConfigError(ValueError):
    """A setting that cannot be used; the message names where it came from."""


class HostSettings(BaseSettings):
    """One pydantic-settings class: the file's values come in through `load_host_settings`."""

    model_config = SettingsConfigDict(env_prefix=ENV_PREFIX, env_ignore_empty=True, extra="forbid")

    when: When = When.always
    idle_minutes: float = Field(default=10.0, ge=0)
    hours: str | None = None
    max_gpu_temp: float | None = Field(default=None, gt=0)
    max_gpu_power: float | None = Field(default=None, gt=0)
    max_cpu_load: float | None = Field(default=None, gt=0)
    idle_command: str | None = None
    ignore_gpu_processes: tuple[str, ...] = ()

    @field_validator("hours")
    @classmethod
    def _hours_parse(cls, value: str | None) -> str | None:
        if value is not None:
            parse_hours(value)  # HostLimitsError is a ValueError: pydantic reports it
        return value

    def limits(self) -> HostLimits:
        return HostLimits(
            when=self.when,
            idle_minutes=self.idle_minutes,
            hours=parse_hours(self.hours) if self.hours else (),
            max_gpu_temp_c=self.max_gpu_temp,
            max_gpu_power_w=self.max_gpu_power,
            max_cpu_load=self.max_cpu_load,
        )

    def gate(self, *, watch_gpu: bool) -> HostGate | None:
        """The gate the daemon checks, reading this machine; None when no limit is set.
        `watch_gpu` is False for a worker that trains on the CPU."""
        limits = self.limits()
        if not limits.active:
            return None
        probe = SystemProbe.for_limits(
            limits,
            watch_gpu=watch_gpu,
            idle_command=self.idle_command,
            ignore_gpu_processes=self.ignore_gpu_processes,
        )
        return HostGate(limits, probe)


class _FileSource(PydanticBaseSettingsSource):
    """The values read from worker.toml, below the environment."""

    def __init__(self, settings_cls: type[BaseSettings], values: Mapping[str, Any]) -> None:
        super().__init__(settings_cls)
        self._values = dict(values)

    def get_field_value(self, field: Any, field_name: str) -> tuple[Any, str, bool]:
        return self._values.get(field_name), field_name, False

    def __call__(self) -> dict[str, Any]:
        return dict(self._values)


def read_config_file(path: Path) -> dict[str, Any]:
    """worker.toml's settings; none when it does not exist."""
    try:
        with path.open("rb") as handle:
            return tomllib.load(handle)
    except FileNotFoundError:
        return {}
    except (OSError, tomllib.TOMLDecodeError) as exc:
        raise HostConfigError(f"cannot read {path}: {exc}") from exc


def load_host_settings(config_file: Path, *, given: Mapping[str, Any]) -> HostSettings:
    """Layer worker.toml < ARN_WORKER_* < `given` (the options passed on the command line; None
    values are options left out)."""
    file_values = read_config_file(config_file)
    unknown = sorted(set(file_values) - set(HostSettings.model_fields))
    if unknown:
        known = ", ".join(HostSettings.model_fields)
        raise HostConfigError(f"{config_file}: unknown setting {unknown[0]!r} (known: {known})")
    cli = {name: value for name, value in given.items() if value is not None}

    class Layered(HostSettings):
        @classmethod
        def settings_customise_sources(
            cls,
            settings_cls: type[BaseSettings],
            init_settings: PydanticBaseSettingsSource,
            env_settings: PydanticBaseSettingsSource,
            dotenv_settings: PydanticBaseSettingsSource,
            file_secret_settings: PydanticBaseSettingsSource,
        ) -> tuple[PydanticBaseSettingsSource, ...]:
            return init_settings, env_settings, _FileSource(settings_cls, file_values)

    try:
        return Layered(**cli)
    except ValidationError as exc:
        raise HostConfigError(_describe(exc, config_file=config_file, cli=cli)) from None


def _describe(error: ValidationError, *, config_file: Path, cli: Mapping[str, Any]) -> str:
    """The first problem, named by where the value came from: the option, the variable or the file."""
    first = error.errors()[0]
    name = str(first["loc"][0]) if first["loc"] else ""
    if name in cli:
        origin = f"--{name.replace('_', '-')}"
    elif os.environ.get(f"{ENV_PREFIX}{name.upper()}"):
        origin = f"{ENV_PREFIX}{name.upper()}"
    else:
        origin = f"{name} in {config_file}"
    message = str(first["msg"]).removeprefix("Value error, ")
    return f"{origin}: {message}"


__all__ = ["CONFIG_FILE", "HostConfigError", "HostLimitsError", "HostSettings", "load_host_settings"]

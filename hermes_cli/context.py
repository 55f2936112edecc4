"""What every command starts from: the environment, the files, the config, and a Runtime on demand."""

from __future__ import annotations

import os
import sys
from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import cached_property

from hermes_cli.config import Config, load_config
from hermes_cli.paths import Paths, resolve_paths


@dataclass
class Context:
    env: Mapping[str, str] = field(default_factory=lambda: dict(os.environ))

    @cached_property
    def paths(self) -> Paths:
        return resolve_paths(self.env)

    @cached_property
    def config(self) -> Config:
        config = load_config(self.paths.config_file)
        for warning in config.warnings:
            print(f"hermes: warning: {warning}", file=sys.stderr)
        return config

    def runtime(self):  # type: ignore[no-untyped-def]
        from agent.runtime import Runtime
        from hermes_cli.exit_codes import watch_secrets
        from hermes_cli.output import warn

        runtime = Runtime(
            config=self.config, env=self.env, state_dir=self.paths.state_dir, data_dir=self.paths.data_dir, warn=warn
        )
        watch_secrets(runtime.secrets)
        return runtime

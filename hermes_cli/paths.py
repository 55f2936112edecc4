"""Where hermes keeps its files: HERMES_HOME when set, otherwise the platform's directories."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class Paths:
    config_file: Path
    state_dir: Path
    data_dir: Path

    @property
    def credential_state(self) -> Path:
        return self.state_dir / "credentials.db"

    @property
    def auth_store(self) -> Path:
        return self.state_dir / "auth.json"

    @property
    def history_file(self) -> Path:
        return self.state_dir / "history"

    @property
    def sessions_db(self) -> Path:
        return self.data_dir / "sessions.db"


def resolve_paths(env: Mapping[str, str]) -> Paths:
    home = env.get("HERMES_HOME")
    if home:
        root = Path(home).expanduser()
        return Paths(root / "config.toml", root / "state", root / "data")
    import platformdirs

    return Paths(
        Path(platformdirs.user_config_dir("hermes")) / "config.toml",
        Path(platformdirs.user_state_dir("hermes")),
        Path(platformdirs.user_data_dir("hermes")),
    )

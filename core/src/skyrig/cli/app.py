"""Finding the app a command works on."""

from __future__ import annotations

import os
import tomllib
from pathlib import Path

from skyrig.config import CONFIG_FILE, ConfigError, find_root
from skyrig.errors import UserError


def app_root(app_dir: str | None, *, require_config: bool) -> Path:
    """The app root for ``app_dir`` (default: the current folder): where ``skyrig.toml`` is."""
    start = Path(app_dir) if app_dir else Path.cwd()
    if not start.is_dir():
        raise UserError(f"{start} is not a folder", "pass the folder of an app, where skyrig.toml is")
    try:
        return find_root(start)
    except UserError:
        if require_config:
            raise
        return start.resolve()


def app_name(root: Path) -> str:
    """The app's name, read cheaply: ``SKYRIG_APP``, else ``app`` in ``skyrig.toml``, else the folder's name.

    The same precedence as the full configuration, without validating (or importing) all of it.
    """
    from skyrig.values import check_name, suggest_name

    path = root / CONFIG_FILE
    variable = next((value for key, value in os.environ.items() if key.upper() == "SKYRIG_APP"), None)
    where = "SKYRIG_APP" if variable is not None else CONFIG_FILE
    if variable is not None:
        name = variable
    elif not path.is_file():
        return suggest_name(root.name)
    else:
        try:
            name = tomllib.loads(path.read_text(encoding="utf-8")).get("app")
        except tomllib.TOMLDecodeError as error:
            raise ConfigError([f"{CONFIG_FILE}: invalid TOML: {error}"]) from None
        if name is None:
            raise ConfigError([f"{CONFIG_FILE}: app: missing: this field is required"])
    try:
        return check_name(name)
    except ValueError as error:
        raise ConfigError([f"{where}: app: {error}"]) from None

"""Files only the operator reads: the data dir is 0700; databases, keys, tokens and logs are 0600.

The API, the worker and the dev server all write there; each creates what it owns through these
helpers, so a fresh data dir is private whichever process comes first (docs/security.md).
"""

from __future__ import annotations

import contextlib
import os
from pathlib import Path

DIR_MODE = 0o700
FILE_MODE = 0o600


def private_dir(path: Path) -> Path:
    """``path`` and missing parents, made 0700 when this call creates it (an existing directory the
    operator chose keeps its mode: it may be shared on purpose)."""
    if not path.exists():
        path.mkdir(parents=True, exist_ok=True, mode=DIR_MODE)
        with contextlib.suppress(OSError):
            path.chmod(DIR_MODE)  # mkdir's mode is cut by the umask
    return path


def private_file(path: Path) -> Path:
    """Create ``path`` empty with mode 0600 unless it exists; an existing one is made 0600 if ours."""
    private_dir(path.parent)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_CLOEXEC, FILE_MODE)
    os.close(fd)
    with contextlib.suppress(OSError):
        os.chmod(path, FILE_MODE)
    return path


def sqlite_file(url: str) -> Path | None:
    """The database file of a ``sqlite:///path`` URL (None for other databases or in-memory)."""
    if not url.startswith("sqlite"):
        return None
    from sqlalchemy.engine import make_url

    database = make_url(url).database
    return Path(database) if database and database != ":memory:" and not database.startswith("file:") else None

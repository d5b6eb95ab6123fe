"""The CLI's access token, and ``porpoise token create|list|revoke`` (docs/security.md).

Where the CLI finds its token, first hit wins: ``PORPOISE_TOKEN``; the file ``PORPOISE_TOKEN_FILE``
or ``~/.config/porpoise/token`` (refused unless mode 0600 or stricter, like ssh keys); the
administrator token ``porpoise up`` wrote to ``<data dir>/admin.token``. So on the machine that runs
``porpoise up`` the CLI works with no extra step.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

if TYPE_CHECKING:  # pydantic-settings is slow to import: every CLI command would pay for it (api/cli.py)
    from core.settings import Settings

ADMIN_TOKEN_FILE = "admin.token"

token_app = typer.Typer(help="Access tokens: create (shown once), list, revoke. Administrators only.",
                        no_args_is_help=True)


def admin_token_file(settings: Settings) -> Path:
    return (settings.data_dir / ADMIN_TOKEN_FILE).resolve()


def user_token_file() -> Path:
    return Path(os.environ.get("PORPOISE_TOKEN_FILE") or Path.home() / ".config" / "porpoise" / "token")


def _read_private(path: Path) -> str:
    try:
        mode = stat.S_IMODE(path.stat().st_mode)
    except OSError:
        return ""
    if mode & 0o077:
        raise typer.BadParameter(f"{path} is readable by others (mode {mode:o}); run `chmod 600 {path}`")
    return path.read_text().strip()


def client_token(settings: Settings | None = None) -> str:
    """The token the CLI sends ("" when it has none: the API will answer 401 saying how to get one)."""
    if settings is None:
        from core.settings import get_settings

        settings = get_settings()
    return (os.environ.get("PORPOISE_TOKEN", "").strip() or _read_private(user_token_file())
            or _read_private(admin_token_file(settings)))


def write_admin_token(settings: Settings) -> Path:
    """On the first ``porpoise up``: an administrator token, saved 0600 in the data dir. Later starts
    keep the file while its token is valid."""
    from core.private_files import FILE_MODE
    from storage.security import SecurityStore

    path = admin_token_file(settings)
    store = SecurityStore(settings.resolved_database_url)
    try:
        existing = path.read_text().strip() if path.exists() else ""
        if existing and store.principal(existing) is not None:
            return path
        name = "admin" if not any(u["name"] == "admin" and not u["admin"] for u in store.users()) else "up-admin"
        _, token = store.issue_token(name, name="porpoise up", admin=True)
    finally:
        store.dispose()
    tmp = path.with_name(f".{path.name}.{os.getpid()}")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC, FILE_MODE)
    with os.fdopen(fd, "w") as f:
        f.write(token + "\n")
    os.replace(tmp, path)
    return path


def _request(method: str, path: str, **kwargs: Any) -> Any:
    from .cli import _request as request

    return request(method, path, **kwargs)


@token_app.command("create")
def token_create(
    name: Annotated[str, typer.Argument(help="the token's user (made if new)")],
    admin: Annotated[bool, typer.Option("--admin", help="an administrator")] = False,
    project: Annotated[list[int] | None, typer.Option("--project", help="authorize for this project code")] = None,
    expires: Annotated[float | None, typer.Option("--expires", help="days until it expires (default never)")] = None,
) -> None:
    """Issue a token; it is printed once, alone on the last line."""
    body: dict[str, Any] = {"name": name, "admin": admin, "projects": project or []}
    if expires is not None:
        body["expiresDays"] = expires
    made = _request("POST", "/tokens", json=body)
    typer.echo(f"token {made['id']} for {'administrator' if made['admin'] else 'user'} {made['user']}"
               f"{', expires ' + str(made['expiresAt']) if made['expiresAt'] else ''}:", err=True)
    typer.echo(made["token"])


@token_app.command("list")
def token_list() -> None:
    """Every token: id, user, state, expiry (never the token)."""
    for t in _request("GET", "/tokens"):
        typer.echo(f"{t['id']}\t{t['user']}\t{'admin' if t['admin'] else 'user'}\t{t['state']}\t"
                   f"expires {t['expiresAt'] or 'never'}")


@token_app.command("revoke")
def token_revoke(token_id: int) -> None:
    """Revoke a token at once."""
    _request("DELETE", f"/tokens/{token_id}")
    typer.echo(f"token {token_id} revoked")


keys_app = typer.Typer(help="The Temporal payload key ring (core/codec.py).", no_args_is_help=True)


@keys_app.command("rotate")
def keys_rotate() -> None:
    """Add a new payload key: new payloads are encrypted with it, old ones still decrypt. Run it where
    the key ring file lives (every process reads the same file)."""
    from core.codec import key_file, rotate
    from core.settings import get_settings

    path = key_file(get_settings())
    typer.echo(f"new payload key {rotate(path)} in {path}")

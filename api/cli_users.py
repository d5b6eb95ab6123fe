"""``porpoise user password NAME``: set the password a user logs in with to DS's ``POST /login``
(api/ds_rest/routers/login.py; docs/security.md).

The password is read from the terminal (asked twice, not echoed) or, when stdin is not a terminal,
from stdin's first line; never from the command line, where other users could see it in the process
list. Only its salted scrypt hash is stored (storage/login.py). Like ``porpoise keys rotate`` this
works on the database directly (``DATABASE_URL``), so run it where the database is reachable.
"""

from __future__ import annotations

import sys
from typing import Annotated

import typer

user_app = typer.Typer(help="Users: the password for DS's login (tokens: `porpoise token`).", no_args_is_help=True)


def _read_password() -> str:
    if sys.stdin.isatty():
        return str(typer.prompt("password", hide_input=True, confirmation_prompt=True))
    return sys.stdin.readline().rstrip("\r\n")


@user_app.command("password")
def user_password(
    name: Annotated[str, typer.Argument(help="the user's name")],
    create: Annotated[bool, typer.Option("--create", help="make the user when there is none")] = False,
    admin: Annotated[bool, typer.Option("--admin", help="with --create: an administrator")] = False,
) -> None:
    """Set a user's password (read from the terminal or stdin) and end their login sessions."""
    from core.settings import get_settings
    from storage.login import LoginStore, UnknownUser
    from storage.security import SecurityError, SecurityStore

    password = _read_password()
    store = SecurityStore(get_settings().resolved_database_url)
    try:
        if create and not any(u["name"] == name for u in store.users()):
            store.create_user(name, is_admin=admin)
        user_id = LoginStore(store.engine).set_password(name, password)
    except SecurityError as e:
        typer.echo(f"error: {e}{' (add --create to make the user)' if isinstance(e, UnknownUser) else ''}", err=True)
        raise typer.Exit(2) from None
    finally:
        store.dispose()
    typer.echo(f"password set for user {name} (id {user_id}); their login sessions were ended")

"""The datasource registry: connection settings stored once, passwords encrypted, resolved at run time.

A SQL (or DataX) task names a datasource by its id, as in DolphinScheduler. Its host, user and
password never travel with the task: the activity calls :meth:`DatasourceStore.resolve` on the
worker, at run time, so nothing secret reaches Temporal (workflow inputs, activity inputs and
results, failures, heartbeats, search attributes) or the task log, and a changed password applies to
the next run of every workflow that uses the datasource.

Passwords are encrypted at rest with :mod:`storage.crypto` (Fernet, ``PORPOISE_SECRET_KEY``);
:meth:`DatasourceStore.rotate` re-encrypts them under the primary key.

The registry lives in the definitions database (``DATABASE_URL``), table ``datasource``.
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any
from urllib.parse import quote

from cryptography.fernet import InvalidToken
from pydantic import AliasChoices, BaseModel, ConfigDict, Field, field_validator
from sqlalchemy import DateTime, Integer, String, Text, select
from sqlalchemy.engine import URL, Engine
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Mapped, Session, mapped_column

from core.errors import Conflict, NotFound
from core.settings import Settings

from .crypto import Cipher, SecretKeyError, rotate_column
from .db import Base, aware, delete_by_id, engine_for, get_view, next_id

__all__ = ["Cipher", "SecretKeyError"]  # re-exported: callers of the registry meet both

# --------------------------------------------------------------------------------------------------
# Types
# --------------------------------------------------------------------------------------------------

# DolphinScheduler DbType names (3.2/3.3), plus SQLITE (the embedded default) and MARIADB (an alias
# of MYSQL that DS lacks). Every one can be stored, and used by DataX; EXECUTABLE ones run SQL here.
DS_TYPES = frozenset({
    "MYSQL", "POSTGRESQL", "HIVE", "SPARK", "CLICKHOUSE", "ORACLE", "SQLSERVER", "DB2", "PRESTO", "H2",
    "REDSHIFT", "ATHENA", "TRINO", "STARROCKS", "AZURESQL", "DAMENG", "OCEANBASE", "SSH", "KYUUBI",
    "DATABEND", "SNOWFLAKE", "VERTICA", "HANA", "DORIS", "ZEPPELIN", "SAGEMAKER", "K8S",
    "ALIYUN_SERVERLESS_SPARK", "SQLITE", "MARIADB",
})
EXECUTABLE = frozenset({"SQLITE", "POSTGRESQL", "MYSQL", "MARIADB"})
DEFAULT_PORTS = {
    "MYSQL": 3306, "MARIADB": 3306, "POSTGRESQL": 5432, "HIVE": 10000, "SPARK": 10000, "KYUUBI": 10009,
    "CLICKHOUSE": 8123, "ORACLE": 1521, "SQLSERVER": 1433, "AZURESQL": 1433, "DB2": 50000, "PRESTO": 8080,
    "TRINO": 8080, "REDSHIFT": 5439, "STARROCKS": 9030, "DORIS": 9030, "DAMENG": 5236, "OCEANBASE": 2881,
    "SSH": 22, "DATABEND": 8000, "VERTICA": 5433, "HANA": 30015,
}
MYSQL_LIKE = frozenset({"MYSQL", "MARIADB"})
CONNECT_TIMEOUT = 10  # seconds, unless the datasource's params say otherwise


class DatasourceNotFound(NotFound):
    pass


class DatasourceConflict(Conflict, ValueError):
    pass


# --------------------------------------------------------------------------------------------------
# Rows, input models, views
# --------------------------------------------------------------------------------------------------


class DatasourceRow(Base):
    __tablename__ = "datasource"
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    name: Mapped[str] = mapped_column(String(255), unique=True)
    type: Mapped[str] = mapped_column(String(64))
    host: Mapped[str] = mapped_column(String(255), default="")
    port: Mapped[int | None] = mapped_column(Integer, nullable=True)
    database: Mapped[str] = mapped_column(String(1024), default="")
    user_name: Mapped[str] = mapped_column(String(255), default="")
    password_enc: Mapped[str] = mapped_column(Text, default="")  # Fernet token; "" = no password
    params: Mapped[str] = mapped_column(Text, default="{}")  # JSON object of extra connection params
    note: Mapped[str] = mapped_column(Text, default="")
    version: Mapped[int] = mapped_column(Integer, default=1)  # +1 on every change: the engine cache key
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


_FORBIDDEN_PARAM_WORDS = ("password", "passwd", "secret")


def _check_params(value: Mapping[str, Any] | None) -> dict[str, str]:
    out: dict[str, str] = {}
    for k, v in (value or {}).items():
        key = str(k).strip()
        if not key:
            raise ValueError("connection param names must not be empty")
        if any(w in key.lower() for w in _FORBIDDEN_PARAM_WORDS):
            raise ValueError(f"connection param {key!r} looks like a secret: params are stored in clear, "
                             "put the password in the password field")
        if isinstance(v, (dict, list)):
            raise ValueError(f"connection param {key!r} must be a string, number or boolean")
        out[key] = "" if v is None else ("true" if v is True else "false" if v is False else str(v))
    return out


class _Fields(BaseModel):
    model_config = ConfigDict(populate_by_name=True, extra="forbid", str_strip_whitespace=True)

    @field_validator("type", check_fields=False)
    @classmethod
    def _type(cls, v: str | None) -> str | None:
        if v is None:
            return v
        t = v.strip().upper()
        if t not in DS_TYPES:
            raise ValueError(f"unknown datasource type {v!r}; one of {', '.join(sorted(DS_TYPES))}")
        return t

    @field_validator("params", check_fields=False)
    @classmethod
    def _params(cls, v: Mapping[str, Any] | None) -> dict[str, str] | None:
        return None if v is None else _check_params(v)


class DatasourceSpec(_Fields):
    """A datasource as created. Field aliases are DolphinScheduler's (``userName``, ``other``)."""

    id: int | None = Field(None, ge=1, description="keep a DS export's datasource id; default: next free")
    name: str = Field(min_length=1, max_length=255)
    type: str
    host: str = Field("", max_length=255)
    port: int | None = Field(None, ge=1, le=65535)
    database: str = Field("", max_length=1024)
    user: str = Field("", max_length=255, validation_alias=AliasChoices("userName", "user", "user_name"))
    password: str | None = Field(None, max_length=4096)
    params: dict[str, Any] = Field(default_factory=dict, validation_alias=AliasChoices("other", "params"))
    note: str = ""


class DatasourcePatch(_Fields):
    """An update: absent fields are unchanged; a missing or empty password keeps the stored one."""

    name: str | None = Field(None, min_length=1, max_length=255)
    type: str | None = None
    host: str | None = Field(None, max_length=255)
    port: int | None = Field(None, ge=1, le=65535)
    database: str | None = Field(None, max_length=1024)
    user: str | None = Field(None, max_length=255, validation_alias=AliasChoices("userName", "user", "user_name"))
    password: str | None = Field(None, max_length=4096)
    clear_password: bool = Field(False, validation_alias=AliasChoices("clearPassword", "clear_password"))
    params: dict[str, Any] | None = Field(None, validation_alias=AliasChoices("other", "params"))
    note: str | None = None


def _validate_shape(type_: str, host: str, database: str) -> None:
    if type_ == "SQLITE":
        if not database:
            raise ValueError("a SQLITE datasource needs database: the absolute path of the database file")
        if not os.path.isabs(database):
            raise ValueError(f"SQLITE database must be an absolute file path, got {database!r}")
    elif not host:
        raise ValueError(f"a {type_} datasource needs a host")


@dataclass(frozen=True)
class DatasourceView:
    """What may leave the registry: everything but the password (only whether there is one)."""

    id: int
    name: str
    type: str
    host: str
    port: int | None
    database: str
    user: str
    params: dict[str, str]
    note: str
    has_password: bool
    version: int
    created_at: datetime
    updated_at: datetime

    @property
    def executable(self) -> bool:
        return self.type in EXECUTABLE

    def as_dict(self) -> dict[str, Any]:
        """DolphinScheduler's field names, camelCase."""
        return {
            "id": self.id, "name": self.name, "type": self.type, "host": self.host, "port": self.port,
            "database": self.database, "userName": self.user, "other": dict(self.params), "note": self.note,
            "hasPassword": self.has_password, "executable": self.executable, "version": self.version,
            "createTime": self.created_at.isoformat(), "updateTime": self.updated_at.isoformat(),
        }


def _view(row: DatasourceRow) -> DatasourceView:
    return DatasourceView(
        id=row.id, name=row.name, type=row.type, host=row.host, port=row.port, database=row.database,
        user=row.user_name, params=json.loads(row.params or "{}"), note=row.note or "",
        has_password=bool(row.password_enc), version=row.version, created_at=aware(row.created_at),
        updated_at=aware(row.updated_at),
    )


# --------------------------------------------------------------------------------------------------
# Resolved connection info (worker side only)
# --------------------------------------------------------------------------------------------------

# Extra params: JDBC-style names as DS users write them, translated for the Python drivers.
_PG_PASS = frozenset({
    "sslmode", "sslrootcert", "sslcert", "sslkey", "sslcrl", "connect_timeout", "application_name", "options",
    "target_session_attrs", "keepalives", "keepalives_idle", "keepalives_interval", "keepalives_count",
    "gssencmode", "channel_binding", "client_encoding", "krbsrvname",
})
_MYSQL_PASS = frozenset({
    "charset", "connect_timeout", "read_timeout", "write_timeout", "ssl_ca", "ssl_cert", "ssl_key",
    "ssl_verify_cert", "ssl_verify_identity", "init_command", "sql_mode", "local_infile",
})


def _pg_param(key: str, value: str) -> tuple[str, str] | None:
    k = key.lower()
    if key in _PG_PASS:
        return key, value
    if k == "ssl":
        return ("sslmode", "require") if value.lower() == "true" else ("sslmode", "disable")
    if k == "connecttimeout":
        return "connect_timeout", value
    if k == "applicationname":
        return "application_name", value
    if k == "currentschema":
        return "options", f"-csearch_path={value}"
    return None


def _mysql_param(key: str, value: str) -> tuple[str, str] | None:
    k = key.lower()
    if key in _MYSQL_PASS:
        return key, value
    if k == "characterencoding":
        return "charset", "utf8mb4" if value.lower().replace("-", "") in ("utf8", "utf8mb4") else value
    if k in ("connecttimeout", "sockettimeout"):  # JDBC: milliseconds
        try:
            seconds = str(max(1, math.ceil(int(value) / 1000)))
        except ValueError:
            return None
        return ("connect_timeout" if k == "connecttimeout" else "read_timeout"), seconds
    return None


@dataclass(frozen=True)
class ConnectionInfo:
    """A datasource with its decrypted password. Lives inside one activity; never serialised."""

    id: int
    name: str
    type: str
    host: str
    port: int | None
    database: str
    user: str
    params: dict[str, str]
    version: int
    password: str = field(repr=False, default="")

    @property
    def executable(self) -> bool:
        return self.type in EXECUTABLE

    @property
    def label(self) -> str:
        return f"datasource {self.name!r} (id {self.id}, {self.type})"

    def where(self) -> str:
        """Host, port, database and user, for logs: never the password."""
        if self.type == "SQLITE":
            return self.database
        return f"{self.user or '-'}@{self.host}:{self.port or DEFAULT_PORTS.get(self.type, '')}/{self.database}"

    def mask(self, text: str) -> str:
        """``text`` with the password (plain and URL-encoded) replaced by ``******``."""
        if not self.password:
            return text
        for secret in {self.password, quote(self.password, safe=""), quote(self.password)}:
            if secret:
                text = text.replace(secret, "******")
        return text

    def driver_config(self) -> tuple[URL, dict[str, Any], list[str]]:
        """The SQLAlchemy URL, connect args, and the params the Python driver cannot use (ignored)."""
        ignored: list[str] = []
        if self.type == "SQLITE":
            return URL.create("sqlite", database=self.database), {"check_same_thread": False, "timeout": 30}, \
                sorted(self.params)
        translate = _pg_param if self.type == "POSTGRESQL" else _mysql_param
        query: dict[str, str] = {}
        for k, v in self.params.items():
            mapped = translate(k, v)
            if mapped is None:
                ignored.append(k)
            else:
                query[mapped[0]] = mapped[1]
        connect_args: dict[str, Any] = {}
        if "connect_timeout" not in query:
            connect_args["connect_timeout"] = CONNECT_TIMEOUT
        if self.type in MYSQL_LIKE:
            driver = "mysql+pymysql"
            query.setdefault("charset", "utf8mb4")
        elif self.type == "POSTGRESQL":
            driver = "postgresql+psycopg"
        else:
            raise ValueError(f"{self.label}: no Python driver for {self.type} in Porpoise")
        url = URL.create(driver, username=self.user or None, password=self.password or None, host=self.host,
                         port=self.port or DEFAULT_PORTS.get(self.type), database=self.database or None, query=query)
        return url, connect_args, ignored

    def jdbc_url(self) -> str:
        """A JDBC URL without credentials, for JVM tools such as DataX (any type, driver or not)."""
        port = self.port or DEFAULT_PORTS.get(self.type)
        hp = f"{self.host}:{port}" if port else self.host
        params = self.params
        amp = "&".join(f"{k}={v}" for k, v in params.items())
        t = self.type
        if t == "SQLITE":
            return f"jdbc:sqlite:{self.database}"
        if t in MYSQL_LIKE or t in ("DORIS", "STARROCKS", "OCEANBASE"):
            return f"jdbc:mysql://{hp}/{self.database}" + (f"?{amp}" if amp else "")
        if t in ("POSTGRESQL", "REDSHIFT"):
            scheme = "postgresql" if t == "POSTGRESQL" else "redshift"
            return f"jdbc:{scheme}://{hp}/{self.database}" + (f"?{amp}" if amp else "")
        if t == "ORACLE":
            return f"jdbc:oracle:thin:@//{hp}/{self.database}"
        if t in ("SQLSERVER", "AZURESQL"):
            extra = "".join(f";{k}={v}" for k, v in params.items())
            return f"jdbc:sqlserver://{hp};databaseName={self.database}{extra}"
        if t in ("HIVE", "SPARK", "KYUUBI"):
            extra = "".join(f";{k}={v}" for k, v in params.items())
            return f"jdbc:hive2://{hp}/{self.database}{extra}"
        if t == "DAMENG":
            return f"jdbc:dm://{hp}" + (f"?schema={self.database}" if self.database else "")
        schemes = {"CLICKHOUSE": "clickhouse", "DB2": "db2", "PRESTO": "presto", "TRINO": "trino",
                   "VERTICA": "vertica", "HANA": "sap", "DATABEND": "databend", "SNOWFLAKE": "snowflake"}
        scheme = schemes.get(t, t.lower())
        return f"jdbc:{scheme}://{hp}/{self.database}" + (f"?{amp}" if amp else "")


# --------------------------------------------------------------------------------------------------
# The store
# --------------------------------------------------------------------------------------------------


class DatasourceStore:
    """CRUD on the registry. Passwords go in encrypted and only come out through :meth:`resolve`."""

    def __init__(self, url: str, cipher: Cipher) -> None:
        self.engine: Engine = engine_for(url)
        self.cipher = cipher

    @classmethod
    def from_settings(cls, settings: Settings) -> DatasourceStore:
        """The registry for these settings; raises :class:`SecretKeyError` when no key is usable."""
        return cls(settings.resolved_database_url, Cipher.from_settings(settings))

    def create(self, spec: DatasourceSpec) -> DatasourceView:
        _validate_shape(spec.type, spec.host, spec.database)
        now = datetime.now(UTC)
        for attempt in range(5):
            try:
                with Session(self.engine) as s, s.begin():
                    self._check_name(s, spec.name, None)
                    if spec.id is not None:
                        if s.get(DatasourceRow, spec.id) is not None:
                            raise DatasourceConflict(f"datasource id {spec.id} is taken")
                        new_id = spec.id
                    else:
                        new_id = next_id(s, DatasourceRow.id)
                    row = DatasourceRow(
                        id=new_id, name=spec.name, type=spec.type, host=spec.host,
                        port=spec.port or DEFAULT_PORTS.get(spec.type), database=spec.database,
                        user_name=spec.user, password_enc=self.cipher.encrypt(spec.password or ""),
                        params=json.dumps(spec.params, sort_keys=True), note=spec.note, version=1,
                        created_at=now, updated_at=now,
                    )
                    s.add(row)
                    s.flush()
                    return _view(row)
            except IntegrityError:  # a concurrent create took the id or the name: look again
                if attempt == 4:
                    raise DatasourceConflict(f"datasource {spec.name!r} conflicts with another one") from None
        raise AssertionError("unreachable")

    @staticmethod
    def _check_name(s: Session, name: str, own_id: int | None) -> None:
        other = s.scalars(select(DatasourceRow).where(DatasourceRow.name == name)).first()
        if other is not None and other.id != own_id:
            raise DatasourceConflict(f"a datasource named {name!r} exists (id {other.id})")

    def list(self, type_: str | None = None) -> list[DatasourceView]:
        with Session(self.engine) as s:
            q = select(DatasourceRow).order_by(DatasourceRow.id)
            if type_:
                q = q.where(DatasourceRow.type == type_.upper())
            return [_view(r) for r in s.scalars(q).all()]

    def get(self, datasource_id: int) -> DatasourceView | None:
        view: DatasourceView | None = get_view(self.engine, DatasourceRow, datasource_id, _view)
        return view

    def update(self, datasource_id: int, patch: DatasourcePatch) -> DatasourceView | None:
        with Session(self.engine) as s, s.begin():
            row = s.get(DatasourceRow, datasource_id, with_for_update=True)
            if row is None:
                return None
            changes = patch.model_dump(exclude_unset=True, exclude={"password", "clear_password"})
            if "name" in changes and changes["name"] is not None:
                self._check_name(s, changes["name"], row.id)
                row.name = changes["name"]
            for attr, col in (("type", "type"), ("host", "host"), ("database", "database"), ("note", "note"),
                              ("user", "user_name")):
                if attr in changes and changes[attr] is not None:
                    setattr(row, col, changes[attr])
            if "port" in changes:
                row.port = changes["port"] or DEFAULT_PORTS.get(row.type)
            if patch.params is not None:
                row.params = json.dumps(patch.params, sort_keys=True)
            if patch.password:  # None or "" keeps the stored password (DS does the same)
                row.password_enc = self.cipher.encrypt(patch.password)
            elif patch.clear_password:
                row.password_enc = ""
            _validate_shape(row.type, row.host, row.database)
            row.version += 1
            row.updated_at = datetime.now(UTC)
            s.flush()
            return _view(row)

    def delete(self, datasource_id: int) -> bool:
        return delete_by_id(self.engine, DatasourceRow, datasource_id)

    def resolve(self, datasource_id: int) -> ConnectionInfo:
        """The datasource with its decrypted password: for activities and test-connect only."""
        with Session(self.engine) as s:
            row = s.get(DatasourceRow, datasource_id)
            if row is None:
                raise DatasourceNotFound(f"datasource {datasource_id} does not exist")
            try:
                password = self.cipher.decrypt(row.password_enc)
            except InvalidToken:
                raise SecretKeyError(
                    f"the password of datasource {row.name!r} (id {row.id}) was encrypted with a key that is not "
                    "in PORPOISE_SECRET_KEY any more: add that key back (after the primary), or set the password "
                    "again"
                ) from None
            return ConnectionInfo(
                id=row.id, name=row.name, type=row.type, host=row.host, port=row.port, database=row.database,
                user=row.user_name, params=json.loads(row.params or "{}"), version=row.version, password=password,
            )

    def rotate(self) -> dict[str, int]:
        """Re-encrypt every password still under an older key with the primary key.

        Returns counts; a password no configured key can decrypt is left as it is and counted
        ``unreadable`` (put its key back in PORPOISE_SECRET_KEY, or set the password again).
        """
        return rotate_column(self.engine, DatasourceRow, "password_enc", self.cipher)

    def dispose(self) -> None:
        """Close the pooled connections (the shared engine stays usable; it opens new ones)."""
        self.engine.dispose()

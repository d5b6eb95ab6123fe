"""The datasource registry: connection settings stored once, passwords encrypted, resolved at run time.

A SQL (or DataX) task names a datasource by its id, as in DolphinScheduler. Its host, user and
password never travel with the task: the activity calls :meth:`DatasourceStore.resolve` on the
worker, at run time, so nothing secret reaches Temporal (workflow inputs, activity inputs and
results, failures, heartbeats, search attributes) or the task log, and a changed password applies to
the next run of every workflow that uses the datasource.

Passwords are encrypted at rest with Fernet (AES-128-CBC + HMAC-SHA256). ``PORPOISE_SECRET_KEY``
holds one or more comma-separated keys: the first encrypts, every one decrypts (``MultiFernet``), so
a key is rotated by putting the new key first, re-encrypting (:meth:`DatasourceStore.rotate`), then
dropping the old one. Outside the embedded dev mode a missing key is a refusal to start
(:class:`SecretKeyError`); in dev mode a key file is generated under the data directory.

The registry lives in the definitions database (``DATABASE_URL``), table ``datasource``.
"""

from __future__ import annotations

import json
import math
import os
import threading
import time
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import quote

from cryptography.fernet import Fernet, InvalidToken, MultiFernet
from pydantic import AliasChoices, BaseModel, ConfigDict, Field, field_validator
from sqlalchemy import DateTime, Integer, String, Text, create_engine, event, func, select
from sqlalchemy.engine import URL, Engine
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import DeclarativeBase, Mapped, Session, mapped_column
from sqlalchemy.pool import NullPool

from core.private_files import private_dir
from core.settings import Settings

from .store import open_engine

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

KEY_HELP = 'python -c "from cryptography.fernet import Fernet; print(Fernet.generate_key().decode())"'


class SecretKeyError(RuntimeError):
    """No usable encryption key: the API and the worker refuse to start."""


class DatasourceNotFound(LookupError):
    pass


class DatasourceConflict(ValueError):
    pass


# --------------------------------------------------------------------------------------------------
# Keys and encryption
# --------------------------------------------------------------------------------------------------


def dev_mode(settings: Settings) -> bool:
    """The embedded dev mode: ``PORPOISE_DEV_MODE``, or by default "the database is SQLite".

    A SQLite database means one machine running everything (``porpoise up``); a shared database
    (PostgreSQL) means a deployment, where a key must be configured explicitly.
    """
    if settings.dev_mode is not None:
        return settings.dev_mode
    return settings.resolved_database_url.startswith("sqlite")


def key_file(settings: Settings) -> Path:
    return (settings.secret_key_file or settings.data_dir / "secret.key").resolve()


def _read_or_create_key(path: Path) -> str:
    """The dev key at ``path``, created atomically (mode 0600) by whichever process comes first."""
    if not path.exists():
        private_dir(path.parent)
        tmp = path.with_name(f".{path.name}.{os.getpid()}.{uuid.uuid4().hex}")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o600)
        with os.fdopen(fd, "w") as f:
            f.write(Fernet.generate_key().decode() + "\n")
        try:
            os.link(tmp, path)  # atomic: never a half-written key, and only one winner
        except FileExistsError:
            pass
        finally:
            os.unlink(tmp)
    return path.read_text().strip()


def load_keys(settings: Settings) -> list[str]:
    """The Fernet keys, primary first: ``PORPOISE_SECRET_KEY``, else the key file, else (dev mode
    only) a generated key file. Raises :class:`SecretKeyError` saying how to make a key."""
    raw = settings.secret_key.get_secret_value()
    source = "PORPOISE_SECRET_KEY"
    path = key_file(settings)
    if not raw.strip() and (settings.secret_key_file or path.exists()):
        try:
            raw, source = path.read_text(), str(path)
        except OSError as e:
            raise SecretKeyError(f"cannot read the secret key file {path}: {e.strerror}") from None
    if not raw.strip():
        if not dev_mode(settings):
            raise SecretKeyError(
                "No secret key for datasource passwords. Set PORPOISE_SECRET_KEY to a Fernet key (or several, "
                "comma-separated: the first encrypts, all decrypt), or PORPOISE_SECRET_KEY_FILE to a file "
                f"holding them. Make a key with:\n    {KEY_HELP}\n"
                "(Only the embedded dev mode - a SQLite database, or PORPOISE_DEV_MODE=true - generates one "
                "by itself, in <data dir>/secret.key.)"
            )
        raw, source = _read_or_create_key(path), str(path)
    keys = [k.strip() for k in raw.replace("\n", ",").split(",") if k.strip()]
    for i, k in enumerate(keys, 1):
        try:
            Fernet(k)
        except (ValueError, TypeError):
            raise SecretKeyError(
                f"key #{i} in {source} is not a Fernet key (32 url-safe base64-encoded bytes); make one with:\n"
                f"    {KEY_HELP}"
            ) from None
    return keys


class Cipher:
    """Encrypt with the primary key, decrypt with any (``MultiFernet``)."""

    def __init__(self, keys: Sequence[str | bytes]) -> None:
        if not keys:
            raise SecretKeyError("at least one key is needed")
        self._primary = Fernet(keys[0])
        self._all = MultiFernet([Fernet(k) for k in keys])

    @classmethod
    def from_settings(cls, settings: Settings) -> Cipher:
        return cls(load_keys(settings))

    def encrypt(self, plaintext: str) -> str:
        return self._all.encrypt(plaintext.encode()).decode() if plaintext else ""

    def decrypt(self, token: str) -> str:
        return self._all.decrypt(token.encode()).decode() if token else ""

    def is_current(self, token: str) -> bool:
        """Whether ``token`` is encrypted with the primary key (nothing to rotate)."""
        if not token:
            return True
        try:
            self._primary.decrypt(token.encode())
            return True
        except InvalidToken:
            return False

    def rotate(self, token: str) -> str:
        return self._all.rotate(token.encode()).decode() if token else ""


# --------------------------------------------------------------------------------------------------
# Rows, input models, views
# --------------------------------------------------------------------------------------------------


class RegistryBase(DeclarativeBase):
    pass


class DatasourceRow(RegistryBase):
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
        has_password=bool(row.password_enc), version=row.version, created_at=_aware(row.created_at),
        updated_at=_aware(row.updated_at),
    )


def _aware(value: datetime) -> datetime:
    return value if value.tzinfo else value.replace(tzinfo=UTC)  # SQLite drops the zone


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


def create_engine_for(info: ConnectionInfo, *, pool_size: int = 5, max_overflow: int = 10,
                      pooled: bool = True) -> Engine:
    """A SQLAlchemy engine for an executable datasource.

    SQLite connections run in driver autocommit mode (``isolation_level=None``) so the SQL task's
    explicit ``BEGIN`` covers DDL too; the other drivers open a transaction on the first statement.
    """
    url, connect_args, _ = info.driver_config()
    kwargs: dict[str, Any] = {"connect_args": connect_args, "pool_pre_ping": True}
    if not pooled:
        kwargs["poolclass"] = NullPool
    elif info.type != "SQLITE":
        kwargs.update(pool_size=pool_size, max_overflow=max_overflow, pool_timeout=60, pool_recycle=3600)
    engine = create_engine(url, **kwargs)
    if info.type == "SQLITE":

        @event.listens_for(engine, "connect")
        def _autocommit(dbapi_connection: Any, _record: Any) -> None:
            dbapi_connection.isolation_level = None

    return engine


@dataclass(frozen=True)
class ConnectionCheck:
    ok: bool
    message: str
    elapsed_ms: int
    server_version: str = ""

    def as_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"ok": self.ok, "message": self.message, "elapsedMs": self.elapsed_ms}
        if self.server_version:
            out["serverVersion"] = self.server_version
        return out


def check_connection(info: ConnectionInfo) -> ConnectionCheck:
    """Connect once (no pool) and run a trivial query. Blocking; messages have the password masked."""
    started = time.monotonic()

    def elapsed() -> int:
        return int((time.monotonic() - started) * 1000)

    if not info.executable:
        return ConnectionCheck(False, f"{info.type} is stored for DataX and other tools, but Porpoise has no Python "
                                  f"driver to connect to it (SQL tasks run on {', '.join(sorted(EXECUTABLE))})", 0)
    if info.type == "SQLITE" and not Path(info.database).exists():
        return ConnectionCheck(False, f"SQLite database file {info.database} does not exist", 0)
    engine = create_engine_for(info, pooled=False)
    try:
        raw = engine.raw_connection()
        try:
            cur = raw.cursor()
            query = {"SQLITE": "select sqlite_version()", "POSTGRESQL": "select version()"}.get(info.type,
                                                                                              "select version()")
            cur.execute(query)
            row = cur.fetchone()
            version = str(row[0]) if row else ""
            cur.close()
        finally:
            raw.close()
        return ConnectionCheck(True, f"connected to {info.where()}", elapsed(), version)
    except Exception as e:  # any driver error is the answer to "does it connect?"
        cause = getattr(e, "orig", None) or e
        return ConnectionCheck(False, info.mask(f"{type(cause).__name__}: {cause}".strip()), elapsed())
    finally:
        engine.dispose()


# --------------------------------------------------------------------------------------------------
# The store
# --------------------------------------------------------------------------------------------------


class DatasourceStore:
    """CRUD on the registry. Passwords go in encrypted and only come out through :meth:`resolve`."""

    def __init__(self, url: str, cipher: Cipher) -> None:
        self.engine: Engine = open_engine(url)
        self.cipher = cipher
        RegistryBase.metadata.create_all(self.engine)
        self._lock = threading.Lock()

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
                        new_id = (s.scalar(select(func.max(DatasourceRow.id))) or 0) + 1
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
        with Session(self.engine) as s:
            row = s.get(DatasourceRow, datasource_id)
            return _view(row) if row else None

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
        with Session(self.engine) as s, s.begin():
            row = s.get(DatasourceRow, datasource_id)
            if row is None:
                return False
            s.delete(row)
            return True

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
        counts = {"rotated": 0, "current": 0, "unreadable": 0}
        with Session(self.engine) as s, s.begin():
            for row in s.scalars(select(DatasourceRow).with_for_update()).all():
                if self.cipher.is_current(row.password_enc):
                    counts["current"] += 1
                    continue
                try:
                    row.password_enc = self.cipher.rotate(row.password_enc)
                except InvalidToken:
                    counts["unreadable"] += 1
                    continue
                counts["rotated"] += 1
        return counts

    def dispose(self) -> None:
        self.engine.dispose()


def resolve_datasource(store: DatasourceStore, datasource_id: int) -> ConnectionInfo:
    """Inside an activity, at run time: the datasource ``datasource_id`` with its credentials."""
    return store.resolve(datasource_id)

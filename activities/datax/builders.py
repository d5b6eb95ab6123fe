"""Reader and writer builders: one per plugin family, in a registry keyed by source type.

DS builds readers and writers only for JDBC datasources (``DataxUtils.getReaderPluginName`` /
``getWriterPluginName``, infrastructure notes §4.4). Porpoise decouples the two sides: a job is
*one reader builder* + *one writer builder*, each chosen by its side's type, so a new source type is
one :class:`PluginBuilder` subclass registered with :func:`register`. The families:

* :class:`JdbcBuilder` - every DS database type, parameterised by plugin names and identifier quotes;
  credentials come from the datasource registry at run time (never from the definition);
* :class:`HdfsBuilder`, :class:`HBaseBuilder` (``hbase11xreader``), :class:`HttpBuilder` (Addax
  ``httpreader`` keys, notes §4.2), :class:`TxtFileBuilder`, :class:`StreamBuilder` - configured by the
  task's ``sourceConfig`` / ``targetConfig`` objects (a Porpoise extension; DS has no UI for these).

A builder never decides how a password is written: it calls the :data:`PasswordFn` it is given. The
local runner passes the password itself (the job file is 0600 and deleted after the run); the
Kubernetes runner passes a ``${name}`` placeholder that datax.py fills from ``-p "-Dname=..."`` with
the value taken from a Secret (notes §5).
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, ClassVar

from storage.datasources import ConnectionInfo

from .columns import quote_column

PasswordFn = Callable[[ConnectionInfo], str]


class BuildError(ValueError):
    """A task parameter cannot make a valid job; the message names the parameter."""


@dataclass(frozen=True)
class Side:
    """One end of the job: its type (DS db type or a non-JDBC kind), the resolved datasource for JDBC
    types, and the side's own config (``sourceConfig`` / ``targetConfig``) for the others."""

    type: str
    info: ConnectionInfo | None = None
    config: Mapping[str, Any] = field(default_factory=dict)
    param: str = "dataSource"  # which task parameter named this side, for error messages


@dataclass(frozen=True)
class ReadSpec:
    sql: str  # "" for non-JDBC readers without one


@dataclass(frozen=True)
class WriteSpec:
    table: str
    columns: Sequence[str]  # unquoted names, in reader order
    pre: Sequence[str] = ()
    post: Sequence[str] = ()


class PluginBuilder(ABC):
    """Builds the ``{"name", "parameter"}`` of a reader and/or a writer for one family of types."""

    types: tuple[str, ...] = ()
    jdbc: ClassVar[bool] = False  # needs a datasource id (and SELECT sql as reader)

    def reader(self, side: Side, spec: ReadSpec, password: PasswordFn) -> dict[str, Any]:
        raise BuildError(f"{side.type} cannot be a DataX reader (dsType); readers: {', '.join(reader_types())}")

    def writer(self, side: Side, spec: WriteSpec, password: PasswordFn) -> dict[str, Any]:
        raise BuildError(f"{side.type} cannot be a DataX writer (dtType); writers: {', '.join(writer_types())}")

    def fill(self, parameter: dict[str, Any], info: ConnectionInfo, password: PasswordFn, *, reader: bool) -> None:
        """Custom mode: put the datasource's connection into a plugin ``parameter`` (the marker)."""
        raise BuildError(f"a datasourceId marker cannot name a {info.type} datasource")

    def source_columns(self, side: Side) -> list[str] | None:
        """Column names this reader produces when there is no SELECT to read them from."""
        return _names(side.config.get("column"))

    @abstractmethod
    def plugins(self) -> tuple[str | None, str | None]:
        """The DataX reader and writer plugin names (None: this family has no such side)."""

    @property
    def can_read(self) -> bool:
        return self.plugins()[0] is not None

    @property
    def can_write(self) -> bool:
        return self.plugins()[1] is not None


def _names(columns: Any) -> list[str] | None:
    if not isinstance(columns, list) or not columns:
        return None
    out = []
    for c in columns:
        name = c.get("name") if isinstance(c, Mapping) else c
        if not isinstance(name, str) or not name:
            return None
        out.append(name)
    return out


def _required(side: Side, key: str) -> Any:
    value = side.config.get(key)
    if value in (None, "", [], {}):
        which = "sourceConfig" if side.param == "dataSource" else "targetConfig"
        role = "reader" if which == "sourceConfig" else "writer"
        raise BuildError(f"{which}.{key} is required for a {side.type} {role}")
    return value


def _extra(side: Side, *known: str) -> dict[str, Any]:
    """Config keys the builder does not set itself are passed through to the plugin unchanged."""
    return {k: v for k, v in side.config.items() if k not in known}


# --------------------------------------------------------------------------------------------------
# JDBC: one builder, parameterised per DS db type
# --------------------------------------------------------------------------------------------------


class JdbcBuilder(PluginBuilder):
    """Any JDBC database: ``<x>reader`` with ``querySql`` + ``jdbcUrl[]``, ``<x>writer`` with ``column``
    (quoted for the target), ``table[]`` + ``jdbcUrl``, ``preSql``/``postSql`` (notes §4.2, §4.4)."""

    jdbc = True

    def __init__(self, types: tuple[str, ...], reader_name: str, writer_name: str) -> None:
        self.types = types
        self.reader_name, self.writer_name = reader_name, writer_name

    def plugins(self) -> tuple[str | None, str | None]:
        return self.reader_name, self.writer_name

    def _info(self, side: Side) -> ConnectionInfo:
        if side.info is None:  # pragma: no cover - the job builder resolves every JDBC side
            raise BuildError(f"{side.param}: a {side.type} side needs a datasource id")
        return side.info

    def reader(self, side: Side, spec: ReadSpec, password: PasswordFn) -> dict[str, Any]:
        info = self._info(side)
        if not spec.sql.strip():
            raise BuildError("sql is required: the reader's querySql")
        return {"name": self.reader_name, "parameter": {
            "username": info.user, "password": password(info),
            "connection": [{"querySql": [spec.sql], "jdbcUrl": [info.jdbc_url()]}],
        }}

    def writer(self, side: Side, spec: WriteSpec, password: PasswordFn) -> dict[str, Any]:
        info = self._info(side)
        if not spec.table.strip():
            raise BuildError("targetTable is required for a JDBC writer")
        parameter: dict[str, Any] = {
            "username": info.user, "password": password(info),
            "column": [quote_column(c, info.type) for c in spec.columns],
            "connection": [{"table": [spec.table], "jdbcUrl": info.jdbc_url()}],
        }
        if spec.pre:
            parameter["preSql"] = list(spec.pre)
        if spec.post:
            parameter["postSql"] = list(spec.post)
        return {"name": self.writer_name, "parameter": parameter}

    def fill(self, parameter: dict[str, Any], info: ConnectionInfo, password: PasswordFn, *, reader: bool) -> None:
        parameter["username"] = info.user
        parameter["password"] = password(info)
        connections = parameter.get("connection")
        if not isinstance(connections, list) or not connections:
            connections = [{}]
            parameter["connection"] = connections
        for conn in connections:
            if isinstance(conn, dict):  # a reader takes a list of URLs, a writer one URL (notes §4.2)
                conn["jdbcUrl"] = [info.jdbc_url()] if reader else info.jdbc_url()


# DS DataxUtils: MYSQL->mysqlreader, ..., default rdbmsreader/rdbmswriter (the generic JDBC plugin).
_JDBC_FAMILIES: tuple[tuple[tuple[str, ...], str, str], ...] = (
    (("MYSQL", "MARIADB"), "mysqlreader", "mysqlwriter"),
    (("POSTGRESQL",), "postgresqlreader", "postgresqlwriter"),
    (("ORACLE",), "oraclereader", "oraclewriter"),
    (("SQLSERVER", "AZURESQL"), "sqlserverreader", "sqlserverwriter"),
    (("CLICKHOUSE",), "clickhousereader", "clickhousewriter"),
    (("OCEANBASE",), "oceanbasev10reader", "oceanbasev10writer"),
    (("DATABEND",), "rdbmsreader", "databendwriter"),
    (("HIVE", "SPARK", "PRESTO", "TRINO", "KYUUBI", "DB2", "H2", "REDSHIFT", "ATHENA", "STARROCKS", "DAMENG",
      "SNOWFLAKE", "VERTICA", "HANA", "DORIS", "SQLITE"), "rdbmsreader", "rdbmswriter"),
)


# --------------------------------------------------------------------------------------------------
# Non-JDBC families
# --------------------------------------------------------------------------------------------------


def _string_columns(columns: Sequence[str]) -> list[dict[str, Any]]:
    return [{"name": c, "type": "string"} for c in columns]


def _index_columns(side: Side) -> list[Any]:
    configured = side.config.get("column")
    if isinstance(configured, list) and configured:
        return configured
    return ["*"]  # hdfsreader/txtfilereader: every field as a string


class HdfsBuilder(PluginBuilder):
    """``hdfsreader`` / ``hdfswriter`` (notes §4.2): ``defaultFS`` + ``path`` + ``fileType``."""

    types = ("HDFS",)
    _SET = ("defaultFS", "path", "fileType", "column", "fieldDelimiter", "encoding", "fileName", "writeMode")

    def plugins(self) -> tuple[str | None, str | None]:
        return "hdfsreader", "hdfswriter"

    def reader(self, side: Side, spec: ReadSpec, password: PasswordFn) -> dict[str, Any]:
        return {"name": "hdfsreader", "parameter": {
            "defaultFS": _required(side, "defaultFS"), "path": _required(side, "path"),
            "fileType": side.config.get("fileType", "text"), "column": _index_columns(side),
            "fieldDelimiter": side.config.get("fieldDelimiter", ","),
            "encoding": side.config.get("encoding", "UTF-8"), **_extra(side, *self._SET)}}

    def writer(self, side: Side, spec: WriteSpec, password: PasswordFn) -> dict[str, Any]:
        return {"name": "hdfswriter", "parameter": {
            "defaultFS": _required(side, "defaultFS"), "path": _required(side, "path"),
            "fileName": side.config.get("fileName") or spec.table or "datax",
            "fileType": side.config.get("fileType", "text"),
            "writeMode": side.config.get("writeMode", "append"),
            "fieldDelimiter": side.config.get("fieldDelimiter", "\t"),
            "column": side.config.get("column") or _string_columns(spec.columns),
            "encoding": side.config.get("encoding", "UTF-8"), **_extra(side, *self._SET)}}


class HBaseBuilder(PluginBuilder):
    """``hbase11xreader`` (notes §4.2): ``hbaseConfig`` (the ZooKeeper quorum), ``table``, ``column``."""

    types = ("HBASE",)

    def plugins(self) -> tuple[str | None, str | None]:
        return "hbase11xreader", None

    def reader(self, side: Side, spec: ReadSpec, password: PasswordFn) -> dict[str, Any]:
        quorum = side.config.get("hbaseConfig") or {"hbase.zookeeper.quorum": _required(side, "zookeeperQuorum")}
        return {"name": "hbase11xreader", "parameter": {
            "hbaseConfig": quorum, "table": _required(side, "table"),
            "mode": side.config.get("mode", "normal"), "column": _required(side, "column"),
            "encoding": side.config.get("encoding", "utf-8"),
            **_extra(side, "hbaseConfig", "zookeeperQuorum", "table", "mode", "column", "encoding")}}


class HttpBuilder(PluginBuilder):
    """Addax ``httpreader`` (notes §4.2; alibaba/DataX has no HTTP reader): ``connection{url}``,
    ``method``, ``headers``, ``reqParams``, ``resultKey``, ``column``, basic-auth ``username``/``password``.
    A password belongs in a ``${param}`` whose name says it is secret, so the log masks it."""

    types = ("HTTP",)

    def plugins(self) -> tuple[str | None, str | None]:
        return "httpreader", None

    def reader(self, side: Side, spec: ReadSpec, password: PasswordFn) -> dict[str, Any]:
        connection: dict[str, Any] = {"url": _required(side, "url")}
        if side.config.get("proxy"):
            connection["proxy"] = side.config["proxy"]
        parameter: dict[str, Any] = {
            "connection": connection, "method": str(side.config.get("method", "get")).lower(),
            "column": _required(side, "column"),
        }
        for key in ("headers", "reqParams", "resultKey", "username", "password", "authConfig", "isPage",
                    "pageParams", "timeout", "encoding"):
            if key in side.config:
                parameter[key] = side.config[key]
        return {"name": "httpreader", "parameter": parameter}


class TxtFileBuilder(PluginBuilder):
    """``txtfilereader`` / ``txtfilewriter`` on the DataX host's (or pod's) file system."""

    types = ("TXTFILE",)
    _SET = ("path", "column", "fieldDelimiter", "encoding", "fileName", "writeMode", "header", "fileFormat")

    def plugins(self) -> tuple[str | None, str | None]:
        return "txtfilereader", "txtfilewriter"

    def reader(self, side: Side, spec: ReadSpec, password: PasswordFn) -> dict[str, Any]:
        path = _required(side, "path")
        return {"name": "txtfilereader", "parameter": {
            "path": path if isinstance(path, list) else [path], "column": _index_columns(side),
            "fieldDelimiter": side.config.get("fieldDelimiter", ","),
            "encoding": side.config.get("encoding", "UTF-8"), **_extra(side, *self._SET)}}

    def writer(self, side: Side, spec: WriteSpec, password: PasswordFn) -> dict[str, Any]:
        return {"name": "txtfilewriter", "parameter": {
            "path": _required(side, "path"), "fileName": side.config.get("fileName") or spec.table or "datax",
            "writeMode": side.config.get("writeMode", "truncate"),
            "fieldDelimiter": side.config.get("fieldDelimiter", ","),
            "fileFormat": side.config.get("fileFormat", "csv"),
            "header": side.config.get("header", list(spec.columns)),
            "encoding": side.config.get("encoding", "UTF-8"), **_extra(side, *self._SET)}}


class StreamBuilder(PluginBuilder):
    """``streamreader`` / ``streamwriter``: generated records and stdout (DataX's own smoke job)."""

    types = ("STREAM",)

    def plugins(self) -> tuple[str | None, str | None]:
        return "streamreader", "streamwriter"

    def reader(self, side: Side, spec: ReadSpec, password: PasswordFn) -> dict[str, Any]:
        return {"name": "streamreader", "parameter": {
            "column": _required(side, "column"),
            "sliceRecordCount": int(side.config.get("sliceRecordCount", 10)),
            **_extra(side, "column", "sliceRecordCount")}}

    def writer(self, side: Side, spec: WriteSpec, password: PasswordFn) -> dict[str, Any]:
        return {"name": "streamwriter", "parameter": {
            "print": bool(side.config.get("print", True)), "encoding": side.config.get("encoding", "UTF-8"),
            **_extra(side, "print", "encoding")}}

    def source_columns(self, side: Side) -> list[str] | None:
        columns = side.config.get("column")
        if isinstance(columns, list) and columns:
            return [str(c.get("name") or f"c{i + 1}") if isinstance(c, Mapping) else f"c{i + 1}"
                    for i, c in enumerate(columns)]
        return None


# --------------------------------------------------------------------------------------------------
# The registry
# --------------------------------------------------------------------------------------------------

_REGISTRY: dict[str, PluginBuilder] = {}


def register(builder: PluginBuilder) -> PluginBuilder:
    """Make ``builder`` the one for each of its types (a later registration replaces an earlier one)."""
    for t in builder.types:
        _REGISTRY[t.upper()] = builder
    return builder


for _types, _reader, _writer in _JDBC_FAMILIES:
    register(JdbcBuilder(_types, _reader, _writer))
for _cls in (HdfsBuilder, HBaseBuilder, HttpBuilder, TxtFileBuilder, StreamBuilder):
    register(_cls())


def builder_for(type_: str, param: str) -> PluginBuilder:
    """The builder of a side's type; ``param`` (dsType/dtType) names it in the error."""
    found = _REGISTRY.get(str(type_ or "").strip().upper())
    if found is None:
        raise BuildError(f"{param} {type_!r} is not a DataX source type Porpoise knows; one of "
                         f"{', '.join(sorted(_REGISTRY))}")
    return found


def reader_types() -> list[str]:
    return sorted(t for t, b in _REGISTRY.items() if b.can_read)


def writer_types() -> list[str]:
    return sorted(t for t, b in _REGISTRY.items() if b.can_write)

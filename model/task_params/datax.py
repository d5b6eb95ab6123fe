"""DATAX parameters (reference §3 ``DataxParameters``), plus Porpoise's ``runOn`` (docs/datax.md)."""

from __future__ import annotations

from typing import ClassVar

from pydantic import Field

from .base import DatasourceId, JsonObject, Statements, TaskParams, Text, Upper, WholeNumber

# DataX sides that are not JDBC datasources (activities/datax/builders.py): configured by the task's
# sourceConfig/targetConfig instead of a datasource id, and a reader of these needs no SQL.
NON_JDBC = frozenset({"HDFS", "HBASE", "HTTP", "TXTFILE", "STREAM"})


class DataxParams(TaskParams):
    """``customConfig`` 0 builds the job from the UI keys; 1 runs the DataX job in ``json``."""

    task_types: ClassVar[tuple[str, ...]] = ("DATAX",)

    custom_config: WholeNumber = Field(default=None, alias="customConfig")
    job_json: Text = Field(default=None, alias="json")
    ds_type: Upper = Field(default=None, alias="dsType")
    data_source: DatasourceId = Field(default=None, alias="dataSource")
    dt_type: Upper = Field(default=None, alias="dtType")
    data_target: DatasourceId = Field(default=None, alias="dataTarget")
    sql: Text = None
    target_table: Text = Field(default=None, alias="targetTable")
    job_speed_byte: WholeNumber = Field(default=None, alias="jobSpeedByte")
    job_speed_record: WholeNumber = Field(default=None, alias="jobSpeedRecord")
    pre_statements: Statements = Field(default_factory=list, alias="preStatements")
    post_statements: Statements = Field(default_factory=list, alias="postStatements")
    source_config: JsonObject = Field(default_factory=dict, alias="sourceConfig")
    target_config: JsonObject = Field(default_factory=dict, alias="targetConfig")
    xms: WholeNumber = None  # GB
    xmx: WholeNumber = None  # GB
    run_on: Text = Field(default=None, alias="runOn")  # local | k8s | auto (Porpoise)

    @property
    def custom(self) -> bool:
        return self.custom_config == 1

    @property
    def source_is_jdbc(self) -> bool:
        return (self.ds_type or "") not in NON_JDBC

    @property
    def target_is_jdbc(self) -> bool:
        return (self.dt_type or "") not in NON_JDBC

    def problems(self) -> list[tuple[str, str]]:
        if self.custom:
            return [] if (self.job_json or "").strip() else [("json", "customConfig 1 needs the DataX job in json")]
        out = []
        if self.source_is_jdbc and not (self.sql or "").strip():
            out.append(("sql", "sql is required in UI mode (customConfig 0)"))
        if self.target_is_jdbc and not (self.target_table or "").strip():
            out.append(("targetTable", "targetTable is required in UI mode (customConfig 0)"))
        for key, value, jdbc in (("dataSource", self.data_source, self.source_is_jdbc),
                                 ("dataTarget", self.data_target, self.target_is_jdbc)):
            if jdbc and not value:
                out.append((key, f"{key} datasource id is required in UI mode (customConfig 0)"))
        return out

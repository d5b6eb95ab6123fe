"""DataX job JSON: golden files for every (reader, writer) pair, columns, quoting, blocks, custom marker.

Golden files live in tests/golden/datax/<reader>__<writer>.json. After a deliberate change, rewrite
them with ``PORPOISE_REGEN_GOLDEN=1 .venv/bin/pytest tests/unit/test_datax_builders.py`` and review
the diff.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pytest

from activities.datax.builders import (
    BuildError,
    PluginBuilder,
    ReadSpec,
    Side,
    WriteSpec,
    builder_for,
    reader_types,
    register,
    writer_types,
)
from activities.datax.columns import quote_column, select_columns
from activities.datax.job import build_custom_job, build_job, build_ui_job, speed_blocks
from storage.datasources import ConnectionInfo, DatasourceNotFound

GOLDEN = Path(__file__).resolve().parents[1] / "golden" / "datax"
REGEN = os.environ.get("PORPOISE_REGEN_GOLDEN") == "1"

DATASOURCES = {
    1: ConnectionInfo(id=1, name="src_mysql", type="MYSQL", host="db1", port=3306, database="source_db", user="usr",
                      params={"useSSL": "false"}, version=1, password="pw-mysql"),
    2: ConnectionInfo(id=2, name="pg", type="POSTGRESQL", host="db2", port=5432, database="dwh", user="etl",
                      params={}, version=3, password="pw-pg"),
    3: ConnectionInfo(id=3, name="maria", type="MARIADB", host="db3", port=3307, database="t", user="m",
                      params={}, version=1, password="pw-maria"),
}
JDBC_IDS = {"MYSQL": 1, "POSTGRESQL": 2}

SOURCE_CONFIG: dict[str, dict[str, Any]] = {
    "HDFS": {"defaultFS": "hdfs://nn:8020", "path": "/warehouse/src/*", "fileType": "orc",
             "column": [{"index": 0, "type": "long"}, {"index": 1, "type": "string"}]},
    "HBASE": {"zookeeperQuorum": "zk1,zk2", "table": "users",
              "column": [{"name": "rowkey", "type": "string"}, {"name": "cf:name", "type": "string"}]},
    "HTTP": {"url": "https://api.example.com/users", "method": "GET", "resultKey": "data.items",
             "column": ["id", "name"], "headers": {"Accept": "application/json"}, "username": "reader",
             "password": "${api_password}"},
    "TXTFILE": {"path": "/data/in.csv", "column": [{"index": 0, "type": "long"}, {"index": 1, "type": "string"}],
                "skipHeader": True},
    "STREAM": {"column": [{"value": "1", "type": "long"}, {"value": "DataX", "type": "string"}],
               "sliceRecordCount": 5},
}
TARGET_CONFIG: dict[str, dict[str, Any]] = {
    "HDFS": {"defaultFS": "hdfs://nn:8020", "path": "/warehouse/dst", "fileType": "text", "writeMode": "truncate"},
    "TXTFILE": {"path": "/data/out"},
    "STREAM": {"print": True},
}
READERS = ["MYSQL", "POSTGRESQL", "HDFS", "HBASE", "HTTP", "TXTFILE", "STREAM"]
WRITERS = ["MYSQL", "POSTGRESQL", "HDFS", "TXTFILE", "STREAM"]


def resolve(datasource_id: int) -> ConnectionInfo:
    if datasource_id not in DATASOURCES:
        raise DatasourceNotFound(f"datasource {datasource_id} does not exist")
    return DATASOURCES[datasource_id]


def literal(info: ConnectionInfo) -> str:
    return info.password


def task_params(reader: str, writer: str, **extra: Any) -> dict[str, Any]:
    params: dict[str, Any] = {"customConfig": 0, "dsType": reader, "dtType": writer, "jobSpeedByte": 0,
                              "jobSpeedRecord": 1000, "xms": 1, "xmx": 1, "preStatements": [], "postStatements": []}
    if reader in JDBC_IDS:
        params |= {"dataSource": JDBC_IDS[reader], "sql": "select id, name as user_name from users where dt = '${dt}'"}
    else:
        params["sourceConfig"] = SOURCE_CONFIG[reader]
    if writer in JDBC_IDS:
        params |= {"dataTarget": JDBC_IDS[writer], "targetTable": "target_${dt}",
                   "preStatements": ["delete from target_${dt}"], "postStatements": ["analyze target_${dt}"]}
        if reader in ("HDFS", "TXTFILE"):  # readers without names: the target says them
            params["targetConfig"] = {"column": ["id", "user_name"]}
    else:
        params["targetConfig"] = TARGET_CONFIG.get(writer, {})
    return params | extra


@pytest.mark.parametrize("writer", WRITERS)
@pytest.mark.parametrize("reader", READERS)
def test_golden_job_for_every_reader_writer_pair(reader: str, writer: str) -> None:
    built = build_job(task_params(reader, writer), {"dt": "20260101"}, "UTC", resolve, literal)
    path = GOLDEN / f"{reader.lower()}__{writer.lower()}.json"
    text = built.render()
    if REGEN:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    assert path.exists(), f"{path} missing: run with PORPOISE_REGEN_GOLDEN=1"
    assert json.loads(text) == json.loads(path.read_text()), f"{path} differs from the built job"


def test_every_pair_has_a_golden_file_and_nothing_else() -> None:
    expected = {f"{r.lower()}__{w.lower()}.json" for r in READERS for w in WRITERS}
    assert {p.name for p in GOLDEN.glob("*.json")} == expected


def test_ui_mode_is_ds_compatible() -> None:
    """Plugin names, querySql/jdbcUrl[] vs jdbcUrl, quoted writer columns, setting/core (notes §4.4)."""
    built = build_job(task_params("MYSQL", "POSTGRESQL", jobSpeedByte=1048576), {"dt": "x"}, "UTC", resolve, literal)
    job = built.job
    content = job["job"]["content"][0]
    assert content["reader"]["name"] == "mysqlreader" and content["writer"]["name"] == "postgresqlwriter"
    conn = content["reader"]["parameter"]["connection"][0]
    assert conn == {"querySql": ["select id, name as user_name from users where dt = 'x'"],
                    "jdbcUrl": ["jdbc:mysql://db1:3306/source_db?useSSL=false"]}
    wp = content["writer"]["parameter"]
    assert wp["column"] == ['"id"', '"user_name"']
    assert wp["connection"] == [{"table": ["target_x"], "jdbcUrl": "jdbc:postgresql://db2:5432/dwh"}]
    assert wp["preSql"] == ["delete from target_x"] and wp["postSql"] == ["analyze target_x"]
    assert job["job"]["setting"] == {"speed": {"channel": 1, "byte": 1048576, "record": 1000},
                                     "errorLimit": {"record": 0, "percentage": 0}}
    assert job["core"] == {"transport": {"channel": {"speed": {"channel": 1, "byte": 1048576, "record": 1000}}}}
    assert [i.id for i in built.datasources] == [1, 2]


def test_speed_zero_means_unset() -> None:
    setting, core = speed_blocks({"jobSpeedByte": 0, "jobSpeedRecord": "0"})
    assert setting["speed"] == {"channel": 1} and core["transport"]["channel"]["speed"] == {"channel": 1}


@pytest.mark.parametrize(("db", "quoted"), [("MYSQL", "`a``b`"), ("MARIADB", "`a``b`"), ("POSTGRESQL", '"a`b"'),
                                            ("ORACLE", '"a`b"'), ("SQLSERVER", "[a`b]"), ("HIVE", "`a``b`"),
                                            ("PRESTO", "a`b")])
def test_identifiers_quoted_per_target(db: str, quoted: str) -> None:
    assert quote_column("a`b", db) == quoted


@pytest.mark.parametrize(("sql", "columns"), [
    ("select id, name, code, description from source_table", ["id", "name", "code", "description"]),
    ("SELECT t.id, upper(t.name) AS nm, count(*) cnt FROM t GROUP BY 1, 2", ["id", "nm", "cnt"]),
    ("select distinct `odd col`, a.b.c, (x + 1) as \"Y\" from t -- , z", ["odd col", "c", "Y"]),
    ("select case when a > 1 then 'x, y' else 'z' end as k, coalesce(a, b) v from t", ["k", "v"]),
    ("/* head */ select 1 as one; select 2 as two", ["one"]),
])
def test_writer_columns_from_the_select_list(sql: str, columns: list[str]) -> None:
    assert select_columns(sql, "MYSQL") == columns


def test_unnamed_select_item_falls_back_to_the_source_metadata() -> None:
    asked: list[str] = []

    def describe(query: str) -> list[str]:
        asked.append(query)
        return ["count"]

    assert select_columns("select count(*) from t;", "POSTGRESQL", describe) == ["count"]
    assert asked == ["SELECT t.* FROM (select count(*) from t) t WHERE 0 = 1"]
    with pytest.raises(ValueError, match="no name"):
        select_columns("select count(*) from t", "POSTGRESQL")


@pytest.mark.parametrize(("params", "message"), [
    ({"sql": "select * from users"}, "sql: the sql selects \\*"),
    ({"dsType": "NOPE"}, "dsType 'NOPE' is not a DataX source type"),
    ({"dataSource": 0}, "dataSource datasource id is required"),
    ({"dataSource": "abc"}, "dataSource must be a datasource id"),
    ({"dtType": "HTTP", "targetConfig": {}}, "HTTP cannot be a DataX writer \\(dtType\\)"),
    ({"jobSpeedRecord": "fast"}, "jobSpeedRecord must be a whole number"),
    ({"customConfig": 2}, "customConfig must be 0"),
    ({"preStatements": "not json ["}, None),
])
def test_bad_params_are_named(params: dict[str, Any], message: str | None) -> None:
    base = task_params("MYSQL", "POSTGRESQL")
    if message is None:  # a plain string is one statement, as DS's UI sometimes saves it
        assert build_job(base | params, {}, "UTC", resolve, literal).job["job"]["content"][0]["writer"][
            "parameter"]["preSql"] == ["not json ["]
        return
    with pytest.raises(BuildError, match=message):
        build_job(base | params, {}, "UTC", resolve, literal)


def test_non_jdbc_side_needs_its_config() -> None:
    with pytest.raises(BuildError, match="sourceConfig.defaultFS is required for a HDFS reader"):
        build_ui_job(task_params("HDFS", "STREAM", sourceConfig={"path": "/x"}), {}, "UTC", resolve, literal)


def test_unknown_datasource_is_not_found() -> None:
    with pytest.raises(DatasourceNotFound):
        build_job(task_params("MYSQL", "POSTGRESQL", dataTarget=99), {}, "UTC", resolve, literal)


def test_declared_type_follows_the_registry() -> None:
    """dsType says POSTGRESQL but datasource 3 is MARIADB: the registry's type wins, and the log says so."""
    built = build_job(task_params("POSTGRESQL", "MYSQL", dataSource=3), {"dt": "d"}, "UTC", resolve, literal)
    assert built.job["job"]["content"][0]["reader"]["name"] == "mysqlreader"
    assert any("using MARIADB" in n for n in built.notes)


CUSTOM = {
    "job": {
        "content": [{
            "reader": {"name": "mysqlreader", "parameter": {
                "datasourceId": 1, "column": ["id", "name"], "splitPk": "id",
                "connection": [{"table": ["source_${dt}"], "jdbcUrl": ["jdbc:mysql://stale:1/old"]}]}},
            "writer": {"name": "postgresqlwriter", "parameter": {
                "datasourceId": "${target_ds}", "username": "stale", "password": "stale-password",
                "column": ["id", "name"], "connection": [{"table": ["t"]}]}},
        }],
        "setting": {"speed": {"channel": 2}, "errorLimit": {"record": 5}},
    }
}


def test_custom_mode_fills_the_datasource_marker_at_every_run() -> None:
    params = {"customConfig": 1, "json": json.dumps(CUSTOM, indent=2).replace("\n", "\r\n")}
    built = build_job(params, {"dt": "20260101", "target_ds": "2"}, "UTC", resolve, literal)
    content = built.job["job"]["content"][0]
    rp, wp = content["reader"]["parameter"], content["writer"]["parameter"]
    assert "datasourceId" not in rp and "datasourceId" not in wp
    assert (rp["username"], rp["password"]) == ("usr", "pw-mysql")
    assert rp["connection"] == [{"table": ["source_20260101"], "jdbcUrl": ["jdbc:mysql://db1:3306/source_db?useSSL=false"]}]
    assert (wp["username"], wp["password"]) == ("etl", "pw-pg")
    assert wp["connection"] == [{"table": ["t"], "jdbcUrl": "jdbc:postgresql://db2:5432/dwh"}]
    assert built.job["job"]["setting"] == CUSTOM["job"]["setting"]  # the user's own blocks are kept
    assert built.mode == "custom" and [i.id for i in built.datasources] == [1, 2]

    changed = dict(DATASOURCES)
    changed[1] = ConnectionInfo(**{**DATASOURCES[1].__dict__, "password": "rotated", "version": 2})
    again = build_custom_job(params, {"dt": "d", "target_ds": "2"}, "UTC", changed.__getitem__, literal)
    assert again.job["job"]["content"][0]["reader"]["parameter"]["password"] == "rotated"


def test_custom_mode_without_marker_is_used_as_written() -> None:
    job = json.loads(json.dumps(CUSTOM))
    for side in ("reader", "writer"):
        job["job"]["content"][0][side]["parameter"].pop("datasourceId")
    built = build_job({"customConfig": "1", "json": json.dumps(job)}, {"dt": "d"}, "UTC", resolve, literal)
    assert built.datasources == [] and any("no datasourceId" in n for n in built.notes)
    assert built.job["job"]["content"][0]["writer"]["parameter"]["password"] == "stale-password"


@pytest.mark.parametrize(("text", "message"), [
    ("", "json is required"),
    ("{not json", "json is not valid JSON"),
    ('{"job": {"content": []}}', "json must hold"),
    ('{"job": {"content": [{"reader": {"name": "x"}, "writer": {}}]}}', "job.content\\[0\\].reader needs"),
    ('{"job": {"content": [{"reader": {"name": "r", "parameter": {"datasourceId": "x"}}, '
     '"writer": {"name": "w", "parameter": {}}}]}}', "datasourceId must be an id"),
])
def test_custom_mode_errors(text: str, message: str) -> None:
    with pytest.raises(BuildError, match=message):
        build_job({"customConfig": 1, "json": text}, {}, "UTC", resolve, literal)


def test_k8s_placeholders_keep_passwords_out_of_the_json() -> None:
    from activities.datax.activity import SecretPlaceholders

    holder = SecretPlaceholders()
    built = build_job(task_params("MYSQL", "POSTGRESQL"), {"dt": "d"}, "UTC", resolve, holder)
    text = built.render()
    assert "pw-mysql" not in text and "pw-pg" not in text
    assert "${porpoise_ds_1_password}" in text and "${porpoise_ds_2_password}" in text
    assert holder.values == {"porpoise_ds_1_password": "pw-mysql", "porpoise_ds_2_password": "pw-pg"}


def test_a_new_source_type_is_one_class() -> None:
    class KafkaBuilder(PluginBuilder):
        types = ("KAFKA_TEST",)

        def plugins(self) -> tuple[str | None, str | None]:
            return None, "kafkawriter"

        def writer(self, side: Side, spec: WriteSpec, password: Any) -> dict[str, Any]:
            return {"name": "kafkawriter", "parameter": {"topic": side.config["topic"], "column": list(spec.columns)}}

    register(KafkaBuilder())
    try:
        assert "KAFKA_TEST" in writer_types() and "KAFKA_TEST" not in reader_types()
        built = build_job(task_params("MYSQL", "KAFKA_TEST", targetConfig={"topic": "t"}), {"dt": "d"}, "UTC",
                          resolve, literal)
        assert built.job["job"]["content"][0]["writer"] == {"name": "kafkawriter",
                                                            "parameter": {"topic": "t", "column": ["id", "user_name"]}}
    finally:
        from activities.datax import builders

        builders._REGISTRY.pop("KAFKA_TEST")


def test_builder_sides_refuse_what_they_cannot_do() -> None:
    with pytest.raises(BuildError, match="cannot be a DataX writer"):
        builder_for("HBASE", "dtType").writer(Side("HBASE"), WriteSpec("t", ["a"]), literal)
    with pytest.raises(BuildError, match="sql is required"):
        builder_for("MYSQL", "dsType").reader(Side("MYSQL", DATASOURCES[1]), ReadSpec(""), literal)


@pytest.mark.parametrize(("params", "problems"), [
    ({"customConfig": 0, "dsType": "MYSQL", "dtType": "MYSQL"}, {"sql", "targetTable", "dataSource", "dataTarget"}),
    ({"customConfig": 0, "dsType": "STREAM", "dtType": "TXTFILE"}, set()),  # no datasource, no SQL needed
    ({"customConfig": 0, "dsType": "HDFS", "dtType": "POSTGRESQL"}, {"targetTable", "dataTarget"}),
    ({"customConfig": "1"}, {"json"}),
])
def test_definition_check_knows_non_jdbc_sides(params: dict[str, Any], problems: set[str]) -> None:
    from model.task_types import CHECKS

    assert {key for key, _ in CHECKS["DATAX"](None, params)} == problems  # type: ignore[arg-type]

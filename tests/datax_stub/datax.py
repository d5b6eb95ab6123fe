#!/usr/bin/env python3
"""TEST DOUBLE: a contract stand-in for DataX's ``bin/datax.py``. It is not DataX.

Porpoise cannot install DataX here (infrastructure notes §6), so the DataX runners are tested against
this script. It keeps the contract the runners depend on (notes §4.3):

* the real CLI: ``[--jvm/-j "..."] [-p/--params "-Dk=v -Dk2=v2"] [--jobid N] [-m/--mode standalone]
  [--loglevel info] job.json``; ``-p`` values replace ``${k}`` in the job text, as DataX does;
  a usage error exits **255** (``sys.exit(-1)``);
* job validation: ``job.content[0].reader/writer.{name, parameter}`` and the speed setting
  (``Framework-03`` and exit **1** when no channel/byte/record is set, or a byte/record limit has
  no per-channel ``core.transport.channel.speed`` value);
* logback-style lines (``yyyy-MM-dd HH:mm:ss.SSS [thread] LEVEL Logger - msg``), progress lines, and
  the CJK statistics block **only on success**; a failure prints DataX's diagnosis and ``Code:[...]``;
* exit codes 0 / 1 / 143 (killed; also on SIGTERM, like datax.py's own handler) / 255.

For JDBC plugins on PostgreSQL or MySQL/MariaDB it really connects with the job's credentials and
copies the rows (``querySql`` -> ``preSql``, insert into ``table`` ``column``, ``postSql``), so a wrong
password fails as DataX would, and tests can check the target table. Other plugins get synthetic
records.

Modes, from ``DATAX_STUB_MODE`` (or ``job.setting.stubMode``): ``ok``, ``dirty-within-limit``,
``dirty-limit-exceeded``, ``fail``, ``killed``, ``hang``. ``DATAX_STUB_RECORD_DIR``: write the
rendered job there (mode 0600) so a test can see what DataX was given. ``DATAX_STUB_INTERVAL``:
seconds between progress lines (default 0.2).
"""

from __future__ import annotations

import json
import optparse
import os
import re
import signal
import subprocess
import sys
import time
from datetime import datetime
from typing import Any

KILLED = 143
USAGE = 255


def log(level: str, logger: str, msg: str, thread: str = "main") -> None:
    now = datetime.now().strftime("%Y-%m-%d %H:%M:%S.%f")[:-3]
    print(f"{now} [{thread}] {level:<5} {logger} - {msg}", flush=True)


def fail(code: str, description: str, detail: str = "") -> None:
    log("ERROR", "Engine", "\n\n经DataX智能分析,该任务最可能的错误原因是:\n"
        f"com.alibaba.datax.common.exception.DataXException: Code:[{code}], Description:[{description}]. - {detail}")
    sys.exit(1)


def parse_args(argv: list[str]) -> tuple[Any, list[str]]:
    parser = optparse.OptionParser(usage="python datax.py {--jvm=...} {-p ...} job.json")
    parser.add_option("-j", "--jvm", dest="jvmParameters", default="")
    parser.add_option("--jobid", dest="jobid", default="-1")
    parser.add_option("-m", "--mode", dest="mode", default="standalone")
    parser.add_option("-p", "--params", dest="params", default="")
    parser.add_option("--loglevel", dest="loglevel", default="info")
    parser.add_option("-r", "--reader", dest="reader")
    parser.add_option("-w", "--writer", dest="writer")
    options, args = parser.parse_args(argv)
    if len(args) != 1:
        parser.print_help()
        sys.exit(-1)  # datax.py: usage error -> 255
    return options, args


def shell_words(params: str) -> list[str]:
    """The words the JVM gets from ``-p``: datax.py pastes it into a shell command line (shell=True), so
    a real shell parses it, quotes and ``$VAR`` from the environment included (the Kubernetes path)."""
    if not params.strip():
        return []
    done = subprocess.run(["sh", "-c", "printf '%s\\0' " + params], capture_output=True, check=True)
    return [w.decode() for w in done.stdout.split(b"\0")[:-1]]


def substitute(text: str, params: str) -> str:
    values = {}
    for item in shell_words(params):
        if item.startswith("-D") and "=" in item:
            k, v = item[2:].split("=", 1)
            values[k] = v
    return re.sub(r"\$\{([^}]+)\}", lambda m: values.get(m.group(1), m.group(0)), text)


def validate(job: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any], dict[str, Any]]:
    try:
        content = job["job"]["content"][0]
        reader, writer = content["reader"], content["writer"]
        assert reader["name"] and isinstance(reader["parameter"], dict)
        assert writer["name"] and isinstance(writer["parameter"], dict)
    except (KeyError, IndexError, TypeError, AssertionError):
        fail("Framework-02", "DataX引擎运行过程出错", "job.content[0] needs reader and writer with name and parameter")
    setting = job["job"].get("setting", {})
    speed = setting.get("speed", {})
    if not any(speed.get(k) for k in ("channel", "byte", "record")):
        fail("Framework-03", "DataX引擎配置错误，该问题通常是由于DataX安装错误引起，请联系您的运维解决 .",
             "Job运行速度必须设置")
    per_channel = job.get("core", {}).get("transport", {}).get("channel", {}).get("speed", {})
    for key in ("byte", "record"):
        if speed.get(key) and not per_channel.get(key):
            fail("Framework-03", "DataX引擎配置错误", f"在有总{key}限速条件下，单个channel的{key}限速必须设置")
    return reader, writer, setting


def sqlalchemy_url(jdbc: str, user: str, password: str) -> Any:
    from sqlalchemy.engine import URL

    m = re.match(r"jdbc:(mysql|mariadb|postgresql)://([^/:?]+)(?::(\d+))?/([^?;]*)", jdbc)
    if not m:
        return None
    driver = "postgresql+psycopg" if m.group(1) == "postgresql" else "mysql+pymysql"
    return URL.create(driver, username=user or None, password=password or None, host=m.group(2),
                      port=int(m.group(3)) if m.group(3) else None, database=m.group(4) or None)


def jdbc_url_of(parameter: dict[str, Any]) -> str:
    conn = (parameter.get("connection") or [{}])[0]
    url = conn.get("jdbcUrl")
    return url[0] if isinstance(url, list) else str(url or "")


def copy_rows(reader: dict[str, Any], writer: dict[str, Any]) -> int | None:
    """Really move the rows for rdbms readers/writers on PostgreSQL or MySQL; None: not a JDBC pair."""
    rp, wp = reader["parameter"], writer["parameter"]
    conn = (rp.get("connection") or [{}])[0]
    if "querySql" in conn:
        query = conn["querySql"][0]
    elif conn.get("table") and rp.get("column"):  # table mode: column[] from table[0]
        query = f"select {', '.join(rp['column'])} from {conn['table'][0]}"
    else:
        return None
    r_url = sqlalchemy_url(jdbc_url_of(rp), rp.get("username", ""), rp.get("password", ""))
    w_url = sqlalchemy_url(jdbc_url_of(wp), wp.get("username", ""), wp.get("password", ""))
    if r_url is None or w_url is None:
        return None
    from sqlalchemy import create_engine
    from sqlalchemy.pool import NullPool

    log("INFO", "OriginalConfPretreatmentUtil", f"Available jdbcUrl:{jdbc_url_of(rp)}.")
    engines = {role: create_engine(url, poolclass=NullPool) for role, url in (("reader", r_url), ("writer", w_url))}
    for role, engine in engines.items():  # DataX checks both connections before the job starts
        try:
            with engine.connect():
                pass
        except Exception as e:
            first = str(getattr(e, "orig", e)).splitlines()[0][:200]
            fail("DBUtilErrorCode-10",
                 "连接数据库失败. 请检查您的 账号、密码、数据库名称、IP、Port或者向 DBA 寻求帮助(注意网络环境).",
                 f"{role}: {first}")
    try:
        with engines["reader"].connect() as c:
            result = c.exec_driver_sql(query)
            read_columns = len(result.keys())
            rows = [tuple(r) for r in result.all()]
    except Exception as e:
        fail("DBUtilErrorCode-07", "读取数据库数据失败", str(getattr(e, "orig", e)).splitlines()[0][:300])
    table = wp["connection"][0]["table"][0]
    columns = wp.get("column") or []
    if read_columns != len(columns):  # CommonRdbmsWriter checks every record's column count
        fail("DBUtilErrorCode-00", "您的配置错误.",
             f"列配置信息有错误. 因为您配置的任务中，源头读取字段数:{read_columns} "
             f"与 目的表要写入的字段数:{len(columns)} 不相等. 请检查您的配置并作出修改.")
    try:
        with engines["writer"].begin() as c:
            for sql in wp.get("preSql") or []:
                c.exec_driver_sql(sql)
            if rows:
                marks = ", ".join(["%s"] * len(columns))
                c.exec_driver_sql(f"insert into {table} ({', '.join(columns)}) values ({marks})", rows)
            for sql in wp.get("postSql") or []:
                c.exec_driver_sql(sql)
    except Exception as e:
        fail("DBUtilErrorCode-05", "往您配置的写入表中写入数据时失败.",
             str(getattr(e, "orig", e)).splitlines()[0][:300])
    # DataX's writer echoes its connection after the post statements; with credentials in the URL this
    # is what DS masks (DataxTask "post jdbc info:", notes §4.4): the stand-in echoes them on purpose.
    log("INFO", "CommonRdbmsWriter$Task",
        f"post jdbc info:{jdbc_url_of(wp)}?user={wp.get('username', '')}&password={wp.get('password', '')}")
    return len(rows)


def progress(total: int, errors: int, pct: float) -> None:
    log("INFO", "StandAloneJobContainerCommunicator",
        f"Total {total} records, {total * 12} bytes | Speed 1.20KB/s, {total} records/s | Error {errors} records, "
        f"{errors * 12} bytes |  All Task WaitWriterTime 0.000s |  All Task WaitReaderTime 0.000s | "
        f"Percentage {pct:.2f}%", thread="job-0")


def statistics(start: datetime, total: int, errors: int) -> None:
    end = datetime.now()
    rows = [("任务启动时刻", start.strftime("%Y-%m-%d %H:%M:%S")), ("任务结束时刻", end.strftime("%Y-%m-%d %H:%M:%S")),
            ("任务总计耗时", f"{max(1, int((end - start).total_seconds()))}s"), ("任务平均流量", "1.20KB/s"),
            ("记录写入速度", f"{total}rec/s"), ("读出记录总数", str(total)), ("读写失败总数", str(errors))]
    log("INFO", "JobContainer", "\n" + "\n".join(f"{k:<26}: {v:>18}" for k, v in rows) + "\n")


def main(argv: list[str]) -> int:
    options, args = parse_args(argv)
    signal.signal(signal.SIGTERM, lambda *_: os._exit(KILLED))  # datax.py's handler: exit 143
    start = datetime.now()
    path = args[0]
    try:
        with open(path, encoding="utf-8") as f:
            text = f.read()
    except OSError as e:
        log("ERROR", "Engine", f"job file {path} cannot be read: {e.strerror}")
        return 1
    text = substitute(text, options.params)
    try:
        job = json.loads(text)
    except ValueError as e:
        fail("Framework-02", "DataX引擎运行过程出错", f"job is not JSON: {e}")
    record_dir = os.environ.get("DATAX_STUB_RECORD_DIR")
    if record_dir:
        target = os.path.join(record_dir, f"job-{options.jobid}-{os.getpid()}.json")
        fd = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as f:
            f.write(text)
    log("INFO", "VMInfo", f"VMInfo# operatingSystem class => stub; jvm => {options.jvmParameters or '-Xms1g -Xmx1g'}")
    log("INFO", "Engine", f"the machine info => stand-in for DataX (tests/datax_stub), jobid {options.jobid}, "
        f"mode {options.mode}, loglevel {options.loglevel}")
    reader, writer, setting = validate(job)
    mode = os.environ.get("DATAX_STUB_MODE") or setting.get("stubMode") or "ok"
    log("INFO", "JobContainer", f"DataX Reader.Job [{reader['name']}] do prepare work .")
    log("INFO", "JobContainer", f"DataX Writer.Job [{writer['name']}] do prepare work .")
    interval = float(os.environ.get("DATAX_STUB_INTERVAL", "0.2"))
    if mode == "hang":
        n = 0
        while True:
            n += 1
            progress(n, 0, 0.0)
            time.sleep(interval)
    if mode == "killed":
        progress(1, 0, 10.0)
        log("ERROR", "Engine", "DataX was killed")
        return KILLED
    if mode == "fail":
        progress(0, 0, 0.0)
        fail("Framework-02", "DataX引擎运行过程出错，具体原因请参看DataX运行结束时的错误诊断信息  .",
             "stub failure mode")
    total = copy_rows(reader, writer)
    if total is None:  # synthetic records: streamreader's own count, else DATAX_STUB_RECORDS
        total = int(reader["parameter"].get("sliceRecordCount") or os.environ.get("DATAX_STUB_RECORDS", "100"))
    limit = int((setting.get("errorLimit") or {}).get("record", 0) or 0)
    errors = 0
    if mode == "dirty-within-limit":
        errors = max(1, limit) if limit > 0 else 0
    elif mode == "dirty-limit-exceeded":
        errors = limit + 1
    for step in (1, 2):
        progress(total * step // 2, errors, 50.0 * step)
        time.sleep(interval)
    if errors > limit:
        fail("Framework-14", "DataX传输脏数据超过用户预期，该错误通常是由于源端数据存在较多业务脏数据导致，"
             "请仔细检查DataX汇报的脏数据日志信息, "
             "或者您可以适当调大脏数据阈值 .", f"脏数据条数检查不通过，限制是[{limit}]条，但实际上捕获了[{errors}]条.")
    statistics(start, total, errors)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

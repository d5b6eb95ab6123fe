"""DataX output parsing (notes §4.3): progress lines, the statistics block, failed runs, Addax labels."""

from __future__ import annotations

from activities.datax.stats import StatsParser

PROGRESS = ("2026-11-24 20:00:10.123 [job-0] INFO  StandAloneJobContainerCommunicator - Total 2048 records, 51200 "
            "bytes | Speed 5.00KB/s, 204 records/s | Error 3 records, 60 bytes |  All Task WaitWriterTime 0.011s |  "
            "All Task WaitReaderTime 0.020s | Percentage 50.00%\n")
BLOCK = "2026-11-24 20:00:20.456 [job-0] INFO  JobContainer - " + """
任务启动时刻                    : 2026-11-24 20:00:00
任务结束时刻                    : 2026-11-24 20:00:20
任务总计耗时                    :                 20s
任务平均流量                    :            1.20MB/s
记录写入速度                    :          10000rec/s
读出记录总数                    :              200000
读写失败总数                    :                   0

"""
FAILED = """2026-11-24 20:00:05.000 [job-0] ERROR JobContainer - Exception when job run
2026-11-24 20:00:05.001 [job-0] ERROR Engine -

经DataX智能分析,该任务最可能的错误原因是:
com.alibaba.datax.common.exception.DataXException: Code:[Framework-14], Description:[DataX传输脏数据超过用户预期]. \
- 脏数据条数检查不通过
\tat com.alibaba.datax.common.exception.DataXException.asDataXException(DataXException.java:30)
"""


def feed_in_pieces(parser: StatsParser, text: str, size: int = 7) -> None:
    data = text.encode()
    for i in range(0, len(data), size):  # split inside CJK characters too
        parser.feed(data[i:i + size])
    parser.close()


def test_progress_then_block() -> None:
    p = StatsParser()
    feed_in_pieces(p, PROGRESS)
    assert p.stats.progress is not None and p.stats.progress.records == 2048 and p.stats.progress.percentage == 50.0
    assert not p.stats.complete
    assert p.stats.as_dict() == {"records": 2048, "bytes": 51200, "failed_records": 3, "percentage": 50.0}
    feed_in_pieces(p, BLOCK)
    assert p.stats.complete
    assert p.stats.as_dict() == {"start_time": "2026-11-24 20:00:00", "end_time": "2026-11-24 20:00:20",
                                 "duration_seconds": 20, "speed_bytes": int(1.2 * 1024 * 1024),
                                 "speed_records": 10000, "records": 200000, "failed_records": 0}
    assert p.stats.out_values()["datax_records"] == "200000"


def test_failed_run_has_no_block_but_an_error_code() -> None:
    p = StatsParser()
    feed_in_pieces(p, PROGRESS + FAILED)
    assert not p.stats.complete
    assert p.stats.error_code == "Framework-14" and p.stats.error == "DataX传输脏数据超过用户预期"
    assert p.stats.as_dict()["error_code"] == "Framework-14" and p.stats.as_dict()["records"] == 2048


def test_nothing_printed_is_no_statistics() -> None:
    p = StatsParser()
    feed_in_pieces(p, "2026-11-24 20:00:00.000 [main] INFO  Engine - starting\nno newline at the end")
    assert p.stats.as_dict() == {} and p.stats.out_values() == {}


def test_addax_english_block() -> None:
    p = StatsParser()
    feed_in_pieces(p, "Job start  at             : 2026-11-24 20:00:00\nJob took secs            :     3s\n"
                      "Total   bytes            :   4096\nAverage   bps            :   1.00KB/s\n"
                      "Number of rec            :     42\nFailed record            :      1\n")
    assert p.stats.as_dict() == {"start_time": "2026-11-24 20:00:00", "duration_seconds": 3, "bytes": 4096,
                                 "speed_bytes": 1024, "records": 42, "failed_records": 1}


def test_datax_connection_echo_is_masked_in_the_task_log() -> None:
    """DataX's own connection echoes (masking.py built-ins, reference §7) and a resolved password."""
    from activities.masking import Masker

    masker = Masker.for_task("DATAX")
    masker.add_secret("s3cr3t-pw")
    lines = ("2026-11-24 20:00:00.000 [0-0-0-writer] INFO  CommonRdbmsWriter$Task - post jdbc info:"
             "jdbc:mysql://db:3306/x?user=u&password=plain\n"
             '2026-11-24 20:00:00.000 [main] INFO  Engine - {"password": "s3cr3t-pw", "jdbcUrl": '
             '"jdbc:postgresql://u:inurl@db/x"}\n')
    masked = masker.mask(lines)
    assert "plain" not in masked and "s3cr3t-pw" not in masked and "inurl" not in masked
    assert "post jdbc info:******" in masked and "jdbc:postgresql://u:******@db/x" in masked

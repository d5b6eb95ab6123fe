"""DataX's progress lines and final statistics, parsed from its output (notes §4.3).

DataX prints, every ``reportInterval``, a ``StandAloneJobContainerCommunicator`` line (``Total N records,
B bytes | Speed ... | Error E records ... | Percentage P%``) and, **only when the job had no exception**,
one block of ``label : value`` lines (CJK labels, ``%-26s: %s``). Addax prints the same block with
English labels. A failed run has no block but a diagnosis ("经DataX智能分析...") with ``Code:[...]``.

The parser is fed output as it arrives, in any pieces (local pipe or pod log stream alike), keeps
only the numbers, and never holds more than one unfinished line.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

_PROGRESS = re.compile(
    r"Total (?P<records>\d+) records, (?P<bytes>\d+) bytes \| Speed (?P<speed>[^/|]+)/s, (?P<rps>\d+) records/s"
    r" \| Error (?P<err_records>\d+) records, (?P<err_bytes>\d+) bytes.*?Percentage (?P<pct>\d+(?:\.\d+)?)%"
)
_LABELS = {
    "任务启动时刻": "start_time", "任务结束时刻": "end_time", "任务总计耗时": "duration",
    "任务平均流量": "speed_bytes", "记录写入速度": "speed_records", "读出记录总数": "records",
    "读写失败总数": "failed_records",
    # Addax (notes §4.5)
    "Job start  at": "start_time", "Job end    at": "end_time", "Job took secs": "duration",
    "Average   bps": "speed_bytes", "Average   rps": "speed_records", "Number of rec": "records",
    "Failed record": "failed_records", "Total   bytes": "bytes",
}
_STAT_LINE = re.compile(r"^\s*(" + "|".join(re.escape(k) for k in _LABELS) + r")\s*:\s*(.+?)\s*$")
_DIAGNOSIS = "经DataX智能分析,该任务最可能的错误原因是:"
_CODE = re.compile(r"Code:\[(?P<code>[^\]]+)\]\s*,?\s*Description:\[(?P<desc>[^\]]*)\]|Code:\[(?P<code2>[^\]]+)\]")
_UNITS = {"B": 1, "KB": 1024, "MB": 1024**2, "GB": 1024**3, "TB": 1024**4}
_MAX_LINE = 64 * 1024


def _to_bytes(text: str) -> int | None:
    """``1.20MB/s`` (StrUtil.stringify) -> bytes per second."""
    m = re.match(r"^\s*([\d.]+)\s*([KMGT]?B)", text)
    if not m:
        return None
    return int(float(m.group(1)) * _UNITS[m.group(2)])


def _to_int(text: str) -> int | None:
    m = re.match(r"^\s*(\d+)", text)
    return int(m.group(1)) if m else None


@dataclass
class Progress:
    records: int
    bytes: int
    error_records: int
    percentage: float


@dataclass
class DataxStats:
    """What one run reported. ``final`` is the statistics block; ``progress`` the last progress line."""

    progress: Progress | None = None
    final: dict[str, Any] = field(default_factory=dict)
    error_code: str | None = None
    error: str | None = None

    @property
    def complete(self) -> bool:
        return "records" in self.final

    def as_dict(self) -> dict[str, Any]:
        """For the task's final event and TaskResult: the block's values, else the last progress."""
        out: dict[str, Any] = dict(self.final)
        if self.progress and not self.complete:
            out |= {"records": self.progress.records, "bytes": self.progress.bytes,
                    "failed_records": self.progress.error_records, "percentage": self.progress.percentage}
        if self.error_code:
            out["error_code"] = self.error_code
        return out

    def out_values(self) -> dict[str, str]:
        """OUT parameter values a task may declare (``datax_records`` ...); docs/datax.md lists them."""
        return {f"datax_{k}": str(v) for k, v in self.as_dict().items()}


class StatsParser:
    """Feed DataX output (bytes, any pieces); read :attr:`stats` at any time."""

    def __init__(self) -> None:
        self.stats = DataxStats()
        self._partial = b""
        self._after_diagnosis = False

    def feed(self, data: bytes) -> None:
        buf = self._partial + data
        lines = buf.split(b"\n")
        self._partial = lines.pop()
        if len(self._partial) > _MAX_LINE:
            self._partial = b""  # an endless line holds no statistics
        for line in lines:
            self.line(line.decode("utf-8", "replace").rstrip("\r"))

    def close(self) -> None:
        if self._partial:
            self.line(self._partial.decode("utf-8", "replace"))
            self._partial = b""

    def line(self, text: str) -> None:
        if "records" in text and "Percentage" in text:
            m = _PROGRESS.search(text)
            if m:
                self.stats.progress = Progress(int(m["records"]), int(m["bytes"]), int(m["err_records"]),
                                               float(m["pct"]))
                return
        m = _STAT_LINE.match(text)
        if m:
            key, value = _LABELS[m.group(1)], m.group(2)
            if key in ("start_time", "end_time"):
                self.stats.final[key] = value
            elif key == "speed_bytes":
                self.stats.final["speed_bytes"] = _to_bytes(value) if not value.isdigit() else int(value)
            else:
                number = _to_int(value)
                if number is not None:
                    self.stats.final["duration_seconds" if key == "duration" else key] = number
            return
        if _DIAGNOSIS in text:
            self._after_diagnosis = True
            return
        if self.stats.error_code is None and "Code:[" in text:
            m = _CODE.search(text)
            if m:
                self.stats.error_code = m["code"] or m["code2"]
                self.stats.error = (m["desc"] or text.strip())[:500]

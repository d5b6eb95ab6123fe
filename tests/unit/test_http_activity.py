"""HTTP activity against a real HTTP server on 127.0.0.1, run in an ActivityEnvironment."""

from __future__ import annotations

import asyncio
import json
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import pytest
from temporalio.exceptions import ApplicationError
from temporalio.testing import ActivityEnvironment

from activities.http_task import run_http
from core.contracts import TaskRequest, TaskResult
from model.definition import Direct, Property

CODE = 777
BIG = 100 * 1024


class Server:
    """Records every request; answers by path."""

    def __init__(self) -> None:
        self.requests: list[dict[str, Any]] = []
        server = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, format: str, *args: Any) -> None:
                pass

            def _handle(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                url = urlsplit(self.path)
                server.requests.append(
                    {
                        "method": self.command,
                        "path": url.path,
                        "query": parse_qsl(url.query),
                        "headers": {k.lower(): v for k, v in self.headers.items()},
                        "body": body.decode(),
                    }
                )
                status, payload = 200, b"hello world"
                if url.path.startswith("/status/"):
                    status, payload = int(url.path.rsplit("/", 1)[1]), b"nope"
                elif url.path == "/big":
                    payload = b"x" * BIG
                elif url.path == "/slow":
                    time.sleep(2)
                elif url.path == "/redirect":
                    self.send_response(302)
                    self.send_header("Location", "/ok")
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    return
                self.send_response(status)
                self.send_header("Content-Type", "text/plain; charset=utf-8")
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                if self.command != "HEAD":
                    self.wfile.write(payload)

            do_GET = do_POST = do_PUT = do_DELETE = do_HEAD = _handle

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        self.thread = threading.Thread(target=self.httpd.serve_forever, args=(0.05,), daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture
def server() -> Iterator[Server]:
    s = Server()
    yield s
    s.close()


def request(tmp_path: Path, task_params: dict[str, Any], **kw: Any) -> TaskRequest:
    fields: dict[str, Any] = {
        "instance_id": "wf-1",
        "task_code": CODE,
        "task_name": "call",
        "task_type": "HTTP",
        "task_params": task_params,
        "log_dir": str(tmp_path / "logs"),
    }
    fields.update(kw)
    return TaskRequest(**fields)


async def run(req: TaskRequest, beats: list[Any] | None = None) -> TaskResult:
    env = ActivityEnvironment()
    if beats is not None:
        env.on_heartbeat = lambda *details: beats.append(details)
    result: TaskResult = await env.run(run_http, req)
    return result


def pool(result: TaskResult) -> dict[str, str | None]:
    return {p.prop: p.value for p in result.var_pool}


async def test_get_with_params_and_headers_3_2(tmp_path: Path, server: Server) -> None:
    params = {
        "url": server.url + "/ok?fixed=1",
        "httpMethod": "GET",
        "httpParams": [
            {"prop": "a", "httpParametersType": "PARAMETER", "value": "${who}"},
            {"prop": "day", "httpParametersType": "PARAMETER", "value": "$[yyyyMMdd]"},
            {"prop": "X-Token", "httpParametersType": "HEADERS", "value": "secret-${token}"},
        ],
        "httpCheckCondition": "STATUS_CODE_DEFAULT",
        "condition": "",
        "connectTimeout": 5000,
        "socketTimeout": 5000,
    }
    beats: list[Any] = []
    req = request(
        tmp_path, params, params={"who": "world", "token": "t0k3n", "system.datetime": "20240315103000"}
    )
    result = await run(req, beats)

    seen = server.requests[-1]
    assert seen["method"] == "GET" and seen["path"] == "/ok"
    assert seen["query"] == [("fixed", "1"), ("a", "world"), ("day", "20240315")]
    assert seen["headers"]["x-token"] == "secret-t0k3n"
    assert seen["body"] == ""

    assert result.exit_code == 0 and result.pid is None
    assert pool(result) == {"call.response": "hello world"}
    assert result.var_pool[0].direct is Direct.OUT
    assert beats and beats[0][0]["log_path"] == result.log_path

    text = Path(result.log_path).read_text()
    assert f"request: GET {server.url}/ok?fixed=1" in text
    assert "headers: X-Token" in text
    assert "HTTP 200" in text and "hello world" in text
    assert "t0k3n" not in text  # header values are never logged


async def test_post_with_body_3_2(tmp_path: Path, server: Server) -> None:
    params = {
        "url": server.url + "/ok",
        "httpMethod": "POST",
        "httpBody": '{"x": "${who}"}',
        "httpParams": [],
    }
    await run(request(tmp_path, params, params={"who": "world"}))
    seen = server.requests[-1]
    assert seen["method"] == "POST"
    assert json.loads(seen["body"]) == {"x": "world"}
    assert seen["headers"]["content-type"].startswith("application/json")


async def test_post_with_body_params_3_2(tmp_path: Path, server: Server) -> None:
    params = {
        "url": server.url + "/ok",
        "httpMethod": "POST",
        "httpParams": [
            {"prop": "k", "httpParametersType": "BODY", "value": "${v}"},
            {"prop": "n", "httpParametersType": "BODY", "value": "2"},
        ],
    }
    await run(request(tmp_path, params, params={"v": "vee"}))
    assert json.loads(server.requests[-1]["body"]) == {"k": "vee", "n": "2"}


async def test_put_with_3_3_keys(tmp_path: Path, server: Server) -> None:
    params = {
        "url": "${base}/ok",
        "httpRequestMethod": "PUT",
        "httpRequestParams": [
            {"prop": "q", "httpParametersType": "PARAMETER", "value": "1"},
            {"prop": "Content-Type", "httpParametersType": "HEADERS", "value": "text/plain"},
        ],
        "httpRequestBody": "plain ${who}",
        "httpCheckCondition": "BODY_CONTAINS",
        "condition": "world",
        "connectTimeout": 5000,
    }
    result = await run(request(tmp_path, params, params={"base": server.url, "who": "body"}))
    seen = server.requests[-1]
    assert (seen["method"], seen["query"], seen["body"]) == ("PUT", [("q", "1")], "plain body")
    assert seen["headers"]["content-type"] == "text/plain"  # user header wins over the JSON default
    assert pool(result)["call.response"] == "hello world"


@pytest.mark.parametrize("method", ["DELETE", "HEAD"])
async def test_other_methods(tmp_path: Path, server: Server, method: str) -> None:
    result = await run(request(tmp_path, {"url": server.url + "/ok", "httpMethod": method}))
    assert server.requests[-1]["method"] == method
    assert pool(result)["call.response"] == ("" if method == "HEAD" else "hello world")


@pytest.mark.parametrize(
    ("check", "condition", "path", "passes"),
    [
        ("STATUS_CODE_DEFAULT", "", "/ok", True),
        ("STATUS_CODE_DEFAULT", "", "/status/500", False),
        ("STATUS_CODE_CUSTOM", "404", "/status/404", True),
        ("STATUS_CODE_CUSTOM", "201", "/ok", False),
        ("BODY_CONTAINS", "hello", "/ok", True),
        ("BODY_CONTAINS", "absent", "/ok", False),
        ("BODY_NOT_CONTAINS", "absent", "/ok", True),
        ("BODY_NOT_CONTAINS", "hello", "/ok", False),
    ],
)
async def test_check_conditions(
    tmp_path: Path, server: Server, check: str, condition: str, path: str, passes: bool
) -> None:
    params = {
        "url": server.url + path,
        "httpMethod": "GET",
        "httpCheckCondition": check,
        "condition": condition,
    }
    req = request(tmp_path, params)
    if passes:
        result = await run(req)
        assert "call.response" in pool(result)
    else:
        with pytest.raises(ApplicationError) as info:
            await run(req)
        assert info.value.type == "TaskFailed"
        assert not info.value.non_retryable
        assert "hello world" not in info.value.message and "nope" not in info.value.message
        assert f"check {check} failed" in (tmp_path / "logs" / f"{CODE}.1.log").read_text()


async def test_declared_out_params_and_response(tmp_path: Path, server: Server) -> None:
    outs = [
        Property(prop="call.response", direct=Direct.OUT, value=""),
        Property(prop="other", direct=Direct.OUT, value="dflt"),
    ]
    result = await run(request(tmp_path, {"url": server.url + "/ok"}, out_params=outs))
    assert pool(result) == {"call.response": "hello world", "other": "dflt"}
    assert [p.prop for p in result.var_pool].count("call.response") == 1


async def test_large_body_truncated_in_log_not_in_var(tmp_path: Path, server: Server) -> None:
    result = await run(request(tmp_path, {"url": server.url + "/big"}))
    assert pool(result)["call.response"] == "x" * BIG
    text = Path(result.log_path).read_text()
    assert text.count("x") < BIG
    assert f"truncated in this log at {64 * 1024} of {BIG} bytes" in text


async def test_redirect_followed_for_get(tmp_path: Path, server: Server) -> None:
    result = await run(request(tmp_path, {"url": server.url + "/redirect"}))
    assert [r["path"] for r in server.requests] == ["/redirect", "/ok"]
    assert pool(result)["call.response"] == "hello world"


async def test_read_timeout_fails(tmp_path: Path, server: Server) -> None:
    params = {"url": server.url + "/slow", "connectTimeout": 1000, "socketTimeout": 200}
    with pytest.raises(ApplicationError, match="request failed") as info:
        await run(request(tmp_path, params))
    assert info.value.type == "TaskFailed"


async def test_connection_refused_fails(tmp_path: Path) -> None:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    with pytest.raises(ApplicationError) as info:
        await run(request(tmp_path, {"url": f"http://127.0.0.1:{port}/", "connectTimeout": 1000}))
    assert info.value.type == "TaskFailed"
    assert "ConnectError" in Path(info.value.details[0]["log_path"]).read_text()


async def test_invalid_method_is_not_retryable(tmp_path: Path, server: Server) -> None:
    with pytest.raises(ApplicationError) as info:
        await run(request(tmp_path, {"url": server.url, "httpMethod": "PATCH"}))
    assert info.value.non_retryable and info.value.type == "InvalidTaskParams"
    assert server.requests == []


async def test_dry_run_sends_nothing(tmp_path: Path, server: Server) -> None:
    result = await run(request(tmp_path, {"url": server.url + "/ok"}, dry_run=True))
    assert server.requests == []
    assert result.var_pool == []
    assert "dry run: skipped" in Path(result.log_path).read_text()


async def test_cancel_abandons_the_request(tmp_path: Path, server: Server) -> None:
    env = ActivityEnvironment()
    beats: list[Any] = []
    env.on_heartbeat = lambda *details: beats.append(details)
    task = asyncio.create_task(env.run(run_http, request(tmp_path, {"url": server.url + "/slow"})))
    while not server.requests:
        await asyncio.sleep(0.02)
    env.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    text = (tmp_path / "logs" / f"{CODE}.1.log").read_text()
    assert "cancelled: request abandoned" in text
    assert text.splitlines()[-1].startswith("[porpoise] end exit=cancelled ")

"""MCP servers as tools: config, names, result text, and real servers written with
the `mcp` SDK (tests/data/mcp_server.py) over stdio and streamable HTTP."""

from __future__ import annotations

import _thread
import base64
import json
import os
import re
import signal
import sys
import threading
import time
from pathlib import Path
from typing import Any

import pytest

from localtools.mcp_tools import McpConfigError, McpTools, default_config_path, load_config, load_configs
from localtools.mcp_tools.config import parse_config
from localtools.mcp_tools.names import MAX_NAME, namespaced, sanitize
from localtools.mcp_tools.results import result_text
from localtools.toolbox import Toolbox, cap_output
from localtools.tools import as_tool
from tests.mcp_helpers import children_of, free_port, http_server, server_pids, stdio_entry, wait_gone

pytest.importorskip("mcp")
OPENAI_NAME = re.compile(r"^[a-zA-Z0-9_-]{1,64}$")


# ---------------------------------------------------------------- config


def test_config_reads_stdio_and_http_entries(tmp_path: Path) -> None:
    path = tmp_path / "mcp.json"
    path.write_text(json.dumps({"mcpServers": {
        "files": {"command": "npx", "args": ["-y", "server-fs", "/tmp"], "env": {"DEBUG": "1", "N": 2}},
        "web": {"url": "https://example.test/mcp", "headers": {"Authorization": "Bearer t"}, "type": "http"},
        "off": {"command": "x", "disabled": True},
    }}))
    files, web = load_config(path)
    assert (files.name, files.transport, files.command, files.args) == ("files", "stdio", "npx", ["-y", "server-fs", "/tmp"])
    assert files.env == {"DEBUG": "1", "N": "2"} and files.problem is None
    assert (web.transport, web.url, web.headers) == ("http", "https://example.test/mcp", {"Authorization": "Bearer t"})


@pytest.mark.parametrize(
    ("entry", "says"),
    [
        ({}, 'either "command"'),
        ({"command": "a", "url": "http://x"}, 'either "command"'),
        ({"command": ["a"]}, '"command" must be'),
        ({"command": "a", "args": "b"}, "args must be a list"),
        ({"url": "ftp://x"}, "http:// or https://"),
        ({"url": "http://x", "type": "sse"}, "SSE transport is not supported"),
        ({"command": "a", "env": {"K": None}}, "env.K must be a string"),
        ("npx", "must be an object"),
    ],
)
def test_a_malformed_entry_is_that_servers_problem_only(entry: Any, says: str) -> None:
    bad, good = parse_config({"mcpServers": {"bad": entry, "good": {"command": "ok"}}}, "f.json")
    assert bad.problem is not None and says in bad.problem and "f.json" in bad.problem
    assert good.problem is None


def test_an_unusable_config_file_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(McpConfigError, match="cannot read MCP config"):
        load_config(tmp_path / "missing.json")
    (tmp_path / "bad.json").write_text("{not json")
    with pytest.raises(McpConfigError, match="not valid JSON"):
        load_config(tmp_path / "bad.json")
    (tmp_path / "shape.json").write_text('{"servers": {}}')
    with pytest.raises(McpConfigError, match='"mcpServers"'):
        load_config(tmp_path / "shape.json")


def test_default_config_path_and_merge(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "cfg"))
    assert default_config_path() == tmp_path / "cfg" / "localtools" / "mcp.json"
    assert load_configs([]) == []
    default_config_path().parent.mkdir(parents=True)
    default_config_path().write_text(json.dumps({"mcpServers": {"a": {"command": "one"}, "b": {"command": "b"}}}))
    extra = tmp_path / "extra.json"
    extra.write_text(json.dumps({"mcpServers": {"a": {"command": "two"}}}))
    merged = {c.name: c.command for c in load_configs([extra])}
    assert merged == {"a": "two", "b": "b"}
    assert [c.name for c in load_configs([extra], use_default=False)] == ["a"]
    monkeypatch.delenv("XDG_CONFIG_HOME")
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert default_config_path() == tmp_path / "home" / ".config" / "localtools" / "mcp.json"


# ---------------------------------------------------------------- names


def test_names_are_namespaced_and_valid_for_openai() -> None:
    assert namespaced("files", "read_file") == "files__read_file"
    assert namespaced("my server", "get.time!") == "my_server__get_time_"
    assert sanitize("") == "_"
    long = namespaced("s" * 40, "t" * 40)
    assert len(long) == MAX_NAME and OPENAI_NAME.match(long)
    assert long != namespaced("s" * 40, "t" * 39 + "u"), "the hash keeps cut names apart"
    taken = {"a__b_c"}
    assert namespaced("a", "b.c", taken) == "a__b_c_2"
    assert namespaced("a", "b.c", taken | {"a__b_c_2"}) == "a__b_c_3"
    for server, tool in [("α", "β"), ("x/y", "z:w"), ("-", "-")]:
        assert OPENAI_NAME.match(namespaced(server, tool))


# ---------------------------------------------------------------- result text


def test_result_text_for_each_kind_of_content() -> None:
    from mcp_types import (
        AudioContent,
        BlobResourceContents,
        CallToolResult,
        EmbeddedResource,
        ImageContent,
        ResourceLink,
        TextContent,
        TextResourceContents,
    )

    png = base64.b64encode(b"\x89PNG" + b"\0" * 96).decode()
    blob = base64.b64encode(b"\1" * 30000).decode()
    result = CallToolResult(content=[
        TextContent(text="hello"),
        ImageContent(data=png, mime_type="image/png"),
        AudioContent(data=png, mime_type="audio/wav"),
        ResourceLink(uri="file:///a.pdf", name="a", mime_type="application/pdf", size=10),
        EmbeddedResource(resource=TextResourceContents(uri="memo://1", mime_type="text/plain", text="note")),
        EmbeddedResource(resource=BlobResourceContents(uri="bin://2", mime_type="application/zip", blob=blob)),
    ])
    lines = result_text(result).splitlines()
    assert lines == [
        "hello",
        "[image: image/png, 100 bytes; not shown to the model]",
        "[audio: audio/wav, 100 bytes; not shown to the model]",
        "[resource link 'a': file:///a.pdf (application/pdf, 10 bytes)]",
        "[resource memo://1 (text/plain)]",
        "note",
        "[binary resource bin://2: application/zip, 29 KiB]",
    ]


def test_result_text_structured_error_and_empty() -> None:
    from mcp_types import CallToolResult, TextContent

    same = CallToolResult(content=[TextContent(text='{"a": 1}')], structured_content={"a": 1})
    assert result_text(same) == '{"a": 1}', "a text block restating the structured content is not repeated"
    wrapped = CallToolResult(content=[TextContent(text="5")], structured_content={"result": 5})
    assert result_text(wrapped) == "5"
    only = CallToolResult(content=[], structured_content={"temp": 21, "sky": "clear"})
    assert json.loads(result_text(only)) == {"temp": 21, "sky": "clear"}
    different = CallToolResult(content=[TextContent(text="see data")], structured_content={"n": 2})
    assert result_text(different).splitlines() == ["see data", '{"n": 2}']
    failed = CallToolResult(content=[TextContent(text="disk full")], is_error=True)
    assert result_text(failed) == "error: disk full"
    assert result_text(CallToolResult(content=[])) == "(the tool returned no content)"


def test_output_is_capped_with_a_note() -> None:
    assert cap_output("abc", 3) == "abc"
    assert cap_output("abc", None) == "abc"
    cut = cap_output("x" * 50, 10)
    assert cut.startswith("x" * 10 + "\n[output truncated")
    assert "first 10 of 50 characters" in cut


# ---------------------------------------------------------------- real servers


@pytest.fixture(scope="module")
def servers(tmp_path_factory: pytest.TempPathFactory) -> Any:
    """alpha over stdio and beta over streamable HTTP, both with the same tools."""
    tmp = tmp_path_factory.mktemp("mcp")
    with http_server("beta", tmp) as url:
        config = {"alpha": stdio_entry("alpha", tmp), "beta": {"url": url}}
        mcp = McpTools(config, log_dir=tmp / "logs", max_output_chars=500)
        try:
            yield mcp, tmp
        finally:
            mcp.close()


def test_both_transports_list_namespaced_tools(servers: Any) -> None:
    mcp, _ = servers
    assert mcp.problems == []
    assert mcp.servers == ["alpha", "beta"]
    names = [t.name for t in mcp.tools]
    for server in ("alpha", "beta"):
        for tool in ("echo", "add", "weather", "fail", "picture", "big", "record"):
            assert f"{server}__{tool}" in names
    assert "alpha__get_time_" in names, "a tool name OpenAI refuses is sanitised"
    assert mcp.tool("alpha__get_time_").tool == "get.time!"  # type: ignore[union-attr]
    assert all(OPENAI_NAME.match(n) for n in names) and len(set(names)) == len(names)
    add = next(s for s in mcp.schemas() if s["function"]["name"] == "beta__add")
    assert as_tool(add) == add
    assert add["function"]["description"] == "Add two integers."
    params = add["function"]["parameters"]
    assert set(params["properties"]) == {"a", "b"} and params["properties"]["a"]["type"] == "integer"
    assert sorted(params["required"]) == ["a", "b"]


def test_calls_reach_the_right_server(servers: Any) -> None:
    mcp, _ = servers
    assert mcp.call("alpha__echo", {"text": "hi"}) == "alpha says: hi"
    assert mcp.call("beta__echo", '{"text": "hi"}') == "beta says: hi"
    assert mcp.call("alpha__get_time_", "") == "noon"


def test_structured_results(servers: Any) -> None:
    mcp, _ = servers
    assert mcp.call("alpha__add", {"a": 2, "b": 3}) == "5"
    assert json.loads(mcp.call("beta__weather", {"city": "Oslo"})) == {"city": "Oslo", "temperature_c": 21, "sky": "sunny"}


def test_is_error_and_bad_calls_are_marked_for_the_model(servers: Any) -> None:
    mcp, _ = servers
    for server in ("alpha", "beta"):
        text = mcp.call(f"{server}__fail", {"reason": "no disk"})
        assert text.startswith("error: ") and "no disk" in text
    assert mcp.call("alpha__add", {"a": "x"}).startswith("error: ")
    assert mcp.call("alpha__nope", {}) == "error: no tool named alpha__nope"
    assert mcp.call("alpha__echo", "{oops").startswith("error: arguments are not valid JSON")
    assert mcp.call("alpha__echo", "[1]") == "error: arguments must be a JSON object, got list"


def test_images_and_resources_are_summarised(servers: Any) -> None:
    mcp, _ = servers
    assert mcp.call("alpha__picture", {}).splitlines() == [
        "[image: image/png, 67 bytes; not shown to the model]",
        "a 1x1 pixel",
    ]
    text = mcp.call("beta__documents", {})
    assert "[resource link 'report': file:///srv/report.pdf (application/pdf, 2048 bytes)]" in text
    assert "[resource memo://today (text/plain)]\nbuy milk" in text and text.endswith("two documents")


def test_large_output_is_truncated(servers: Any) -> None:
    mcp, _ = servers
    assert mcp.call("alpha__big", {"n": 500}) == "x" * 500
    text = mcp.call("beta__big", {"n": 5000})
    assert text.startswith("x" * 500 + "\n[output truncated: showing the first 500 of 5000 characters]")
    assert len(mcp.call_uncapped("beta__big", {"n": 5000})) == 5000


def test_a_call_runs_on_the_server(servers: Any) -> None:
    mcp, tmp = servers
    assert mcp.call("alpha__record", {"note": "n1"}) == "recorded by alpha: n1"
    assert mcp.call("beta__record", {"note": "n2"}) == "recorded by beta: n2"
    assert json.loads((tmp / "record.jsonl").read_text().splitlines()[-1]) == {"server": "alpha", "note": "n1"}
    assert json.loads((tmp / "beta-record.jsonl").read_text().splitlines()[-1]) == {"server": "beta", "note": "n2"}


def test_ctrl_c_cancels_a_call_and_the_session_goes_on(servers: Any) -> None:
    mcp, _ = servers
    timer = threading.Timer(0.5, _thread.interrupt_main)
    start = time.monotonic()
    timer.start()
    with pytest.raises(KeyboardInterrupt):
        mcp.call("alpha__sleep", {"seconds": 30})
    assert time.monotonic() - start < 10
    assert mcp.call("alpha__echo", {"text": "after"}) == "alpha says: after"


def test_toolbox_mixes_functions_and_mcp_tools(servers: Any) -> None:
    mcp, _ = servers

    def shout(text: str) -> str:
        """Upper-case the text.

        Args:
            text: what to shout
        """
        return text.upper() * 100

    def alpha__echo(text: str) -> str:
        """A Python tool with an MCP tool's name.

        Args:
            text: anything
        """
        return text

    box = Toolbox.of([shout, mcp], max_output_chars=20)
    assert box.names[0] == "shout" and "beta__add" in box.names
    assert {i.origin for i in box.info()} == {"python", "mcp:alpha", "mcp:beta"}
    assert box.run("beta__add", '{"a": 1, "b": 1}') == "2"
    assert box.run("shout", {"text": "a"}).startswith("A" * 20 + "\n[output truncated")
    assert box.run("missing", {}) == "error: no tool named missing"
    clash = Toolbox([alpha__echo], mcp)
    assert clash.run("alpha__echo", {"text": "py"}) == "py"
    assert clash.problems == ["mcp tool 'alpha__echo' left out: another tool has that name"]


# ---------------------------------------------------------------- failures and shutdown


def test_broken_servers_are_one_line_each_and_the_rest_go_on(tmp_path: Path) -> None:
    dead_port = free_port()
    config = {
        "good": stdio_entry("good", tmp_path),
        "nocmd": {"command": "/nonexistent/mcp-server"},
        "crash": {"command": sys.executable, "args": ["-c", "import sys; print('bad token', file=sys.stderr); sys.exit(3)"]},
        "refused": {"url": f"http://127.0.0.1:{dead_port}/mcp"},
        "broken": {"args": ["x"]},
    }
    with McpTools(config, log_dir=tmp_path / "logs") as mcp:
        problems = {p.split("'")[1]: p for p in mcp.problems}
        assert set(problems) == {"nocmd", "crash", "refused", "broken"}
        assert "cannot run '/nonexistent/mcp-server': No such file or directory" in problems["nocmd"]
        assert "(stderr: bad token)" in problems["crash"]
        assert f"cannot connect to http://127.0.0.1:{dead_port}/mcp" in problems["refused"]
        assert 'needs either "command"' in problems["broken"]
        for line in mcp.problems:
            assert "\n" not in line and "Traceback" not in line
        assert mcp.servers == ["good"]
        assert mcp.call("good__echo", {"text": "x"}) == "good says: x"


def test_close_leaves_no_server_process(tmp_path: Path) -> None:
    mcp = McpTools({"a": stdio_entry("a", tmp_path), "b": stdio_entry("b", tmp_path)}, log_dir=tmp_path / "logs")
    pids = server_pids(tmp_path)
    assert len(pids) == 2 and all(p in children_of(os.getpid()) for p in pids)
    mcp.close()
    mcp.close()  # twice is fine
    assert wait_gone(pids, timeout=0.5) == [], "close() returns only once the servers are gone"
    assert mcp.call("a__echo", {"text": "x"}) == "error: the MCP servers have been shut down"
    assert not mcp._thread.running  # noqa: SLF001 - the loop thread is stopped too


def test_a_server_that_never_answers_is_stopped(tmp_path: Path) -> None:
    pidfile = tmp_path / "pids"
    hang = {"command": sys.executable, "args": ["-c", (
        "import os, time; open(os.environ['PIDFILE'], 'w').write(str(os.getpid())); time.sleep(120)"
    )], "env": {"PIDFILE": str(pidfile)}}
    with McpTools({"hang": hang}, connect_timeout=1.5, log_dir=tmp_path / "logs") as mcp:
        assert mcp.problems and "did not start within 1.5s" in mcp.problems[0]
        assert wait_gone(server_pids(tmp_path), timeout=0.5) == []


def test_a_server_that_dies_gives_errors_not_exceptions(tmp_path: Path) -> None:
    with McpTools({"a": stdio_entry("a", tmp_path)}, log_dir=tmp_path / "logs") as mcp:
        (pid,) = server_pids(tmp_path)
        os.kill(pid, signal.SIGKILL)
        wait_gone([pid])
        text = mcp.call("a__echo", {"text": "x"})
        assert text.startswith("error: mcp server 'a'"), text
    assert wait_gone([pid]) == []

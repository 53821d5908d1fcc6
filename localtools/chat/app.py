"""`localtools chat`: a terminal conversation with a model that can use tools.

Streams the reply as it comes, shows every tool call and its result, runs
Python tools (asking first unless --yes) and feeds results back until the
model answers in text. Line editing and history: `chat.line_editing`.
"""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TextIO

from localtools.adapters.openai_chunks import ChunkAccumulator
from localtools.chat.backends import ChatBackend
from localtools.tool_loop import Reply, ToolChoice, run_tool_loop
from localtools.toolbox import Toolbox

MAX_TOOL_ROUNDS = 8
RESULT_PREVIEW_CHARS = 800

HELP = """Commands:
  /help           this help
  /tools          list the tools the model can call
  /system TEXT    set the system prompt (empty TEXT clears it)
  /reset          forget the conversation
  /save FILE      save the conversation as OpenAI messages JSON
  /load FILE      load a conversation saved with /save
  /quit           leave (Ctrl-D works too)
Input: end a line with \\ to continue on the next one, or wrap several lines in \"\"\".
Ctrl-C stops the current reply; Ctrl-D leaves."""


def result_preview(result: str) -> str:
    """What the user sees of a result: its start, and the truncation note the model
    read at its end (Toolbox's cap) even when the preview cuts before it."""
    if len(result) <= RESULT_PREVIEW_CHARS:
        return result
    last = result.rsplit("\n", 1)[-1]
    note = f"\n{last}" if last.startswith("[output truncated") else ""
    return result[:RESULT_PREVIEW_CHARS] + f" … ({len(result)} characters){note}"


def _style(code: str, text: str, enabled: bool) -> str:
    return f"\033[{code}m{text}\033[0m" if enabled else text


@dataclass
class ChatSettings:
    system: str | None = None
    tool_choice: str | None = None
    temperature: float | None = None
    max_tokens: int | None = None
    auto_yes: bool = False


@dataclass
class ChatApp:
    backend: ChatBackend
    functions: list[Callable[..., Any]] = field(default_factory=list)
    settings: ChatSettings = field(default_factory=ChatSettings)
    out: TextIO = sys.stdout
    read_line: Callable[[str], str] = input
    messages: list[dict[str, Any]] = field(default_factory=list)
    last_finish: str | None = None
    toolbox: Toolbox | None = None  # Python functions and MCP tools; built from `functions` if None

    def __post_init__(self) -> None:
        self.color = self.out.isatty() and not os.environ.get("NO_COLOR")
        if self.toolbox is None:
            self.toolbox = Toolbox(self.functions)
        self.tools: Toolbox = self.toolbox
        self.schemas = self.tools.schemas()

    # ---- output -----------------------------------------------------------------
    def say(self, text: str = "", end: str = "\n") -> None:
        self.out.write(text + end)
        self.out.flush()

    def dim(self, text: str) -> str:
        return _style("2", text, self.color)

    def bold(self, text: str) -> str:
        return _style("1", text, self.color)

    # ---- main loop --------------------------------------------------------------
    def run(self) -> int:
        self.say(self.bold(f"localtools chat — {self.backend.name}"))
        if self.schemas:
            self.say(self.dim(f"tools: {self.tools_summary()}"))
        self.say(self.dim("Type /help for commands; Ctrl-D to leave."))
        while True:
            try:
                text = self.read_input()
            except EOFError:
                self.say()
                return 0
            except KeyboardInterrupt:
                self.say()
                continue
            if text is None or not text.strip():
                continue
            if text.startswith("/"):
                if self.command(text.strip()) == "quit":
                    return 0
                continue
            self.messages.append({"role": "user", "content": text})
            self.answer()

    def tools_summary(self) -> str:
        """Python tools by name, MCP tools counted per server (there can be many)."""
        python = [i.name for i in self.tools.info() if i.origin == "python"]
        servers: dict[str, int] = {}
        for info in self.tools.info():
            if info.origin.startswith("mcp:"):
                servers[info.origin[4:]] = servers.get(info.origin[4:], 0) + 1
        parts = [", ".join(python)] if python else []
        parts += [f"mcp {name}: {n} tool{'s' if n != 1 else ''}" for name, n in servers.items()]
        return "; ".join(parts) + " (/tools lists them)"

    def list_tools(self) -> None:
        if not self.schemas:
            self.say("No tools. Start with --tools FILE.py, --builtin-tools or --mcp CONFIG.json.")
        for info in self.tools.info():
            params = ", ".join(info.schema["function"].get("parameters", {}).get("properties", {}))
            lines = info.description.strip().splitlines()
            about = lines[0][:120] if lines else ""
            where = f" {self.dim('[mcp ' + info.origin[4:] + ']')}" if info.origin.startswith("mcp:") else ""
            self.say(f"  {self.bold(info.name)}({params}) — {about}{where}")

    def read_input(self) -> str | None:
        line = self.read_line(self.bold(">>> ") if self.color else ">>> ")
        if line.strip() == '"""':
            lines: list[str] = []
            while True:
                nxt = self.read_line("... ")
                if nxt.strip() == '"""':
                    return "\n".join(lines)
                lines.append(nxt)
        parts = []
        while line.endswith("\\"):
            parts.append(line[:-1])
            line = self.read_line("... ")
        parts.append(line)
        return "\n".join(parts)

    # ---- commands ---------------------------------------------------------------
    def command(self, text: str) -> str | None:
        name, _, arg = text.partition(" ")
        arg = arg.strip()
        if name in ("/quit", "/exit"):
            return "quit"
        if name == "/help":
            self.say(HELP)
        elif name == "/tools":
            self.list_tools()
        elif name == "/system":
            self.settings.system = arg or None
            self.say(self.dim("system prompt set" if arg else "system prompt cleared"))
        elif name == "/reset":
            self.messages.clear()
            self.say(self.dim("conversation cleared"))
        elif name == "/save":
            if not arg:
                self.say("usage: /save FILE")
            else:
                try:
                    Path(arg).write_text(json.dumps(self.full_messages(), indent=2, ensure_ascii=False) + "\n")
                except OSError as exc:
                    self.say(f"cannot save to {arg}: {exc}")
                else:
                    self.say(self.dim(f"saved {len(self.full_messages())} messages to {arg}"))
        elif name == "/load":
            self.load(arg)
        else:
            self.say(f"unknown command {name}; /help lists them")
        return None

    def load(self, path: str) -> None:
        if not path:
            self.say("usage: /load FILE")
            return
        try:
            data = json.loads(Path(path).read_text())
        except (OSError, ValueError) as exc:
            self.say(f"cannot load {path}: {exc}")
            return
        if not isinstance(data, list) or not all(isinstance(m, dict) and "role" in m for m in data):
            self.say(f"{path} is not a list of OpenAI messages")
            return
        if data and data[0].get("role") == "system":
            self.settings.system = data[0].get("content")
            data = data[1:]
        self.messages = data
        self.say(self.dim(f"loaded {len(data)} messages from {path}"))

    def full_messages(self) -> list[dict[str, Any]]:
        head = [{"role": "system", "content": self.settings.system}] if self.settings.system else []
        return head + self.messages

    # ---- one user turn: reply, tools, reply … ----------------------------------------
    def answer(self) -> None:
        end = run_tool_loop(
            self.messages, self.reply, self.run_call, self.settings.tool_choice,
            max_steps=MAX_TOOL_ROUNDS, run_cut_calls=False,
        )
        if end.reason == "cut":
            # a call cut by max_tokens has guessed-at arguments: never run it
            self.say(self.dim("[tool calls not run: the reply was cut at max tokens; raise --max-tokens]"))
        elif end.reason == "max_steps":
            self.say(self.dim(f"[stopped after {MAX_TOOL_ROUNDS} rounds of tool calls]"))

    def reply(self, tool_choice: ToolChoice) -> Reply | None:
        """One streamed reply; Ctrl-C or a failure is shown and ends the turn (None)."""
        try:
            message = self.stream_reply(tool_choice)
        except KeyboardInterrupt:
            self.say(self.dim("\n[stopped]"))
            return None
        except Exception as exc:  # noqa: BLE001 - show, keep the chat alive
            self.say(f"\nerror: {exc}")
            return None
        return Reply(message, self.last_finish)

    def stream_reply(self, tool_choice: ToolChoice) -> dict[str, Any]:
        """Show the reply as it streams; return it as an assistant message."""
        acc = ChunkAccumulator()
        stream = self.backend.stream(
            self.full_messages(),
            self.schemas or None,
            tool_choice if self.schemas else None,
            self.settings.temperature,
            self.settings.max_tokens,
        )
        wrote = False
        try:
            for chunk in stream:
                news = acc.add(chunk)
                if news.reasoning:
                    self.out.write(self.dim(news.reasoning))
                if news.content:
                    self.out.write(news.content)
                wrote = wrote or bool(news.reasoning or news.content)
                self.out.flush()
        finally:
            close = getattr(stream, "close", None)
            if close:
                close()
        self.last_finish = acc.finish_reason
        if wrote:
            self.say()
        if acc.finish_reason == "length":
            self.say(self.dim("[reply cut at max tokens]"))
        return acc.message()

    def run_call(self, call: dict[str, Any]) -> str:
        """Show one call, run it if the user agrees; the result is shown and returned."""
        fn_name = call["function"]["name"]
        raw = call["function"]["arguments"]
        try:
            args = json.loads(raw) if raw.strip() else {}
            pretty = json.dumps(args, indent=2, ensure_ascii=False)
        except ValueError:
            args, pretty = None, raw
        self.say(self.bold(f"→ tool call: {fn_name}"))
        self.say(pretty)
        if fn_name not in self.tools:
            result = f"error: no tool named {fn_name}"
        elif args is None:
            result = "error: the arguments were not valid JSON"
        elif not self.confirm(fn_name):
            result = "error: the user declined to run this tool"
        else:
            try:
                result = self.tools.run(fn_name, args)
            except KeyboardInterrupt:  # Ctrl-C stops the tool, not the chat
                self.say(self.dim("[tool stopped]"))
                result = "error: the user interrupted this tool"
        self.say(self.dim(f"← result: {result_preview(result)}"))
        return result

    def confirm(self, name: str) -> bool:
        if self.settings.auto_yes:
            return True
        try:
            answer = self.read_line(f"Run {name}? [y/N] ")
        except (EOFError, KeyboardInterrupt):
            self.say()
            return False
        return answer.strip().lower() in ("y", "yes")

"""chat.completion.chunk stream → Responses API typed events (with `sequence_number`).

One `ResponsesStream` per response: `start()` gives `response.created` and
`response.in_progress`, `feed(chunk)` the events for each chunk, `finish()` the
closing events and `response.completed` (or `response.incomplete`) carrying the
whole Response, built by the same code as the non-streamed one.
"""

from __future__ import annotations

from typing import Any

from localtools.adapters.responses import (
    call_item,
    message_item,
    reasoning_item,
    response_object,
)
from localtools.adapters.translate import ChunkTranslator, new_id


class _Item:
    """The output item being streamed."""

    def __init__(self, kind: str, index: int, item_id: str) -> None:
        self.kind = kind  # "message" | "reasoning" | "function_call"
        self.index = index
        self.id = item_id
        self.text: list[str] = []
        self.call_id = ""
        self.name = ""

    def snapshot(self, status: str) -> dict[str, Any]:
        text = "".join(self.text)
        if self.kind == "message":
            return message_item(self.id, text, status)
        if self.kind == "reasoning":
            return reasoning_item(self.id, text, status)
        return call_item(self.id, self.call_id, self.name, text, status)


class ResponsesStream(ChunkTranslator):
    """Translates one chat chunk stream into Responses events."""

    def __init__(self, rid: str, model: str, echo: dict[str, Any], created_at: int) -> None:
        super().__init__()
        self.rid = rid
        self.model = model
        self.echo = echo
        self.created_at = created_at
        self._seq = 0
        self._items: list[dict[str, Any]] = []  # finished items
        self._open: _Item | None = None
        self.response: dict[str, Any] | None = None  # the final Response, after finish()

    def _event(self, kind: str, **fields: Any) -> dict[str, Any]:
        event = {"type": kind, "sequence_number": self._seq, **fields}
        self._seq += 1
        return event

    def _snapshot(self, finish: str | None) -> dict[str, Any]:
        return response_object(self.rid, self.model, self.echo, list(self._items), finish, self._usage,
                               self.created_at)

    def start(self) -> list[dict[str, Any]]:
        snap = self._snapshot(None)
        return [self._event("response.created", response=snap), self._event("response.in_progress", response=snap)]

    # ------------------------------------------------------------ items

    def _open_item(self, kind: str, prefix: str, call_id: str = "", name: str = "") -> list[dict[str, Any]]:
        events = self._close()
        item = _Item(kind, len(self._items), new_id(prefix))
        item.call_id, item.name = call_id, name
        self._open = item
        events.append(self._event("response.output_item.added", output_index=item.index,
                                  item=item.snapshot("in_progress")))
        if kind in ("message", "reasoning"):
            part = self._part(kind, "")
            events.append(self._event("response.content_part.added", item_id=item.id, output_index=item.index,
                                      content_index=0, part=part))
        return events

    @staticmethod
    def _part(kind: str, text: str) -> dict[str, Any]:
        if kind == "message":
            return {"type": "output_text", "text": text, "annotations": [], "logprobs": []}
        return {"type": "reasoning_text", "text": text}

    def _close(self) -> list[dict[str, Any]]:
        item = self._open
        if item is None:
            return []
        self._open = None
        text = "".join(item.text)
        where = {"item_id": item.id, "output_index": item.index}
        events = []
        if item.kind == "message":
            events.append(self._event("response.output_text.done", **where, content_index=0, text=text, logprobs=[]))
        elif item.kind == "reasoning":
            events.append(self._event("response.reasoning_text.done", **where, content_index=0, text=text))
        else:
            events.append(self._event("response.function_call_arguments.done", **where, arguments=text))
        if item.kind in ("message", "reasoning"):
            events.append(self._event("response.content_part.done", **where, content_index=0,
                                      part=self._part(item.kind, text)))
        status = "incomplete" if item.kind == "message" and self._finish == "length" else "completed"
        done = item.snapshot(status)
        self._items.append(done)
        events.append(self._event("response.output_item.done", output_index=item.index, item=done))
        return events

    # ------------------------------------------------------------ chunks

    def _text(self, kind: str, text: str) -> list[dict[str, Any]]:
        if not text:
            return []
        events = []
        if self._open is None or self._open.kind != kind:
            events += self._open_item(kind, "msg_" if kind == "message" else "rs_")
        item = self._open
        assert item is not None
        item.text.append(text)
        name = "response.output_text.delta" if kind == "message" else "response.reasoning_text.delta"
        extra: dict[str, Any] = {"logprobs": []} if kind == "message" else {}
        events.append(self._event(name, item_id=item.id, output_index=item.index, content_index=0,
                                  delta=text, **extra))
        return events

    def _reasoning(self, text: str) -> list[dict[str, Any]]:
        return self._text("reasoning", text)

    def _content(self, text: str) -> list[dict[str, Any]]:
        return self._text("message", text)

    def _call_start(self, call_id: str, name: str) -> list[dict[str, Any]]:
        return self._open_item("function_call", "fc_", call_id, name)

    def _arguments(self, fragment: str) -> list[dict[str, Any]]:
        item = self._open
        if item is None or item.kind != "function_call":
            return []
        item.text.append(fragment)
        return [self._event("response.function_call_arguments.delta", item_id=item.id,
                            output_index=item.index, delta=fragment)]

    def error_event(self, message: str, code: str | None, param: str | None) -> dict[str, Any]:
        """The `error` event that ends a stream which failed after it started."""
        return self._event("error", message=message, code=code, param=param)

    def finish(self) -> list[dict[str, Any]]:
        """The closing events; `self.response` is then the whole Response."""
        finish = self._finish or "stop"
        self._finish = finish
        events = self._text("message", self._held_text())
        if self._calls == 0 and not any(i["type"] == "message" for i in self._items) and (
            self._open is None or self._open.kind != "message"
        ):
            events += self._open_item("message", "msg_")  # an empty reply is still one (empty) message
        events += self._close()
        self.response = self._snapshot(finish)
        kind = "response.incomplete" if finish == "length" else "response.completed"
        events.append(self._event(kind, response=self.response))
        return events

"""Where `localtools chat` gets its replies: the engine in-process, or a server.

Both speak the same thing — OpenAI chat-completion chunks — so the terminal
chat has one code path whichever is behind it.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping
from typing import Any

# a tool_choice as the chat holds it: "auto"/"none"/"required" or a named function
Choice = str | Mapping[str, Any] | None


class ChatBackend:
    """Where replies come from: turns a chat turn into one OpenAI chat-completions
    request body and answers it as a stream of chunks (`_send`, per backend)."""

    name: str

    def stream(
        self,
        messages: list[dict[str, Any]],
        tools: list[dict[str, Any]] | None,
        tool_choice: Choice,
        temperature: float | None,
        max_tokens: int | None,
    ) -> Iterator[dict[str, Any]]:
        body: dict[str, Any] = {"messages": messages, "stream": True}
        if tools:
            body["tools"] = tools
            if tool_choice:
                body["tool_choice"] = dict(tool_choice) if isinstance(tool_choice, Mapping) else tool_choice
        if temperature is not None:
            body["temperature"] = temperature
        if max_tokens is not None:
            body["max_tokens"] = max_tokens
        return self._send(body)  # OpenAI `chat.completion.chunk` dicts; closing cancels

    def _send(self, body: dict[str, Any]) -> Iterator[dict[str, Any]]:
        raise NotImplementedError


class LocalBackend(ChatBackend):
    """The engine in this process, through the same service the server uses."""

    def __init__(self, model: Any) -> None:  # localtools.local_model.LocalModel
        self.model = model
        self.name = model.name

    def _send(self, body: dict[str, Any]) -> Iterator[dict[str, Any]]:
        messages = body.pop("messages")
        body.pop("stream")
        return self.model.chat(messages, stream=True, **body)


class ServerError(Exception):
    pass


class HttpBackend(ChatBackend):
    """A running localtools (or any OpenAI-compatible) server."""

    def __init__(self, url: str, api_key: str | None = None, model: str | None = None, timeout: float = 600) -> None:
        import httpx

        self.url = url.rstrip("/")
        if not self.url.endswith("/v1"):
            self.url += "/v1"
        headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
        self.client = httpx.Client(headers=headers, timeout=timeout)
        self.model = model or self._first_model()
        self.name = f"{self.model} @ {self.url}"

    def _first_model(self) -> str:
        try:
            data = self.client.get(f"{self.url}/models").json()
            return data["data"][0]["id"]
        except Exception as exc:  # noqa: BLE001 - any failure means "cannot reach"
            raise ServerError(f"cannot reach a server at {self.url}: {exc}") from exc

    def _send(self, body: dict[str, Any]) -> Iterator[dict[str, Any]]:
        body["model"] = self.model
        with self.client.stream("POST", f"{self.url}/chat/completions", json=body) as response:
            if response.status_code != 200:
                response.read()
                try:
                    message = response.json()["error"]["message"]
                except Exception:  # noqa: BLE001
                    message = response.text[:300]
                raise ServerError(f"server answered {response.status_code}: {message}")
            for line in response.iter_lines():
                if not line.startswith("data:"):
                    continue
                data = line[5:].strip()
                if data == "[DONE]":
                    return
                yield json.loads(data)

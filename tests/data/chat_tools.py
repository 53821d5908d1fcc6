"""Tools for the terminal-chat test: `localtools chat --tools tests/data/chat_tools.py`."""

from __future__ import annotations


def get_weather(city: str) -> str:
    """Get the current weather in a city.

    Args:
        city: The city name, e.g. "Paris".
    """
    return f"Sunny and 21 degrees C in {city}."


def _helper() -> None:
    """Private: not a tool."""

"""Translators between foreign APIs and the one OpenAI chat-completions pipeline."""

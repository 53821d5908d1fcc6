"""Translators between the APIs the server speaks and the service (no HTTP here).

`openai_chat` and `openai_completions` turn OpenAI requests into service calls
and runs into OpenAI replies and chunks; the other APIs' translators map their
requests onto OpenAI chat-completions bodies and call `openai_chat`. All of
them raise `errors.AdapterError`, which each route maps into its API's error shape.
"""

"""The HTTP endpoints, one module per API area; each exports `routes`.

Handlers are module-level functions that find what they serve on
`request.app.state` (`runtime`, `settings`, `scheduler`).
"""

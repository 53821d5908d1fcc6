"""The HTTP endpoints, one module per API area; each exports `routes`.

Handlers are module-level functions that find what they serve on
`request.app.state` (`runtime`, `settings`, `scheduler`), or, when the app serves
a pool of models, on the per-request host `api.routing.serving_for` returns.
"""

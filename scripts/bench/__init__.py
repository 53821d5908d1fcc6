"""The benchmark users run: how much localtools costs on top of llama.cpp, in one run.

Everything is measured as a ratio between two sides run under the same conditions,
interleaved and repeated (medians), because absolute speeds on a shared machine say
little. The server is a real `localtools serve` subprocess spoken to over HTTP with
streaming; the baseline is llama-cpp-python's own `Llama.create_completion` on the very
prompt the server renders. `run.run_benchmark` returns a JSON-able dict;
`report.format_table` prints it. Entry point: `scripts/bench.py`.

Modules: `common` (tools, settings, samples), `sides` (server subprocess, raw
baseline), `parts` (the measured parts), `report` (the table), `run` (all parts, CLI).
"""

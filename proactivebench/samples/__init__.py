"""Sample data and tiny models that the demo, the tests and the benchmarks use.

- `native`: a small sample of every raw source in its native download layout (`proactivebench sample-data`).
- `release`: a tiny release in the authors' format (jsonl + image folders), for `import-official`.
- `tiny_models`: tiny random-weight vision-language checkpoints built from a config.
"""

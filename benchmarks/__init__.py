"""wally against PyTorch on the same CPU: ``python -m benchmarks.run`` (see ``run.py``)."""

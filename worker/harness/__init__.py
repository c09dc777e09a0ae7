"""The training harness: runs one train.py variant under the track's clock and scores it itself.

Run as `python -m worker.harness` (see `__main__`); `worker.runner` spawns it in a subprocess and
watches it. Imports only the standard library, torch, numpy and `shared.track_spec` /
`shared.data_format`, so it runs on a bare GPU box. README.md lists its invariants.
"""

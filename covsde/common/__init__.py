"""common/: the small base every layer of covsde may import — errors, input checks, safe parsing of
expressions, resource limits, fingerprints for cache keys, the on-disk cache and JSON output.
It imports nothing from the rest of covsde."""

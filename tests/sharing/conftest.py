from tests.runs.conftest import fake_workers, redis  # noqa: F401  (the registry of two fake load workers)

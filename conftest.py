"""Root conftest: server fixtures (Redis, PostgreSQL) shared by the core suite and the adapters' suites."""

pytest_plugins = ["tests.harness.files", "tests.harness.redis", "tests.harness.postgres"]

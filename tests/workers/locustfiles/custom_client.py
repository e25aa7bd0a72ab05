"""A non-HTTP client that reports through events.request, as in Locust's docs."""

import time

from locust import User, constant, events, task


class FakeDatabaseClient:
    def query(self, sql):
        start = time.perf_counter()
        exception = None
        try:
            if "DROP" in sql:
                raise PermissionError("DROP is not allowed")
            time.sleep(0.002)
            result = [1, 2, 3]
        except Exception as error:  # noqa: BLE001
            exception = error
            result = None
        events.request.fire(request_type="custom", name=sql.split()[0].lower(),
                            response_time=(time.perf_counter() - start) * 1000, response_length=len(result or []),
                            exception=exception, context={})
        return result


class DatabaseUser(User):
    wait_time = constant(0.01)

    def __init__(self, environment):
        super().__init__(environment)
        self.db = FakeDatabaseClient()

    @task(3)
    def select(self):
        self.db.query("SELECT 1")

    @task
    def drop(self):
        self.db.query("DROP TABLE users")

    @task
    def crash(self):
        raise ZeroDivisionError("a bug in the locustfile")

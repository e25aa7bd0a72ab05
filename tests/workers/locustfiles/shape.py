from locust import HttpUser, LoadTestShape, constant, task


class Steady(HttpUser):
    wait_time = constant(0.02)

    @task
    def ok(self):
        self.client.get("/ok")


class TwoSteps(LoadTestShape):
    """4 users for 1.5 s, 8 users until 3 s, then the test ends (run-wide figures)."""

    def tick(self):
        run_time = self.get_run_time()
        if run_time < 1.5:
            return (4, 100)
        if run_time < 3.0:
            return (8, 100)
        return None

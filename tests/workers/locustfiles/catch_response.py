from locust import HttpUser, constant, task


class Picky(HttpUser):
    wait_time = constant(0.01)

    @task
    def strict(self):
        with self.client.get("/json", catch_response=True) as response:
            if response.json().get("ok") is True:
                response.failure("ok was true, expected false")
            else:
                response.success()

    @task
    def lenient(self):
        with self.client.get("/status/500", catch_response=True) as response:
            response.success()

from locust import HttpUser, constant, task


class Browser(HttpUser):
    wait_time = constant(0.01)

    @task(3)
    def ok(self):
        self.client.get("/ok")

    @task
    def json(self):
        self.client.get("/json")

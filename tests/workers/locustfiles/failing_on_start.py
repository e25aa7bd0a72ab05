from locust import HttpUser, constant, task


class Broken(HttpUser):
    wait_time = constant(0.1)

    def on_start(self):
        raise ValueError("the login page moved")

    @task
    def ok(self):
        self.client.get("/ok")

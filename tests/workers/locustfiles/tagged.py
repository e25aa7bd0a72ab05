from locust import HttpUser, constant, tag, task


class Tagged(HttpUser):
    wait_time = constant(0.01)

    @tag("api")
    @task
    def api(self):
        self.client.get("/json")

    @tag("pages")
    @task
    def page(self):
        self.client.get("/ok")

    @task
    def untagged(self):
        self.client.get("/delay/1ms")

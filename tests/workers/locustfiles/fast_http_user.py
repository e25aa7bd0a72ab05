from locust import FastHttpUser, constant, task


class FastBrowser(FastHttpUser):
    wait_time = constant(0.01)

    @task
    def ok(self):
        self.client.get("/ok")

    @task
    def static(self):
        self.client.get("/static10k")

    @task
    def server_error(self):
        self.client.get("/status/500")

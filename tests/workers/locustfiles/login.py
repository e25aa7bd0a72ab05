from locust import HttpUser, constant, task


class Member(HttpUser):
    wait_time = constant(0.02)

    def on_start(self):
        response = self.client.post("/ok", json={"user": "demo", "password": "secret"}, name="login")
        response.raise_for_status()
        self.logged_in = True

    @task
    def account(self):
        assert self.logged_in
        self.client.get("/json")

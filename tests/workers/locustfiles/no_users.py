from locust import HttpUser, task


class Base(HttpUser):
    abstract = True

    @task
    def ok(self):
        self.client.get("/ok")


def helper():
    return 42

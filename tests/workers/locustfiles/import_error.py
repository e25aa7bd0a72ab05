from locust import HttpUser, task

import swarmdeck_no_such_module  # noqa: F401


class Never(HttpUser):
    @task
    def ok(self):
        self.client.get("/ok")

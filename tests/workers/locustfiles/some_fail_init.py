"""Every other user raises in __init__; the others run."""

import itertools

from locust import HttpUser, constant, task

CREATED = itertools.count()


class Flaky(HttpUser):
    wait_time = constant(0.05)

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        if next(CREATED) % 2:
            raise RuntimeError("no account left for this user")

    @task
    def ok(self):
        self.client.get("/ok")

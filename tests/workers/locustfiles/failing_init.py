"""Like Locust's examples/multiple_hosts.py: a second host read from the environment in __init__."""

import os

from locust import HttpUser, constant, task
from locust.clients import HttpSession


class MultipleHostsUser(HttpUser):
    abstract = True

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.api_client = HttpSession(base_url=os.environ["API_HOST"], request_event=self.client.request_event,
                                      user=self)


class WebsiteUser(MultipleHostsUser):
    wait_time = constant(0.1)

    @task
    def index(self):
        self.client.get("/ok")

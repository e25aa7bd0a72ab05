import time

from locust import HttpUser, task

while True:  # a locustfile that never finishes importing
    time.sleep(0.1)


class Never(HttpUser):
    @task
    def ok(self):
        self.client.get("/ok")

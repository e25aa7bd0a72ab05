from locust import HttpUser, TaskSet, between, constant, task


class Catalog(TaskSet):
    @task(4)
    def browse(self):
        self.client.get("/json")

    @task
    def leave(self):
        self.interrupt()


class Shopper(HttpUser):
    wait_time = constant(0.01)
    tasks = {Catalog: 3}

    @task
    def home(self):
        self.client.get("/ok")

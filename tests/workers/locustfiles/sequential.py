from locust import HttpUser, SequentialTaskSet, constant, task


class Checkout(SequentialTaskSet):
    @task
    def first(self):
        self.client.get("/ok")

    @task
    def second(self):
        self.client.get("/json")

    @task
    def third(self):
        self.client.get("/delay/1ms")


class Buyer(HttpUser):
    wait_time = constant(0.005)
    tasks = [Checkout]

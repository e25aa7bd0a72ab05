from locust import HttpUser, MarkovTaskSet, constant, transition


class Journey(MarkovTaskSet):
    @transition("search")
    def home(self):
        self.client.get("/ok")

    @transition("product")
    def search(self):
        self.client.get("/json")

    @transition("home")
    def product(self):
        self.client.get("/static10k")


class Visitor(HttpUser):
    wait_time = constant(0.005)
    tasks = [Journey]

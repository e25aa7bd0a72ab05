"""Requests under ten distinct names without a target: each task reports them through Locust's request event."""

from locust import User, constant, task


class Names(User):
    wait_time = constant(0.05)

    @task
    def names(self):
        for i in range(10):
            self.environment.events.request.fire(request_type="GET", name=f"/item/{i}", response_time=1.0,
                                                 response_length=0, exception=None, context={})

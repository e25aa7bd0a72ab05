"""Locust's distributed API as a slot sees it: the runner's worker_index and worker_count, and
SWARMDECK_SLOT / SWARMDECK_SLOTS (at import time too). Reported as request names."""

import os

from locust import User, constant, events, task

AT_IMPORT = f"{os.environ.get('SWARMDECK_SLOT')}/{os.environ.get('SWARMDECK_SLOTS')}"
AT_INIT = []


@events.init.add_listener
def on_init(environment, **_kwargs):
    AT_INIT.append(f"{environment.runner.worker_index}/{environment.runner.worker_count}")


class Reporter(User):
    wait_time = constant(0.05)

    @task
    def report(self):
        runner = self.environment.runner
        env = f"{os.environ.get('SWARMDECK_SLOT')}/{os.environ.get('SWARMDECK_SLOTS')}"
        name = f"runner={runner.worker_index}/{runner.worker_count} env={env} import={AT_IMPORT} init={','.join(AT_INIT)}"
        self.environment.events.request.fire(request_type="SLOT", name=name, response_time=1, response_length=0,
                                             exception=None, context={})

"""Run events other apps listen to (automation: webhooks). Sent after the database change commits.

- run_ended(run_id): the run reached finished, failed or cancelled (sent by the collector and
  by services.cancel_run).
- threshold_broken(run_id, criterion): a live criterion with abort-on-fail was broken.
"""

import django.dispatch

run_ended = django.dispatch.Signal()
threshold_broken = django.dispatch.Signal()

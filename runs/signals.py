"""Run events other apps listen to (automation: webhooks). Sent after the database change commits.

- run_ended(run_id): the run reached finished, failed or cancelled (sent by the collector and
  by services.cancel_run).
- threshold_broken(run_id, criterion): a live criterion with abort-on-fail was broken; sent by the
  collector once per broken criterion, after the run was marked verdict fail and asked to stop.
  `criterion` is the plain dict stored in Run.verdict_details (runs/thresholds.py), with
  aborted=True and the measured value that broke it.
"""

import django.dispatch

run_ended = django.dispatch.Signal()
threshold_broken = django.dispatch.Signal()

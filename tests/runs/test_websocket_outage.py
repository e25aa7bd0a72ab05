"""The live page's WebSocket across a Redis restart, on a real Daphne and a real redis-server this
test starts and kills: a socket that loses Redis, and a connect while it is down, are closed with
4503 (the page retries), never answered with HTTP 500; the first connect once Redis is back gets
the run's state and its group's messages; the web process logs one line for the outage and one
for its end, no traceback."""

import datetime as dt
import json
import os
import signal
import struct
import sys

import pytest
import websocket
from asgiref.sync import async_to_sync
from channels_redis.core import RedisChannelLayer
from django.conf import settings
from django.utils import timezone

from controlcenter.processes import free_port
from runs import live
from runs.consumers import CLOSE_TRY_AGAIN
from runs.models import Run
from tests.conftest import store_scenario
from tests.runs.conftest import Process, database_url, wait_for
from tests.runs.test_faults import private_redis  # noqa: F401 (fixture)
from tests.runs.test_limits import NORMAL

pytestmark = [pytest.mark.slow, pytest.mark.django_db(transaction=True)]


def connect(port: int, run_id: int, cookie: str) -> websocket.WebSocket:
    """The page's handshake: its Origin and session cookie (a refused handshake raises)."""
    return websocket.create_connection(f"ws://127.0.0.1:{port}/ws/runs/{run_id}/", timeout=15,
                                       origin=f"http://127.0.0.1:{port}", cookie=cookie)


def close_code(ws: websocket.WebSocket) -> int:
    opcode, data = ws.recv_data(control_frame=True)
    assert opcode == websocket.ABNF.OPCODE_CLOSE, (opcode, data[:200])
    return struct.unpack("!H", data[:2])[0]


def test_the_live_socket_rides_out_a_redis_restart(private_redis, client, alice, project):  # noqa: F811
    scenario = store_scenario(project, alice, name="Live", content=NORMAL)
    run = Run.objects.create(project=project, scenario=scenario, version=scenario.current_version,
                             status=Run.Status.RUNNING, created_by=alice,
                             started_at=timezone.now() - dt.timedelta(seconds=5),
                             params={"users": 1, "spawn_rate": 1, "duration": 600, "slots": 1})
    client.force_login(alice)
    cookie = f"{settings.SESSION_COOKIE_NAME}={client.cookies[settings.SESSION_COOKIE_NAME].value}"
    port = free_port()
    env = {**os.environ, "DJANGO_SETTINGS_MODULE": "controlcenter.settings", "DATABASE_URL": database_url(),
           "REDIS_URL": private_redis.url, "PYTHONUNBUFFERED": "1"}
    web = Process("web", [sys.executable, "-m", "daphne", "-b", "127.0.0.1", "-p", str(port),
                          "controlcenter.asgi:application"], env)
    try:
        wait_for(lambda: "Listening on TCP address" in web.output(), 30, "daphne never started")
        watching = connect(port, run.pk, cookie)
        assert json.loads(watching.recv())["type"] == "state"

        private_redis.kill()
        assert close_code(watching) == CLOSE_TRY_AGAIN
        for _ in range(3):   # the page's retries while Redis is down: a clean close each time, no 500
            assert close_code(connect(port, run.pk, cookie)) == CLOSE_TRY_AGAIN

        private_redis.restart()   # empty: the group memberships are gone with the old server
        back = connect(port, run.pk, cookie)
        assert json.loads(back.recv())["type"] == "state"
        layer = RedisChannelLayer(hosts=[{"address": private_redis.url}])
        async_to_sync(layer.group_send)(live.run_group(run.pk), {"type": "run.message",
                                                                 "message": {"type": "meta", "probe": 1}})
        assert json.loads(back.recv()) == {"type": "meta", "probe": 1}
        back.close()

        log = web.output()
        assert "Traceback" not in log and "Exception inside application" not in log, log[-4000:]
        assert log.count("Live pages: Redis is unreachable") == 1, log[-4000:]
        assert log.count("Live pages: Redis is reachable again") == 1, log[-4000:]
    finally:
        web.kill(signal.SIGTERM)

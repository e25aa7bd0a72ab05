"""The live run page's WebSocket: /ws/runs/<id>/.

Authorized in `connect`, before accepting: an anonymous user or one outside the run's project
is closed without a byte of data (the Origin is checked earlier, by AllowedHostsOriginValidator
in controlcenter/asgi.py). On connect the page first gets the full state from the database,
then the collector's deltas as they come (only the rows that changed, numbered): a page that
sees a gap in their numbers asks for the full state again ({"type": "refresh"}).

Redis (the channel layer) going away must not surface as an exception out of the consumer: Daphne
would answer a connecting page with HTTP 500 and log a traceback per socket. A socket that loses
the layer, or cannot join its run's group, is closed with 4503 (try again later) and the page
reconnects with its backoff: a restarted Redis is empty, so only a new connect rejoins the group.
Each Redis operation is tried twice: the first command after a restart may fail on a pooled
connection to the old server. The outage is logged once, and once when it is over.
"""

import logging

import redis
from channels.db import database_sync_to_async
from channels.exceptions import StopConsumer
from channels.generic.websocket import AsyncJsonWebsocketConsumer

from runs import live
from runs.models import Run

log = logging.getLogger(__name__)

CLOSE_DENIED = 4403
CLOSE_TRY_AGAIN = 4503  # "Try again later" (1013 itself is refused by Daphne: apps may send 1000 or 3000-4999)
REDIS_FAULTS = (redis.ConnectionError, redis.TimeoutError, OSError)


class Outage:
    """One log line when the live pages lose Redis, one when it answers again."""

    down = False

    @classmethod
    def lost(cls, error: BaseException) -> None:
        if not cls.down:
            cls.down = True
            log.warning("Live pages: Redis is unreachable (%s); their sockets close and reconnect once it is back",
                        error)

    @classmethod
    def back(cls) -> None:
        if cls.down:
            cls.down = False
            log.warning("Live pages: Redis is reachable again")


async def twice(operation):
    """Await operation(); on a Redis fault once more (a stale pooled connection is dropped by then)."""
    try:
        return await operation()
    except REDIS_FAULTS:
        return await operation()


class RunConsumer(AsyncJsonWebsocketConsumer):
    # Channels assigns the layer's receive for this socket in __call__ and awaits it next to the
    # client's messages; kept guarded, a lost layer becomes a `layer.lost` message.
    @property
    def channel_receive(self):
        return self._guarded_receive

    @channel_receive.setter
    def channel_receive(self, receive):
        async def guarded():
            try:
                message = await twice(receive)
            except REDIS_FAULTS as error:
                return {"type": "layer.lost", "error": error}
            Outage.back()
            return message

        self._guarded_receive = guarded

    async def connect(self):
        self.group = None
        user = self.scope.get("user")
        run_id = int(self.scope["url_route"]["kwargs"]["run_id"])
        if user is None or not user.is_authenticated or not await self.visible(user, run_id):
            await self.close(code=CLOSE_DENIED)
            return
        self.run_id = run_id
        self.group = live.run_group(run_id)
        # Join before reading the state: a delta sent in between then arrives after the state
        # and overlaps it, which the page's merge by tick number absorbs. Nothing falls through.
        try:
            await twice(lambda: self.channel_layer.group_add(self.group, self.channel_name))
        except REDIS_FAULTS as error:
            await self.layer_lost({"error": error})
        Outage.back()
        await self.accept()
        self.accepted = True
        await self.send_json(await self.state())

    async def disconnect(self, code):
        if self.group:
            try:
                await self.channel_layer.group_discard(self.group, self.channel_name)
            except REDIS_FAULTS as error:
                Outage.lost(error)   # the group entry expires by itself

    async def layer_lost(self, event):
        """Redis is gone: close with a code the page retries on (accepted first, or a connecting
        page would only see the handshake refused) and end the consumer."""
        Outage.lost(event["error"])
        self.group = None
        if not getattr(self, "accepted", False):
            await self.accept()
            self.accepted = True
        await self.close(code=CLOSE_TRY_AGAIN)
        raise StopConsumer

    async def receive_json(self, content, **kwargs):
        # The page only listens; stop and user changes are CSRF-protected POSTs. It asks for the state
        # when it missed a delta, and now and then while the run is queued.
        if content.get("type") == "refresh":
            await self.send_json(await self.state())

    async def run_message(self, event):
        await self.send_json(event["message"])

    @database_sync_to_async
    def visible(self, user, run_id: int) -> bool:
        return Run.objects.for_user(user).filter(pk=run_id).exists()

    @database_sync_to_async
    def state(self) -> dict:
        run = Run.objects.select_related("scenario").defer("stats_blob").get(pk=self.run_id)
        return live.full_state(run)

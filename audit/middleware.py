"""Changes made through a web request are recorded as coming from the UI.

The API (api/app.py) narrows this to "api:<token name>" for token requests, "api" for a browser session.
"""

from asgiref.sync import iscoroutinefunction, markcoroutinefunction

from audit.log import via


class InterfaceMiddleware:
    """Sets audit.log.via("ui") around the request, in sync (WSGI, tests) and async (ASGI) stacks alike."""

    sync_capable = True
    async_capable = True

    def __init__(self, get_response):
        self.get_response = get_response
        self.is_async = iscoroutinefunction(get_response)
        if self.is_async:
            markcoroutinefunction(self)

    def __call__(self, request):
        if self.is_async:
            return self.__acall__(request)
        with via("ui"):
            return self.get_response(request)

    async def __acall__(self, request):
        with via("ui"):
            return await self.get_response(request)

"""Benchmark server: the same two routes on aiohttp."""
import sys

from aiohttp import web


async def hello(request):
    return web.Response(text="hello", content_type="text/html")


async def item(request):
    return web.json_response({"id": request.match_info["id"], "name": "item"})


app = web.Application()
app.add_routes([web.get("/", hello), web.get("/items/{id}", item)])
port = int(sys.argv[1])
print(f"listening on 127.0.0.1:{port}", flush=True)
web.run_app(app, host="127.0.0.1", port=port, print=None, backlog=4096, keepalive_timeout=600)

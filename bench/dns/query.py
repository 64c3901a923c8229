"""The dnspython side of the DNS benchmark: COUNT A-record queries for
distinct names (qN.bench.test) against 127.0.0.1:PORT over TASKS concurrent tasks
(1 = the blocking Resolver, more = asyncio with dns.asyncresolver);
prints the elapsed seconds.
Usage: python3 query.py PORT COUNT TASKS
"""

import asyncio
import sys
import time

import dns.asyncresolver
import dns.resolver

port, count, tasks = (int(a) for a in sys.argv[1:4])


def configure(r):
    r.nameservers = ["127.0.0.1"]
    r.port = port
    r.cache = None
    r.lifetime = 5
    return r


if tasks <= 1:
    r = configure(dns.resolver.Resolver(configure=False))
    r.resolve("www.example.test", "A")
    start = time.perf_counter()
    for i in range(count):
        r.resolve(f"q{i}.bench.test", "A")
    print(time.perf_counter() - start)
else:
    async def main():
        r = configure(dns.asyncresolver.Resolver(configure=False))
        await r.resolve("www.example.test", "A")

        async def worker(t, n):
            for i in range(n):
                await r.resolve(f"q{t}-{i}.bench.test", "A")

        start = time.perf_counter()
        await asyncio.gather(*(worker(t, count // tasks + (t < count % tasks)) for t in range(tasks)))
        print(time.perf_counter() - start)

    asyncio.run(main())

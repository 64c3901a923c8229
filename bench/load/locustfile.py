"""bench/load: the Locust contender. Each user GETs the target's path in a
loop with no wait time, over geventhttpclient (FastHttpUser, keep-alive)."""

from locust import FastHttpUser, task


class Get(FastHttpUser):
    @task
    def get(self):
        self.client.get("/")

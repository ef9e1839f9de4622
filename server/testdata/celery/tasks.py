"""A Celery app for the Celery client test (clients_test.go): tasks that a
worker runs from the broker's queue, with results sent back over the rpc://
backend (a reply queue per client)."""
import os

from celery import Celery

app = Celery("tasks", broker=os.environ["BROKER_URL"], backend="rpc://")
app.conf.broker_connection_retry_on_startup = False
# A queue of the test's own, so runs against one broker never share one.
app.conf.task_default_queue = os.environ.get("CELERY_QUEUE", "celery")
# Each task is acked after it has run, so a worker that dies mid-task
# leaves it in the queue (what users of acks_late rely on).
app.conf.task_acks_late = True
app.conf.worker_prefetch_multiplier = 4


@app.task
def add(x, y):
    return x + y


@app.task
def fail(text):
    raise ValueError(text)

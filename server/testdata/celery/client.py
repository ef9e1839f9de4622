"""Calls the tasks of tasks.py through a broker and checks what comes back.
A worker (celery -A tasks worker) must be running. Exits non-zero with a
message on the first surprise."""
import sys

from celery import group

from tasks import add, app, fail

# Generous: these only fail a broker that loses or stalls a message.
TIMEOUT = 60

r = add.delay(2, 3)
got = r.get(timeout=TIMEOUT)
assert got == 5, got

results = group(add.s(i, i) for i in range(50))().get(timeout=TIMEOUT)
assert results == [2 * i for i in range(50)], results

try:
    fail.delay("boom").get(timeout=TIMEOUT)
    sys.exit("a failing task's result did not raise")
except ValueError as e:
    assert str(e) == "boom", e

# The worker answers a broadcast (a fanout exchange with a reply queue).
replies = app.control.ping(timeout=TIMEOUT, limit=1)
assert replies and all("ok" in list(r.values())[0] for r in replies), replies

print("celery ok")

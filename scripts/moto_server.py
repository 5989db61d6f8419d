"""moto_server as the tests run it: the same server, remembering fewer objects.

moto keeps a reference to every model object it ever creates (each DynamoDB item written,
each SQS message sent, deleted or not) for its dashboard, and `/moto-api/data.json` serialises
all of them on every call. Over a test run that grows without bound: memory, and the time of
each `data.json` read, which the tests use to see the mail SES accepted (`ses` -> `Message`).
This launcher keeps the dashboard's list for SES objects only, and runs DynamoDB requests one at
a time, isolated as DynamoDB isolates them (below); the AWS APIs are otherwise moto's own.

    python scripts/moto_server.py -H 127.0.0.1 -p 4566    (the same options as moto_server)
"""

import sys
import threading

from moto.core.common_models import BaseModel
from moto.dynamodb.models import DynamoDBBackend

TRACKED = ("moto.ses.", "moto.sesv2.")


def _new(cls, *args, **kwargs):
    instance = object.__new__(cls)
    if cls.__module__.startswith(TRACKED):
        cls.instances_tracked.append(instance)
    return instance


BaseModel.__new__ = staticmethod(_new)

# DynamoDB isolates each write and each transaction: no other write to its items lands halfway.
# moto's threaded server does not: a transaction checks and applies its items one by one, and a
# cancelled one puts back every table as it copied it when it began, undoing what other requests
# wrote meanwhile (a concurrent start's attempt stays while its count is lost). The tests of
# races send concurrent conditional writes, so the DynamoDB backend runs one request at a time.
_DYNAMODB = threading.RLock()


def _one_at_a_time(method):
    def locked(self, *args, **kwargs):
        with _DYNAMODB:
            return method(self, *args, **kwargs)

    return locked


for _name in (
    "put_item",
    "update_item",
    "delete_item",
    "transact_write_items",
    "get_item",
    "query",
    "scan",
):
    setattr(DynamoDBBackend, _name, _one_at_a_time(getattr(DynamoDBBackend, _name)))

if __name__ == "__main__":
    from moto.server import main

    sys.exit(main())

"""moto_server as the tests run it: the same server, remembering fewer objects.

moto keeps a reference to every model object it ever creates (each DynamoDB item written,
each SQS message sent, deleted or not) for its dashboard, and `/moto-api/data.json` serialises
all of them on every call. Over a test run that grows without bound: memory, and the time of
each `data.json` read, which the tests use to see the mail SES accepted (`ses` -> `Message`).
This launcher keeps the dashboard's list for SES objects only; nothing else changes (the AWS
APIs are moto's own, untouched).

    python scripts/moto_server.py -H 127.0.0.1 -p 4566    (the same options as moto_server)
"""

import sys

from moto.core.common_models import BaseModel

TRACKED = ("moto.ses.", "moto.sesv2.")


def _new(cls, *args, **kwargs):
    instance = object.__new__(cls)
    if cls.__module__.startswith(TRACKED):
        cls.instances_tracked.append(instance)
    return instance


BaseModel.__new__ = staticmethod(_new)

if __name__ == "__main__":
    from moto.server import main

    sys.exit(main())

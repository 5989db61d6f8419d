"""moto_server as the tests run it: the same server, remembering fewer objects.

moto keeps a reference to every model object it ever creates (each DynamoDB item written,
each SQS message sent, deleted or not) for its dashboard, and `/moto-api/data.json` serialises
all of them on every call. Over a test run that grows without bound: memory, and the time of
each `data.json` read, which the tests use to see the mail SES accepted (`ses` -> `Message`).
This launcher keeps the dashboard's list for SES objects only, runs DynamoDB requests one at a
time, isolated as DynamoDB isolates them, undoes a cancelled transaction item by item instead of
copying whole tables before each one, and starts a query from its partition's items instead of
every item of the table (below); the AWS APIs are otherwise moto's own.

    python scripts/moto_server.py -H 127.0.0.1 -p 4566    (the same options as moto_server)
"""

import copy
import inspect
import sys
import threading

import moto.dynamodb.models as dynamodb_models
from moto.core.common_models import BaseModel
from moto.dynamodb.models import DynamoDBBackend
from moto.dynamodb.models.dynamo_type import DynamoType
from moto.dynamodb.models.table import Table

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


# moto keeps a transaction's all-or-nothing by deep-copying every table the transaction names
# (once per item naming it) before it starts, and putting the copies back if it is cancelled.
# That is O(table) per transaction: a load test's table of a few thousand items took moto
# seconds per transaction, and each waited on the lock above. Instead, the items the
# transaction names are copied, and put back if it fails: the same outcome, since nothing else
# writes while it holds the lock. moto's own copy is skipped for tables only.


class _CopyNoTables:
    """`copy` as moto's DynamoDB backend sees it: a `Table` is not copied, all else is."""

    def __getattr__(self, name):
        return getattr(copy, name)

    @staticmethod
    def deepcopy(value, memo=None):
        return value if isinstance(value, Table) else copy.deepcopy(value, memo)


dynamodb_models.copy = _CopyNoTables()


def _named_items(backend, transact_items):
    """(table, hash key, range key) of each item a transaction names."""
    for entry in transact_items:
        op_type, op = next(iter(entry.items()))
        table = backend.tables.get(op.get("TableName"))
        key = op.get("Item") if op_type == "Put" else op.get("Key")
        if table is None or not isinstance(key, dict) or table.hash_key_attr not in key:
            continue  # moto refuses it itself
        range_attr = table.range_key_attr
        if range_attr is not None and range_attr not in key:
            continue
        range_value = DynamoType(key[range_attr]) if range_attr is not None else None
        yield table, DynamoType(key[table.hash_key_attr]), range_value


def _undone_if_cancelled(transact):
    def transact_write_items(self, transact_items):
        before = [
            (table, hash_value, range_value, copy.deepcopy(table.get_item(hash_value, range_value)))
            for table, hash_value, range_value in _named_items(self, transact_items)
        ]
        try:
            return transact(self, transact_items)
        except Exception:
            for table, hash_value, range_value, item in reversed(before):
                if item is None:
                    table.delete_item(hash_value, range_value)
                elif range_value is None:
                    table.items[hash_value] = item
                else:
                    table.items[hash_value][range_value] = item
            raise

    return transact_write_items


DynamoDBBackend.transact_write_items = _undone_if_cancelled(
    DynamoDBBackend.transact_write_items
)

# moto answers a query by going through every item of the table for those of the partition
# asked for, O(table) per query, comparing keys by their cast values: a load test's table of a
# few thousand items made each query cost tens of milliseconds under the lock above. A query
# now starts from its partition's items only: a query on the table's key from the partition
# itself, one on an index whose partition keys are strings from the items holding those
# strings. moto's own code then checks, sorts, filters and copies them as before.


def _stored_items(table):
    """Every item of `table`, unsorted (moto's `all_items` sorts them, comparing cast values)."""
    if table.range_key_attr is None:
        return list(table.items.values())
    return [item for partition in table.items.values() for item in partition.values()]


def _partition_items(table, hash_key, index_name, hash_key_conditions):
    """The items of the partition a query asks for (moto sorts them by the keys of the table or
    index, ties impossible), or None to let moto look at every item."""
    if index_name is None:
        if hash_key is None:
            return None
        partition = table.items.get(hash_key)
        if partition is None:
            items = []
        elif table.range_key_attr is None:
            items = [partition]
        else:
            items = list(partition.values())
    else:
        wanted = list(hash_key_conditions or [])
        if not wanted or any(value.type != "S" for _, value in wanted):
            return None
        items = _stored_items(table)
        for name, value in wanted:
            items = [
                item
                for item in items
                if (held := item.attrs.get(name)) is not None
                and held.value == value.value
                and held.type == "S"
            ]
    return items


# The wrapper reads `index_name` where this moto passes it (checked, so that an upgrade that
# moves it fails here instead of quietly querying the wrong items).
_QUERY_PARAMETERS = list(inspect.signature(Table.query).parameters)
assert _QUERY_PARAMETERS[1] == "hash_key" and _QUERY_PARAMETERS[8] == "index_name", _QUERY_PARAMETERS


def _partition_only(query):
    def partition_query(self, hash_key, *args, **kwargs):
        index_name = kwargs.get("index_name", args[6] if len(args) > 6 else None)
        items = _partition_items(
            self, hash_key, index_name, kwargs.get("hash_key_conditions")
        )
        if items is None:
            return query(self, hash_key, *args, **kwargs)
        self.all_items = lambda: items
        try:
            return query(self, hash_key, *args, **kwargs)
        finally:
            del self.all_items

    return partition_query


Table.query = _partition_only(Table.query)

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

"""Bad declarations: compiler-style errors with file:line:col and a hint, all in one run, exit code 1."""

from __future__ import annotations

import subprocess
import sys

import pytest

SERVICE = {
    "svc/__init__.py": """
        from skyrig import Service

        service = Service("svc", app="svc.api:app")
    """,
    "svc/api.py": "app = object()\n",
    "svc/models.py": """
        from pydantic import BaseModel

        class Event(BaseModel):
            order_id: int
            customer: str
    """,
}

# (files added to the service app, "file:line:col", message fragment, hint fragment)
CASES = {
    "non-literal name": (
        {"svc/res.py": 'from skyrig import Bucket\nNAME = "files"\nfiles = Bucket(NAME)\n'},
        "svc/res.py:3:16",
        "Bucket: name must be a string literal, not a name",
        "write the value itself",
    ),
    "invalid name": (
        {"svc/res.py": 'from skyrig import Bucket\nfiles = Bucket("My_Files")\n'},
        "svc/res.py:2:16",
        "invalid name 'My_Files'",
        "lowercase letters",
    ),
    "name too long": (
        {"svc/res.py": f'from skyrig import Secret\nkey = Secret("{"k" * 64}")\n'},
        "svc/res.py:2:14",
        "must be 1 to 63 characters long, not 64",
        None,
    ),
    "duplicate name": (
        {
            "svc/a.py": 'from skyrig import Bucket\nfiles = Bucket("files")\n',
            "svc/b.py": 'from skyrig import Bucket\n\nmore = Bucket("files")\n',
        },
        "svc/b.py:3:8",
        "duplicate bucket name 'files': first declared at svc/a.py:2:9",
        "unique per kind",
    ),
    "declaration inside a function": (
        {"svc/res.py": 'import skyrig\n\ndef make():\n    return skyrig.Bucket("files")\n'},
        "svc/res.py:4:12",
        "Bucket declared inside function 'make'",
        "module top level",
    ),
    "declaration inside a class": (
        {"svc/res.py": 'from skyrig import Secret\n\nclass Keys:\n    stripe = Secret("stripe")\n'},
        "svc/res.py:4:14",
        "Secret declared inside class 'Keys'",
        "module top level",
    ),
    "declaration inside an if block": (
        {
            "svc/res.py": 'import os\nfrom skyrig import Secret\nif os.environ.get("X"):\n    k = Secret("k")\n'
        },
        "svc/res.py:4:9",
        "Secret declared inside an 'if' block",
        "control flow",
    ),
    "unknown keyword": (
        {"svc/res.py": 'from skyrig import Bucket\nfiles = Bucket("files", versioning=True)\n'},
        "svc/res.py:2:36",
        "Bucket 'files': unknown keyword 'versioning'",
        "did you mean 'versioned'?",
    ),
    "mistyped keyword": (
        {"svc/res.py": 'from skyrig import Bucket\nfiles = Bucket("files", public="yes")\n'},
        "svc/res.py:2:32",
        "Bucket 'files': public: Input should be a valid boolean",
        None,
    ),
    "non-literal keyword": (
        {"svc/res.py": 'from skyrig import Bucket\nPUBLIC = True\nfiles = Bucket("files", public=PUBLIC)\n'},
        "svc/res.py:3:32",
        "Bucket 'files': public must be a literal, not a name",
        "write the value itself",
    ),
    "too many positional arguments": (
        {"svc/res.py": 'from skyrig import Bucket\nfiles = Bucket("files", True)\n'},
        "svc/res.py:2:25",
        "Bucket 'files' takes at most 1 positional argument (name)",
        "by keyword",
    ),
    "missing argument": (
        {"svc/res.py": 'from skyrig import CronJob\nCronJob("tick", every="1h")\n'},
        "svc/res.py:2:1",
        "CronJob 'tick': missing argument 'endpoint'",
        "for example",
    ),
    "subscription of something that is not a topic": (
        {
            "svc/res.py": """
                from skyrig import Subscription

                topic = "order-created"

                def handle(event): ...

                Subscription(topic, "audit", handler=handle)
            """
        },
        "svc/res.py:7:14",
        "Subscription 'audit': 'topic' is not a declared Topic",
        "Topic(...)",
    ),
    "subscription of an undefined name": (
        {
            "svc/res.py": 'from skyrig import Subscription\ndef h(e): ...\nSubscription(nowhere, "s", handler=h)\n'
        },
        "svc/res.py:3:14",
        "'nowhere' is not a declared Topic",
        None,
    ),
    "handler that is a lambda": (
        {
            "svc/res.py": """
                from skyrig import Subscription, Topic
                from .models import Event
                events = Topic("events", Event)
                Subscription(events, "audit", handler=lambda e: None)
            """
        },
        "svc/res.py:4:39",
        "handler must name a function, not a lambda",
        "defined with 'def'",
    ),
    "cron schedule that does not parse": (
        {
            "svc/res.py": 'from skyrig import CronJob\ndef f(): ...\nCronJob("c", schedule="61 * * * *", endpoint=f)\n'
        },
        "svc/res.py:3:23",
        "invalid cron schedule '61 * * * *'",
        "five fields",
    ),
    "cron schedule with six fields": (
        {
            "svc/res.py": 'from skyrig import CronJob\ndef f(): ...\nCronJob("c", schedule="0 0 3 * * *", endpoint=f)\n'
        },
        "svc/res.py:3:23",
        "write five fields",
        None,
    ),
    "cron every that does not divide a day": (
        {"svc/res.py": 'from skyrig import CronJob\ndef f(): ...\nCronJob("c", every="7m", endpoint=f)\n'},
        "svc/res.py:3:20",
        "every='7m' must be whole minutes from 1m to 24h that divide 24h",
        None,
    ),
    "cron with both schedule and every": (
        {
            "svc/res.py": 'from skyrig import CronJob\ndef f(): ...\nCronJob("c", every="1h", schedule="0 * * * *", endpoint=f)\n'
        },
        "svc/res.py:3:1",
        "give exactly one of schedule= and every=",
        None,
    ),
    "duration that does not parse": (
        {
            "svc/res.py": """
                from skyrig import Subscription, Topic
                from .models import Event
                events = Topic("events", Event)
                def handle(e): ...
                Subscription(events, "audit", handler=handle, ack_deadline="30 seconds")
            """
        },
        "svc/res.py:5:60",
        "ack_deadline: invalid duration '30 seconds'",
        'like "30s"',
    ),
    "duration out of range": (
        {
            "svc/res.py": """
                from skyrig import Subscription, Topic
                from .models import Event
                events = Topic("events", Event)
                def handle(e): ...
                Subscription(events, "audit", handler=handle, ack_deadline="0s")
            """
        },
        "svc/res.py:5:60",
        "ack_deadline: '0s' is out of range: must be between 1s and 10m",
        None,
    ),
    "ordering attribute that is not a field": (
        {
            "svc/res.py": """
                from skyrig import Topic
                from .models import Event
                events = Topic("events", Event, ordering_attribute="customer_id")
            """
        },
        "svc/res.py:3:52",
        "ordering_attribute 'customer_id' is not a field of Event",
        "Event has the fields: order_id, customer",
    ),
    "unknown eviction policy": (
        {"svc/res.py": 'from skyrig import CacheCluster\nc = CacheCluster("c", eviction_policy="lru")\n'},
        "svc/res.py:2:39",
        "eviction_policy: Input should be 'noeviction', 'allkeys-lru'",
        None,
    ),
    "keyspace on something that is not a cache cluster": (
        {"svc/res.py": 'from skyrig import Bucket\nb = Bucket("b")\nk = b.keyspace("k/{id}", value=str)\n'},
        "svc/res.py:3:5",
        "keyspace() is called on 'b', which is not a CacheCluster",
        None,
    ),
    "keyspace pattern that does not parse": (
        {
            "svc/res.py": 'from skyrig import CacheCluster\nc = CacheCluster("c")\nk = c.keyspace("k/{id", value=str)\n'
        },
        "svc/res.py:3:16",
        "invalid keyspace pattern 'k/{id'",
        None,
    ),
    "resource outside any service": (
        {"shared/keys.py": 'from skyrig import Secret\n\nkey = Secret("shared-key")\n'},
        "shared/keys.py:3:7",
        "Secret 'shared-key' is declared outside any service",
        "declare a Service in this package",
    ),
    "two services in one package": (
        {"svc/second.py": 'from skyrig import Service\nother = Service("other", app="svc.api:app")\n'},
        "svc/second.py:2:9",
        "package 'svc' declares a second service",
        "first is declared at svc/__init__.py:3:11",
    ),
    "service app in no module": (
        {"web/__init__.py": 'from skyrig import Service\nweb = Service("web", app="web.server:app")\n'},
        "web/__init__.py:2:26",
        "app module 'web.server' is not a module of this app",
        None,
    ),
    "syntax error": (
        {"svc/broken.py": "def broken(:\n    pass\n"},
        "svc/broken.py:1:12",
        "syntax error",
        "fix the syntax",
    ),
    "migrations folder that does not exist": (
        {"svc/db.py": 'from skyrig import SQLDatabase\ndb = SQLDatabase("db", migrations="./migrations")\n'},
        "svc/db.py:2:35",
        "migrations folder './migrations' does not exist",
        "0001_create_tables.up.sql",
    ),
    "migration file named wrongly": (
        {
            "svc/db.py": 'from skyrig import SQLDatabase\ndb = SQLDatabase("db", migrations="./sql")\n',
            "svc/sql/0001_init.up.sql": "CREATE TABLE t (id int);\n",
            "svc/sql/create_more.sql": "CREATE TABLE u (id int);\n",
        },
        "svc/sql/create_more.sql:1:1",
        "migration file 'create_more.sql' is not named NNNN_name.up.sql",
        None,
    ),
    "handler in another service": (
        {
            "svc/res.py": 'from skyrig import Topic\nfrom .models import Event\nevents = Topic("events", Event)\n',
            "other/__init__.py": 'from skyrig import Service\nservice = Service("other", app="other.api:app")\n',
            "other/api.py": "app = None\n",
            "other/subs.py": (
                "from skyrig import Subscription\nfrom svc.res import events\nfrom svc.api import handle\n"
                'Subscription(events, "audit", handler=handle)\n'
            ),
        },
        "other/subs.py:4:39",
        "handler 'svc.api:handle' belongs to service 'svc', not to 'other'",
        None,
    ),
    "cache used by another service": (
        {
            "svc/cache.py": 'from skyrig import CacheCluster\nc = CacheCluster("c")\nk = c.keyspace("k/{id}", value=str)\n',
            "other/__init__.py": 'from skyrig import Service\nservice = Service("other", app="other.api:app")\n',
            "other/api.py": "from svc.cache import k\napp = None\n\ndef peek():\n    return k.get('1')\n",
        },
        "other/api.py:5:12",
        "service 'other' uses cache cluster 'c' of service 'svc'",
        "private to its service",
    ),
}


def _write(write_app, extra):
    # "handler in another service" needs a function in svc/api.py
    files = {**SERVICE, **extra}
    if "other/subs.py" in extra:
        files["svc/api.py"] = "app = object()\n\ndef handle(event):\n    pass\n"
    return write_app(files)


@pytest.mark.parametrize("case", sorted(CASES))
def test_bad_declaration_is_reported_with_place_message_and_hint(case, write_app, run):
    files, where, message, hint = CASES[case]
    root = _write(write_app, files)

    result = run("model", str(root), "--json")

    assert result.code == 1, result
    assert result.out == "", "nothing but the errors is printed"
    first = result.err.splitlines()[0]
    assert first.startswith(f"{where}: error: "), result.err
    assert message in first, result.err
    if hint:
        assert "hint: " in result.err and hint in result.err, result.err
    assert result.err.rstrip().endswith("nothing was changed")
    assert "Traceback" not in result.err


def test_every_error_is_reported_in_one_run_in_file_order(write_app, run):
    root = write_app(
        {
            **SERVICE,
            "svc/a.py": 'from skyrig import Bucket\nx = Bucket("Bad Name")\ny = Bucket("ok", public=1)\n',
            "svc/b.py": "def oops(:\n",
            "lonely/c.py": 'from skyrig import Secret\ns = Secret("s")\n',
        }
    )

    result = run("model", str(root))

    errors = [line for line in result.err.splitlines() if ": error: " in line]
    assert [e.split(": error: ")[0] for e in errors] == [
        "lonely/c.py:2:5",
        "svc/a.py:2:12",
        "svc/a.py:3:25",
        "svc/b.py:1:10",
    ]
    assert "found 4 errors in app code" in result.err
    assert result.code == 1


def test_user_errors_never_show_a_traceback(write_app):
    root = write_app({**SERVICE, "svc/a.py": 'from skyrig import Bucket\nx = Bucket("Bad Name")\n'})
    process = subprocess.run(
        [sys.executable, "-m", "skyrig", "model", str(root)], capture_output=True, text=True, check=False
    )
    assert process.returncode == 1
    assert "svc/a.py:2:12: error: Bucket 'Bad Name': invalid name" in process.stderr
    assert "Traceback" not in process.stderr


def test_runtime_declaration_rejects_what_the_parser_rejects():
    """The same spec validates both ways: importing the app fails on the value the parser refuses."""
    from skyrig import Bucket, DeclarationError, Secret

    with pytest.raises(DeclarationError, match="public: Input should be a valid boolean"):
        Bucket("files", public="yes")
    with pytest.raises(DeclarationError, match="invalid name 'My_Key'"):
        Secret("My_Key")

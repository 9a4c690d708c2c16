"""What a topic's message type and a keyspace's value type may be, checked statically (issue 12 §6).

A message type is a pydantic model or a dataclass; a keyspace's value type is one of those or a JSON
type (``str``, ``int``, ``float``, ``bool``, ``list``, ``dict``). The parser refuses what it can see is
none of them, with file:line:col and a hint, and accepts what it cannot see through (a class from an
installed library); the constructors refuse the same types when the app is imported.
"""

from __future__ import annotations

import dataclasses
import enum
import json
from typing import TypedDict

import pytest
from pydantic import BaseModel

from skyrig import CacheCluster, DeclarationError, Topic

SERVICE = {
    "svc/__init__.py": 'from skyrig import Service\nservice = Service("svc", app="svc.api:app")\n',
    "svc/api.py": "app = object()\n",
}

# the module svc/events.py, "line:col" of the bad reference, message fragment, hint fragment
REFUSED = {
    "a builtin dict": (
        'from skyrig import Topic\nt = Topic("t", dict)\n',
        "2:16",
        "Topic 't': message_type 'dict' is the builtin type dict, not a pydantic model or a dataclass",
        "pydantic.BaseModel",
    ),
    "a builtin int": (
        'from skyrig import Topic\nt = Topic("t", int)\n',
        "2:16",
        "Topic 't': message_type 'int' is the builtin type int, not a pydantic model or a dataclass",
        "@dataclass",
    ),
    "a plain class": (
        'from skyrig import Topic\n\nclass Event:\n    id: int\n\nt = Topic("t", Event)\n',
        "6:16",
        "Topic 't': message_type 'Event' is a plain class, not a pydantic model or a dataclass",
        "derive Event from pydantic.BaseModel, or decorate it with @dataclass",
    ),
    "a class deriving from a plain class": (
        "from skyrig import Topic\n\nclass Base(object):\n    pass\n\n"
        'class Event(Base):\n    id: int\n\nt = Topic("t", message_type=Event)\n',
        "9:29",
        "message_type 'Event' is a plain class",
        None,
    ),
    "a TypedDict": (
        "from typing import TypedDict\nfrom skyrig import Topic\n\nclass Event(TypedDict):\n    id: int\n\n"
        't = Topic("t", Event)\n',
        "7:16",
        "message_type 'Event' is a plain class",
        None,
    ),
    "an enum": (
        "import enum\nfrom skyrig import Topic\n\nclass Colour(enum.Enum):\n    RED = 1\n\n"
        't = Topic("t", Colour)\n',
        "7:16",
        "message_type 'Colour' is a plain class",
        None,
    ),
    "a type of the standard library": (
        'from datetime import datetime\nfrom skyrig import Topic\nt = Topic("t", datetime)\n',
        "3:16",
        "message_type 'datetime' is datetime.datetime from the standard library, not a pydantic model or a "
        "dataclass",
        None,
    ),
    "a function": (
        'from skyrig import Topic\n\ndef make():\n    pass\n\nt = Topic("t", make)\n',
        "6:16",
        "message_type 'make' is a function, not a class",
        None,
    ),
    "a keyspace value of a plain class": (
        'from skyrig import CacheCluster\n\nclass Cart:\n    pass\n\nc = CacheCluster("c")\n'
        'k = c.keyspace("cart/{id}", value=Cart)\n',
        "7:35",
        "keyspace 'cart/{id}': value 'Cart' is a plain class, not a pydantic model, a dataclass or a JSON "
        "type (str, int, float, bool, list, dict)",
        None,
    ),
    "a keyspace value of bytes": (
        'from skyrig import CacheCluster\nc = CacheCluster("c")\nk = c.keyspace("b/{id}", value=bytes)\n',
        "3:32",
        "value 'bytes' is the builtin type bytes",
        None,
    ),
}

ACCEPTED = {
    "a pydantic model": "from pydantic import BaseModel\n\nclass Event(BaseModel):\n    id: int\n",
    "a pydantic model, dotted": "import pydantic\n\nclass Event(pydantic.BaseModel):\n    id: int\n",
    "a dataclass": "from dataclasses import dataclass\n\n@dataclass\nclass Event:\n    id: int\n",
    "a dataclass with options": (
        "import dataclasses\n\n@dataclasses.dataclass(frozen=True)\nclass Event:\n    id: int\n"
    ),
    "a pydantic dataclass": (
        "from pydantic.dataclasses import dataclass\n\n@dataclass\nclass Event:\n    id: int\n"
    ),
    "a subclass of a model of another module": (
        "from svc.base import Base\n\nclass Event(Base):\n    id: int\n"
    ),
    "a subclass of a dataclass": (
        "from dataclasses import dataclass\n\n@dataclass\nclass Base:\n    id: int\n\n"
        "class Event(Base):\n    pass\n"
    ),
    "a class of an installed library": "from somelib.events import Event\n",
    "a class deriving from an installed library's base": (
        "from somelib import Record\n\nclass Event(Record):\n    id: int\n"
    ),
    "a class made by a call": "from somelib import make_model\n\nEvent = make_model('Event')\n",
}


def _write(write_app, module: str):
    files = {
        **SERVICE,
        "svc/base.py": "from pydantic import BaseModel\n\nclass Base(BaseModel):\n    pass\n",
        "svc/events.py": module,
    }
    return write_app(files)


@pytest.mark.parametrize("case", sorted(REFUSED))
def test_a_type_that_is_no_model_nor_dataclass_is_refused_at_its_place(case, write_app, run):
    module, where, message, hint = REFUSED[case]
    root = _write(write_app, module)

    result = run("model", str(root), "--json")

    assert result.code == 1, result
    first = result.err.splitlines()[0]
    assert first.startswith(f"svc/events.py:{where}: error: "), result.err
    assert message in first, result.err
    if hint:
        assert hint in result.err.splitlines()[1], result.err
    assert "Traceback" not in result.err


@pytest.mark.parametrize("case", sorted(ACCEPTED))
def test_a_model_a_dataclass_or_a_type_the_parser_cannot_see_is_accepted(case, write_app, run):
    module = ACCEPTED[case] + '\nfrom skyrig import Topic\nt = Topic("t", Event)\n'
    root = _write(write_app, module)

    result = run("model", str(root), "--json")

    assert result.code == 0, result.err
    (topic,) = json.loads(result.out)["resources"]
    assert topic["message_type"].endswith(":Event")


@pytest.mark.parametrize("value", ["str", "int", "float", "bool", "list", "dict"])
def test_a_keyspace_may_hold_a_json_type(value, write_app, run):
    module = (
        f'from skyrig import CacheCluster\nc = CacheCluster("c")\nk = c.keyspace("k/{{id}}", value={value})\n'
    )
    root = _write(write_app, module)

    result = run("model", str(root), "--json")

    assert result.code == 0, result.err
    (cluster,) = json.loads(result.out)["resources"]
    assert cluster["keyspaces"][0]["value_type"] == f"builtins:{value}"


class Plain:
    id: int


class Movie(TypedDict):
    title: str


class Colour(enum.Enum):
    RED = 1


class Event(BaseModel):
    id: int


@dataclasses.dataclass
class Shipped:
    id: int


@pytest.mark.parametrize("message_type", [dict, int, str, Plain, Movie, Colour])
def test_the_topic_constructor_refuses_what_the_parser_refuses(message_type):
    with pytest.raises(DeclarationError, match="not a pydantic model or a dataclass"):
        Topic("t", message_type)


@pytest.mark.parametrize("value", [bytes, Plain, Colour])
def test_the_keyspace_constructor_refuses_what_the_parser_refuses(value):
    with pytest.raises(DeclarationError, match="not a pydantic model, a dataclass or a JSON type"):
        CacheCluster("c").keyspace("k/{id}", value=value)


def test_the_constructors_accept_models_dataclasses_and_json_types():
    assert Topic("a", Event).message_type is Event
    assert Topic("b", Shipped).message_type is Shipped
    for value in (Event, Shipped, str, int, float, bool, list, dict):
        assert CacheCluster("c").keyspace("k/{id}", value=value).value_type is value

"""AMQP encoding details of the FAKE broker: SAS tokens, batches, annotations, entity addresses."""

from __future__ import annotations

import base64
import hashlib
import hmac
import time
from typing import Any
from urllib.parse import parse_qs, quote_plus

from proton import Array, Data, Message, symbol, timestamp, ulong

from .store import StoredMessage

DATETIMEOFFSET_EPOCH = 621355968000000000  # .NET ticks at the Unix epoch (session locked-until-utc)
_DATA_SECTION = 0x75
_HEADER_SECTION = 0x70


def sas_namespace(token: str, keys: dict[str, tuple[str, ...]], now: float | None = None) -> str | None:
    """The namespace one of whose keys signed this SharedAccessSignature (None if none or expired)."""
    if not token.startswith("SharedAccessSignature "):
        return None
    fields = {k: v[0] for k, v in parse_qs(token[len("SharedAccessSignature ") :]).items()}
    try:
        audience, signature, expiry = fields["sr"], fields["sig"], int(fields["se"])
    except (KeyError, ValueError):
        return None
    if expiry < (now or time.time()):
        return None
    signed = f"{quote_plus(audience)}\n{expiry}".encode()
    for namespace, candidates in keys.items():
        for key in candidates:
            expected = base64.b64encode(hmac.new(key.encode(), signed, hashlib.sha256).digest()).decode()
            if key and hmac.compare_digest(expected, signature):
                return namespace
    return None


def decode_messages(raw: bytes) -> list[Message]:
    """The messages of one transfer: itself, or each message of a batch.

    Proton does not expose a transfer's message-format, so a batch (format 0x80013700, what the client
    sends for a list or a ServiceBusMessageBatch) is told by its body: data sections that each hold a
    whole encoded AMQP message.
    """
    outer = Message()
    outer.decode(raw)
    inner = _batched(raw)
    return inner if inner else [outer]


def _batched(raw: bytes) -> list[Message] | None:
    sections, rest = [], bytes(raw)
    while rest:
        data = Data()
        consumed = data.decode(rest)
        rest = rest[consumed:]
        data.rewind()
        data.next()
        described = data.get_py_described()
        if int(described.descriptor) == _DATA_SECTION:
            sections.append(bytes(described.value))
    if not sections or not all(len(s) > 3 and s[:2] == b"\x00S" and 0x70 <= s[2] <= 0x78 for s in sections):
        return None
    messages = []
    for section in sections:
        message = Message()
        try:
            message.decode(section)
        except Exception:  # a body that merely starts like a message is a body
            return None
        messages.append(message)
    return messages


def flat(value: Any) -> list[Any]:
    """An AMQP array or list as a Python list."""
    if isinstance(value, Array):
        return list(value.elements)
    return list(value or [])


def delivered(stored: StoredMessage, *, locked: bool, state: int | None = None) -> bytes:
    """The message as the broker hands it out, with Service Bus' annotations."""
    m = Message()
    m.decode(stored.message.encode())
    m.delivery_count = stored.delivery_count
    annotations = dict(m.annotations or {})
    annotations[symbol("x-opt-sequence-number")] = stored.seq
    annotations[symbol("x-opt-enqueued-time")] = timestamp(int(stored.enqueued_at * 1000))
    if locked and stored.lock_token is not None:
        annotations[symbol("x-opt-locked-until")] = timestamp(int(stored.locked_until * 1000))
        annotations[symbol("x-opt-lock-token")] = stored.lock_token
    if state is not None:
        annotations[symbol("x-opt-message-state")] = state
    m.annotations = annotations
    return _with_header(bytes(m.encode()), m)


def _with_header(encoded: bytes, m: Message) -> bytes:
    """Re-encode the header section with every field present.

    Proton leaves out a header whose fields are defaults, but Service Bus always sends delivery-count
    (the client reads a missing one as None).
    """
    data = Data()
    consumed = data.decode(encoded)
    data.rewind()
    data.next()
    if int(data.get_py_described().descriptor) == _HEADER_SECTION:
        encoded = encoded[consumed:]
    header = Data()
    header.put_described()
    header.enter()
    header.put_ulong(_HEADER_SECTION)
    header.put_list()
    header.enter()
    header.put_bool(bool(m.durable))
    header.put_ubyte(m.priority)
    if m.ttl:
        header.put_uint(int(m.ttl * 1000))
    else:
        header.put_null()
    header.put_bool(bool(m.first_acquirer))
    header.put_uint(m.delivery_count)
    header.exit()
    header.exit()
    return bytes(header.encode()) + encoded


def ticks(epoch_seconds: float) -> ulong:
    """.NET ticks (what Service Bus sends as a session's locked-until-utc)."""
    return ulong(DATETIMEOFFSET_EPOCH + int(epoch_seconds * 10_000_000))


def parse_entity(address: str) -> tuple[str, str | None, bool]:
    """(topic, subscription or None, dead-letter queue?) of an entity address, with or without its URI."""
    if "://" in address:
        address = address.split("://", 1)[1].split("/", 1)[1] if "/" in address.split("://", 1)[1] else ""
    parts = [p for p in address.split("/") if p]
    dead_letter = bool(parts) and parts[-1].lower() == "$deadletterqueue"
    if dead_letter:
        parts = parts[:-1]
    if len(parts) == 3 and parts[1].lower() == "subscriptions":
        return parts[0], parts[2], dead_letter
    if len(parts) == 1:
        return parts[0], None, dead_letter
    raise ValueError(f"not a topic or subscription address: {address!r}")

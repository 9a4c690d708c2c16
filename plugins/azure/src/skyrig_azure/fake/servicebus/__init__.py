"""A FAKE Azure Service Bus broker, for tests: the real azure-servicebus client talks AMQP 1.0 to it.

This is NOT Azure Service Bus. Microsoft's emulator is Docker-only, so this package serves the subset of
Service Bus that skyrig-azure uses, on python-qpid-proton, in a thread, on 127.0.0.1 (plain AMQP, SASL
ANONYMOUS: how the client speaks to an emulator when the connection string says
``UseDevelopmentEmulator=true``; it then keeps the port of ``Endpoint=sb://127.0.0.1:PORT``).

Interfaces::

    with FakeServiceBus() as bus:                  # listens on a free port; stops when the block ends
        bus.address                                 # "127.0.0.1:PORT"
        bus.connection_string("ns1")   # Endpoint=sb://127.0.0.1:PORT;...;UseDevelopmentEmulator=true
        bus.access_keys("ns1")                      # ARM listKeys: keys, connection strings
        bus.regenerate_key("ns1", "SecondaryKey")   # ARM regenerateKeys
        bus.ensure_topic("ns1", "orders", {"requiresDuplicateDetection": True})  # SBTopic properties
        bus.ensure_subscription("ns1", "orders", "billing", {"lockDuration": "PT30S"})  # SBSubscription
        bus.delete_subscription("ns1", "orders", "billing"); bus.delete_topic("ns1", "orders")
        bus.delete_namespace("ns1")
        bus.counts("ns1", "orders", "billing")     # {"active": n, "deferred": n, "dead_lettered": n}
        bus.scheduled_count("ns1", "orders"); bus.topics("ns1")   # {topic: [subscriptions]}

With ``SKYRIG_FAKE_SERVICEBUS_LOG=FILE`` the broker appends its debug log (deliveries with their lock
tokens, settlements, lock expiries) to FILE.

A namespace is made by its first mention. ``ensure_*`` create or update in place (messages stay) and
take ARM's camelCase ``properties``: topics read defaultMessageTimeToLive, requiresDuplicateDetection and
duplicateDetectionHistoryTimeWindow; subscriptions read lockDuration, maxDeliveryCount, requiresSession,
defaultMessageTimeToLive and deadLetteringOnMessageExpiration (ISO 8601 durations; Service Bus' defaults
when absent; other keys are ignored, validating them is the ARM fake's job). ``ensure_subscription`` on a
missing topic raises ``BrokerError`` (not-found). Deletes of absent entities are no-ops.

Several namespaces share one broker: every connection string names the same host:port, and the broker
tells namespaces apart by the key that signed the SAS token the client puts on ``$cbs`` (each namespace
has its own random primary and secondary key). As Service Bus does, the put-token is answered 401 when no
key signed the token (or it expired) and 404 when its audience names a topic or subscription that does
not exist; azure-servicebus reports both as ``ServiceBusAuthenticationError`` (the status code is on
``err.inner_exception.status_code``), NOT ``MessagingEntityNotFoundError``. An entity deleted under an
open link answers ``amqp:not-found`` (the client raises ``MessagingEntityNotFoundError``).

Enforced through the real client: topic fan-out to every subscription (a topic without subscriptions
drops messages); peek lock with the subscription's lockDuration: complete, abandon (delivery count +1),
release (available again at once, delivery count unchanged; applied when the client settles it first, as
it releases what reaches its link outside a receive call or is left unreturned at close),
dead-letter (reason/description as the DeadLetterReason/DeadLetterErrorDescription application
properties), defer and receive-by-sequence-number, renew-lock; lock expiry -> redelivery with delivery
count +1 and the old lock lost (MessageLockLostError); maxDeliveryCount failed deliveries -> the
subscription's dead-letter queue (``sub_queue=DEAD_LETTER``, reason MaxDeliveryCountExceeded);
receive-and-delete; sessions (requiresSession: only session receivers, named or NEXT_AVAILABLE, which
waits up to the client's max_wait_time then fails with com.microsoft:timeout; one receiver per session
(SessionCannotBeLockedError); FIFO within a session; a closed session receiver's unsettled messages are
offered again with delivery count +1; renew-session-lock; get/set-session-state); duplicate detection by
message id within the window; scheduled messages (``scheduled_enqueue_time_utc`` or schedule-message,
enqueued at their time with that enqueued time) and cancel-scheduled-message; time to live (the smaller
of the message's and the entity's) with deadLetteringOnMessageExpiration (reason TTLExpiredException);
peek-message (locks nothing); message sections round-trip (application properties, content type,
correlation id, message id, session id, subject, body); x-opt-sequence-number, x-opt-enqueued-time,
x-opt-locked-until and the header's delivery-count set as Service Bus sets them; lock tokens are the
delivery tags (the GUID's .NET byte order, as the client reads them).

Faked or left out, and why:
- queues, rules/filters (every subscription takes every message), sending to a subscription,
  transactions, auto-forwarding, partitioning, message size limits and quotas, entity status: skyrig uses
  none of them; the management HTTP API (``ServiceBusAdministrationClient``): ARM is faked elsewhere;
  TLS and Entra ID tokens: the emulator mode is plain AMQP with SAS. Unsupported management operations
  answer ``amqp:not-implemented``.
- proton does not expose a transfer's message-format, so a batch (format 0x80013700) is recognised by
  its body: data sections that each hold a whole encoded AMQP message. A single message whose body is
  itself an encoded AMQP message would be taken for a batch.
- time is real time, checked every 50 ms; sequence numbers are per topic (shared by its subscriptions);
  a session's messages carry the session's locked-until and are freed with it; non-session message locks
  outlive their receiver until they expire, as in Service Bus. Durations below Service Bus' minimums
  (lockDuration PT1S) are accepted, which keeps tests short.
- client quirks seen while testing (not the broker's): ``time_to_live`` is sent in whole seconds; each
  receiver's close costs the client up to ~1.4 s (a drain wait and a keep-alive thread join) and a
  sender's ~0.5 s unless opened with ``keep_alive=0``.
"""

from .broker import POLICY, FakeServiceBus
from .config import SubscriptionConfig, TopicConfig, parse_duration
from .store import BrokerError

__all__ = ["POLICY", "BrokerError", "FakeServiceBus", "SubscriptionConfig", "TopicConfig", "parse_duration"]

"""A FAKE Azure Service Bus broker, for tests: the real azure-servicebus client talks AMQP 1.0 to it.

This is NOT Azure Service Bus. Microsoft's emulator is Docker-only, so this package serves the subset of
Service Bus that skyrig-azure uses, on python-qpid-proton, in a thread, on 127.0.0.1 (plain AMQP, SASL
ANONYMOUS, as the client speaks to an emulator when the connection string says
``UseDevelopmentEmulator=true``).

Interfaces::

    with FakeServiceBus() as bus:
        bus.address                                 # "127.0.0.1:PORT"
        conn = bus.connection_string("ns1")        # Endpoint=sb://127.0.0.1:PORT;...;UseDevelopmentEmulator=true
        bus.key("ns1")                              # the namespace's SAS key (what ARM's listKeys answers)
        bus.ensure_topic("ns1", "orders", {"requiresDuplicateDetection": True})  # SBTopic properties
        bus.ensure_subscription("ns1", "orders", "billing", {"lockDuration": "PT30S", ...})  # SBSubscription
        bus.delete_subscription("ns1", "orders", "billing"); bus.delete_topic("ns1", "orders")
        bus.delete_namespace("ns1")
        bus.counts("ns1", "orders", "billing")     # {"active": n, "deferred": n, "dead_lettered": n}
        bus.scheduled_count("ns1", "orders"); bus.topics("ns1")

Several namespaces share one broker: each has its own random key, and the broker tells them apart by the
key that signed the SAS token the client puts on ``$cbs`` (a token signed by no namespace's key is refused
with 401, so a wrong key fails as it does on Azure). Every connection string names the same host:port.

Enforced through the real client: ``$cbs`` put-token (SAS signature and expiry checked); topic fan-out
to every subscription; missing topic/subscription -> ``amqp:not-found`` (MessagingEntityNotFoundError);
peek lock with the subscription's lockDuration: complete, abandon (delivery count +1), dead-letter
(reason/description as the DeadLetterReason/DeadLetterErrorDescription application properties), defer
and receive-by-sequence-number, renew-lock; lock expiry -> redelivery with delivery count +1;
maxDeliveryCount reached -> the subscription's dead-letter queue (``$DeadLetterQueue``, reason
MaxDeliveryCountExceeded); receive-and-delete; sessions (requiresSession: only session receivers,
named or next available, one receiver per session, FIFO within a session, renew-session-lock,
get/set-session-state); duplicate detection by message id within duplicateDetectionHistoryTimeWindow;
scheduled messages (``x-opt-scheduled-enqueue-time`` or schedule-message) and their cancellation;
time to live (message or defaultMessageTimeToLive, the smaller) with deadLetteringOnMessageExpiration;
peek-message; message properties round-trip untouched; annotations x-opt-sequence-number,
x-opt-enqueued-time, x-opt-locked-until and the header's delivery-count as Service Bus sets them;
lock tokens are the delivery tags (the GUID's .NET byte order, as the client reads them).

Not served (a client using them gets ``amqp:not-implemented`` or a refused link): queues (skyrig uses
topics only), rules/filters (every subscription takes every message), sending to a subscription,
transactions, auto-forwarding, partitioning, message size limits and quotas, the management HTTP API
(``ServiceBusAdministrationClient``; ARM is faked elsewhere), TLS and AAD tokens (only SAS). Time is
real time: lock expiry and schedules are checked every 50 ms. Sequence numbers are per topic. A session's
messages carry the session's locked-until; session locks expire after lockDuration unless renewed.
"""

from .broker import POLICY, FakeServiceBus
from .config import SubscriptionConfig, TopicConfig, parse_duration

__all__ = ["POLICY", "FakeServiceBus", "SubscriptionConfig", "TopicConfig", "parse_duration"]

"""A FAKE Kubernetes API server, for the tests of skyrig-kubernetes, skyrig-eks and skyrig-gke.

This is not Kubernetes: no API server can run on the machines the tests run on, so this is a strict
stand-in for one, in the test process. The provider's runtime never imports it.

Use it::

    from skyrig_kubernetes.fake import FakeKubernetes

    with FakeKubernetes(version="1.37", rollout_seconds=0.3) as cluster:
        api = kubernetes.client.AppsV1Api(cluster.api_client())   # or cluster.kubeconfig()
        dynamic = DynamicClient(cluster.api_client(), cache_file=...)  # its own file: ports are recycled
        ...
        cluster.get("apps/v1", "Deployment", "shop", "web")        # what is stored (a copy)
        cluster.edit("apps/v1", "Deployment", "shop", "web", {"spec": {"replicas": 5}})   # kubectl edit
        cluster.calls.count("apply", "/apis/apps/v1/namespaces/shop/deployments")
        cluster.inject_error("patch", "/apis/apps/v1", 500)

What it implements, as the real API server does:

- Discovery (``/version``, ``/api``, ``/api/v1``, ``/apis``, ``/apis/{group}/{version}``) listing exactly
  what it serves: v1 Namespace, ServiceAccount, ConfigMap, Secret, Service, Pod and Event (read and
  delete: the fake makes them); apps/v1 Deployment, ReplicaSet (read and delete); batch/v1 Job; autoscaling/v2
  HorizontalPodAutoscaler; policy/v1 PodDisruptionBudget; networking.k8s.io/v1 Ingress, IngressClass; the
  ``status`` subresources and a Deployment's ``scale``. The official client's DynamicClient works on it.
- get, list (``labelSelector`` equality- and set-based, ``fieldSelector`` on name and namespace), create,
  replace (a stale ``resourceVersion`` is 409 Conflict), JSON merge patch, strategic merge patch (lists
  merged by the schema's merge keys: containers and env by name, ports by port ...), JSON patch,
  server-side apply, delete (``propagationPolicy`` Orphan, Background, Foreground; a Job orphans by
  default, as batch/v1 does), deletecollection, ``dryRun=All``, and watch (chunked events: ADDED,
  MODIFIED, DELETED, from a ``resourceVersion`` or from now; :mod:`skyrig_kubernetes.fake.watch`).
  Unknown paths are 404 and verbs a resource does not serve 405, as ``Status`` objects; no
  ``Authorization: Bearer <token>`` is 401. Plain HTTP, or HTTPS with ``tls=True`` (a self-signed
  certificate the kubeconfig carries): kubectl works then, with ``--validate=false``.
- Every written object is validated against kubernetes-validate's STRICT OpenAPI schema of the fake's
  Kubernetes version (an unknown field is 400, as a strict decoding error; a missing required field 422),
  and against the server's own rules: names (DNS-1123 subdomain, label, or DNS-1035 for Services), label
  syntax, the namespace must exist (404) and not be terminating (403), a Deployment's selector is
  non-empty, matches its template and is immutable, a Job's template is immutable, a Service's clusterIP is
  immutable, restart policies, container names and images, apiVersion/kind and name must match the URL.
- Server-side apply: ``fieldManager`` required; apply creates; ``metadata.managedFields`` tracked per
  manager and operation (Apply, Update) in FieldsV1 with ``k:{...}`` keys for associative lists; a field
  another manager owns with another value is 409 Conflict with one ``details.causes[].field`` per field
  unless ``force=true``; the same value is shared; what an applier stops applying is removed unless
  someone else owns it. A re-apply that changes nothing changes no ``resourceVersion``. Creates, replaces
  and patches are Updates of their ``fieldManager`` (or the user agent's product, as the server derives
  it; :meth:`FakeKubernetes.edit` records ``kubectl-edit``).
- Server metadata and defaults clients rely on: uid, creationTimestamp, a global resourceVersion counter,
  ``generation`` bumped on spec changes, a Deployment's strategy, revisionHistoryLimit and
  progressDeadlineSeconds, a Service's clusterIP and type, containers' imagePullPolicy and ports'
  protocol, an HPA's behaviour, a Job's selector and labels, a Namespace's phase.
- Controllers in a background thread (:mod:`skyrig_kubernetes.fake.controllers`): Deployments roll out
  through ReplicaSets and Pods that become Ready ``rollout_seconds`` after they are made, in the steps
  ``maxSurge`` and ``maxUnavailable`` allow (so a rollout takes a multiple of it); an image tagged
  ``pull-error`` or ``crash-loop`` never becomes ready (the Pods say why), the old version keeps serving,
  and after the fake's deadline (``rollout_seconds * 10`` for the default progressDeadlineSeconds of 600,
  proportionally for others) the Deployment reports ProgressDeadlineExceeded; Jobs complete after
  ``rollout_seconds`` (or fail with BackoffLimitExceeded); HPAs and PDBs get a status; a deleted Namespace
  is Terminating for ``rollout_seconds``, then gone with its contents; every namespace gets its
  ``default`` ServiceAccount. Their writes are recorded in managedFields as ``kube-controller-manager``'s
  and the ``kubelet``'s Updates, and they record the Events a real cluster's would (ScalingReplicaSet,
  SuccessfulCreate, Scheduled, Started, Failed and BackOff for images that do not start, Completed,
  BackoffLimitExceeded). Pods: :mod:`skyrig_kubernetes.fake.kubelet`.

What it does not do, or does otherwise:

- lists page with ``limit`` and ``continue``, but from the current state, not a snapshot at the first
  page's resourceVersion; watches keep the last 2,000 events (older resourceVersions are 410 Expired,
  and so is any from before :meth:`FakeKubernetes.reset`) and send no bookmarks;
- the real server's default ``fieldValidation`` is Warn, the fake's is Strict, so an unknown field is an
  error unless a request asks for Ignore or Warn (which drop it; no Warning header);
- admission webhooks, RBAC (one token can do everything), aggregated discovery, OpenAPI documents (so
  kubectl's client-side validation cannot run), server-side table printing (kubectl shows names and ages
  only), protobuf (415 UnsupportedMediaType: kubectl's imperative commands, ``create`` and ``scale``,
  send it; ``apply --server-side`` does not), CRDs and the kinds not listed above;
- running containers, scheduling (every Pod is on ``fake-node``; IPs are made up), metrics (HPAs never
  scale);
- grace periods and finalizers (but a namespace's): deletion is immediate, and Foreground propagation
  deletes the dependents at once.
"""

from __future__ import annotations

from skyrig_kubernetes.fake.core import Call, CallLog, FakeKubernetes
from skyrig_kubernetes.fake.errors import ApiError

__all__ = ["ApiError", "Call", "CallLog", "FakeKubernetes"]

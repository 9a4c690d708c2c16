"""What skyrig's Kubernetes compute providers (skyrig-eks, skyrig-gke) share: the workload objects of a
skyrig service, server-side apply with field manager ``skyrig``, and rollouts. Nothing here knows a cloud."""

"""The host (``skyrig-hosted serve``): the shared servers, the host's own state and its HTTP API.

A server application: it may use skyrig's internals; the provider (:mod:`skyrig_hosted`) never imports it.
"""

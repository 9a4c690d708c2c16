"""Name formats the API server enforces, for the FAKE Kubernetes API server (:mod:`skyrig_kubernetes.fake`):
DNS-1123 subdomains and labels, DNS-1035 labels, qualified names (label keys and values), config keys,
with the real server's messages."""

from __future__ import annotations

import re

LABEL = r"[a-z0-9]([-a-z0-9]*[a-z0-9])?"
SUBDOMAIN = rf"{LABEL}(\.{LABEL})*"
DNS1035 = r"[a-z]([-a-z0-9]*[a-z0-9])?"
QUALIFIED = r"([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]"
CONFIG_KEY = r"[-._a-zA-Z0-9]+"

NAME_MESSAGES = {
    "subdomain": (
        SUBDOMAIN,
        253,
        "a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', and "
        "must start and end with an alphanumeric character (e.g. 'example.com', regex used for validation is "
        f"'{SUBDOMAIN}')",
    ),
    "label": (
        LABEL,
        63,
        "a lowercase RFC 1123 label must consist of lower case alphanumeric characters or '-', and must "
        "start and end with an alphanumeric character (e.g. 'my-name',  or '123-abc', regex used for "
        f"validation is '{LABEL}')",
    ),
    "dns1035": (
        DNS1035,
        63,
        "a DNS-1035 label must consist of lower case alphanumeric characters or '-', start with an "
        "alphabetic character, and end with an alphanumeric character (e.g. 'my-name',  or 'abc-123', regex "
        f"used for validation is '{DNS1035}')",
    ),
}


def name_problem(rule: str, name: str) -> str | None:
    """Why ``name`` breaks ``rule`` (``subdomain``, ``label``, ``dns1035``), None when it does not."""
    pattern, limit, message = NAME_MESSAGES[rule]
    if len(name) > limit:
        return f"must be no more than {limit} characters"
    return None if re.fullmatch(pattern, name) else message

"""Cloud SQL Admin v1, FAKE (:mod:`skyrig_gcp.fake`): instances, their databases and users.

Every change is a ``sql#operation`` (PENDING, RUNNING, DONE). An instance is PENDING_CREATE until its insert
is done, then RUNNABLE with ``ipAddresses`` (PRIVATE when it has a private network, PRIMARY when public IP is
on), ``connectionName``, ``serverCaCert``. Checked as Cloud SQL checks: the name (and that a deleted
instance's name is not reused for a week); the tier against the edition (ENTERPRISE_PLUS, the default from
PostgreSQL 16 and MySQL 8.4 on, takes only ``db-perf-optimized-N-*``; PostgreSQL on ENTERPRISE takes only
shared-core and custom tiers; custom tiers: 1 or an even number of vCPUs up to 96, memory a multiple of
256 MB, 0.9 to 6.5 GB per vCPU, at least 3.75 GB); point-in-time recovery only with backups; transaction log
retention (1 to 7 days on ENTERPRISE, 35 on ENTERPRISE_PLUS); some connectivity (public IP, private IP or
PSC); a private network that exists and is peered through Service Networking; ``sslMode`` against the legacy
``requireSsl``; a stale ``settings.settingsVersion`` (412); one operation at a time per instance (409
operationInProgress); deletion protection. Patches merge; ``settingsVersion`` moves on every change.

For mutual TLS as Google's Cloud SQL connectors do it: ``connect.get`` (the server CA, addresses) and
``connect.generateEphemeralCert`` (an RSA public key signed for an hour). The CAs are real (EC keys of the
fake's own): a test can have a real PostgreSQL present :meth:`SqlAdmin.server_identity` and trust
:meth:`SqlAdmin.client_ca`, and so see the handshake a service makes with the instance.
"""

from __future__ import annotations

import hashlib
import re
import time
import uuid
from typing import Any

from skyrig_gcp.fake.apis.base import ApiHandler, Kind, Request, new_etag
from skyrig_gcp.fake.errors import ApiError
from skyrig_gcp.fake.operations import Operation, now_rfc3339, render

SELF_LINK = "https://sqladmin.googleapis.com/v1/"
_NAME = r"[a-z]([-a-z0-9]{0,96}[a-z0-9])?"
_PERF = re.compile(r"^db-perf-optimized-N-(2|4|8|16|32|48|64|80|96|128)$")
_CUSTOM = re.compile(r"^db-custom-(\d+)-(\d+)$")
_SHARED = frozenset({"db-f1-micro", "db-g1-small"})
_PREDEFINED = re.compile(r"^db-n1-(standard|highmem)-(1|2|4|8|16|32|64|96)$")


def invalid_request(message: str, *, status: str = "INVALID_ARGUMENT", http: int | None = None) -> ApiError:
    """Cloud SQL's 400: "Invalid request: ...", reason ``invalid``."""
    return ApiError(status, f"Invalid request: {message}", http=http, reason="invalid")


def _version_number(version: str) -> tuple[str, int]:
    match = re.match(r"^(POSTGRES|MYSQL|SQLSERVER)_(\d+)(?:_(\d+))?", version)
    if not match:
        return "", 0
    major = int(match.group(2))
    minor = int(match.group(3) or 0)
    return match.group(1), major * 10 + minor if match.group(1) == "MYSQL" else major


def default_edition(version: str) -> str:
    """The edition Cloud SQL picks when none is given: ENTERPRISE_PLUS from PostgreSQL 16 and MySQL 8.4 on."""
    engine, number = _version_number(version)
    if (engine == "POSTGRES" and number >= 16) or (engine == "MYSQL" and number >= 84):
        return "ENTERPRISE_PLUS"
    return "ENTERPRISE"


def check_tier(tier: str, edition: str, version: str) -> None:
    """400 for a tier the edition and engine do not take."""
    engine, _ = _version_number(version)
    if edition == "ENTERPRISE_PLUS":
        if not _PERF.match(tier):
            raise invalid_request(
                f"Invalid Tier ({tier}) for (ENTERPRISE_PLUS) Edition. Use a predefined Tier like "
                "db-perf-optimized-N-* instead."
            )
        return
    if _PERF.match(tier):
        raise invalid_request(f"Invalid Tier ({tier}) for ({edition}) Edition.")
    if tier in _SHARED:
        return
    custom = _CUSTOM.match(tier)
    if custom:
        cpus, memory = int(custom.group(1)), int(custom.group(2))
        if (
            not (cpus == 1 or (cpus % 2 == 0 and 2 <= cpus <= 96))
            or memory % 256
            or memory < 3840
            or not 0.9 * 1024 * cpus <= memory <= 6.5 * 1024 * cpus
        ):
            raise invalid_request(
                f"Invalid Tier ({tier}) for ({edition}) Edition: a custom tier needs 1 or an even number of "
                "vCPUs up to 96 and 0.9 to 6.5 GB of memory per vCPU, a multiple of 256 MB, at least 3840 MB."
            )
        return
    if _PREDEFINED.match(tier):
        if engine == "POSTGRES":
            raise invalid_request(
                "Only custom or shared-core instance Billing Tier type allowed for PostgreSQL database."
            )
        return
    raise invalid_request(f"Invalid Tier ({tier}) for ({edition}) Edition.")


class SqlAdmin(ApiHandler):
    """Cloud SQL Admin: instances, databases, users; Cloud SQL's operations."""

    api = "sqladmin"
    version = "v1"
    lro = "sqladmin"
    proto_package = "google.cloud.sql.v1"
    full_names = False
    merge_patch = True
    etag_checks = False
    kinds = {
        "instances": Kind(
            "instances",
            "DatabaseInstance",
            id_pattern=_NAME,
            id_message="Invalid request: Invalid instance name ({id}).",
            creating={"state": "PENDING_CREATE"},
            ready={"state": "RUNNABLE"},
            deleting={"state": "PENDING_DELETE"},
        ),
        "databases": Kind(
            "databases",
            "Database",
            id_pattern=r"[^\s/]{1,63}",
            id_message="Invalid request: Invalid database name ({id}).",
        ),
        "users": Kind(
            "users",
            "User",
            id_pattern=r"[^\s/]{1,63}",
            id_message="Invalid request: Invalid user name ({id}).",
        ),
    }
    #: Whether a deleted instance's name may be used again at once (Cloud SQL waits a week).
    reuse_deleted_names = False

    def __init__(self, fake: Any) -> None:
        super().__init__(fake)
        self.deleted: set[str] = set()

    def reset(self) -> None:
        self.deleted.clear()

    def body_root(self, method: Any) -> str:
        return "body"  # Cloud SQL's request messages bind their body to a field named body

    # -- messages ----------------------------------------------------------------------------------------

    def missing(self, key: str, kind: Kind | None = None) -> ApiError:
        parts = key.split("/")
        if len(parts) == 4:
            return ApiError(
                "NOT_FOUND", "The Cloud SQL instance does not exist.", reason="instanceDoesNotExist"
            )
        return ApiError("NOT_FOUND", "Not Found", reason="notFound")

    def exists(self, key: str, kind: Kind) -> ApiError:
        if kind.collection == "instances":
            return ApiError(
                "ALREADY_EXISTS", "The Cloud SQL instance already exists.", reason="instanceAlreadyExists"
            )
        return ApiError(
            "ALREADY_EXISTS",
            f"Invalid request: {kind.collection[:-1]} {key.rsplit('/', 1)[-1]} already exists.",
        )

    # -- helpers -----------------------------------------------------------------------------------------

    @staticmethod
    def instance_of(key: str) -> str:
        """The instance a key is of or under: ``projects/p/instances/i``."""
        return "/".join(key.split("/")[:4])

    def busy(self, instance: str) -> None:
        """409 operationInProgress while another operation on the instance runs."""
        for (api, _), op in self.fake.operations.items():
            if api == self.api and not op.done and self.instance_of(op.target) == instance:
                raise ApiError(
                    "ABORTED",
                    "Operation failed because another operation was already in progress.",
                    http=409,
                    reason="operationInProgress",
                )

    def present(self, kind: Kind | None, key: str, resource: dict[str, Any]) -> dict[str, Any]:
        shown = super().present(kind, key, resource)
        shown.pop("password", None)
        shown.pop("rootPassword", None)
        return shown

    # -- rules -------------------------------------------------------------------------------------------

    def validate(
        self, req: Request, kind: Kind, key: str, resource: dict[str, Any], old: dict[str, Any] | None
    ) -> None:
        if kind.collection != "instances":
            self.lookup(self.instance_of(key))
            self.busy(self.instance_of(key))
            return
        project = key.split("/")[1]
        if resource.get("project") not in (None, project):
            raise invalid_request(f"Invalid project {resource['project']} in the request body.")
        if old is not None:
            self.busy(key)
            if resource.get("region") != old.get("region"):
                raise invalid_request("The region of an instance cannot be changed.")
            sent = ((req.raw_body or {}).get("settings") or {}).get("settingsVersion")
            if sent is not None and str(sent) != str(old.get("settings", {}).get("settingsVersion")):
                raise ApiError(
                    "FAILED_PRECONDITION", "Precondition check failed.", http=412, reason="conditionNotMet"
                )
        elif not self.reuse_deleted_names and key in self.deleted:
            raise ApiError(
                "ALREADY_EXISTS",
                "The Cloud SQL instance already exists. When you delete an instance, you can't reuse the "
                "name of the deleted instance until one week from the deletion date.",
                reason="instanceAlreadyExists",
            )
        version = resource.setdefault("databaseVersion", "MYSQL_8_0")
        settings = resource.get("settings")
        if not settings or not settings.get("tier"):
            raise invalid_request("The tier (settings.tier) must be given.")
        edition = settings.get("edition") or default_edition(version)
        if edition == "EDITION_UNSPECIFIED":
            edition = default_edition(version)
        check_tier(settings["tier"], edition, version)
        backup = settings.get("backupConfiguration") or {}
        if backup.get("pointInTimeRecoveryEnabled") and not backup.get("enabled"):
            raise invalid_request("Point-in-time recovery requires backups to be enabled.")
        if backup.get("binaryLogEnabled") and version.startswith("POSTGRES"):
            raise invalid_request(
                "Binary logging is not supported for PostgreSQL; use point-in-time recovery."
            )
        days = backup.get("transactionLogRetentionDays")
        limit = 35 if edition == "ENTERPRISE_PLUS" else 7
        if days is not None and not 1 <= int(days) <= limit:
            raise invalid_request(
                f"The number of transaction log retention days must be between 1 and {limit}."
            )
        retained = (backup.get("backupRetentionSettings") or {}).get("retainedBackups")
        if retained is not None and not 1 <= int(retained) <= 365:
            raise invalid_request("The number of retained backups must be between 1 and 365.")
        ip = settings.get("ipConfiguration") or {}
        public = ip.get("ipv4Enabled", True)
        private = ip.get("privateNetwork")
        if not public and not private and not (ip.get("pscConfig") or {}).get("pscEnabled"):
            raise invalid_request(
                "At least one of Public IP or Private IP or PSC connectivity must be enabled."
            )
        if private and (
            old is None
            or private != (old.get("settings", {}).get("ipConfiguration") or {}).get("privateNetwork")
        ):
            self._check_private_network(key, private)
        mode, legacy = ip.get("sslMode"), ip.get("requireSsl")
        if mode and legacy is not None:
            if mode == "TRUSTED_CLIENT_CERTIFICATE_REQUIRED" and legacy is False:
                raise invalid_request(
                    "sslMode TRUSTED_CLIENT_CERTIFICATE_REQUIRED conflicts with requireSsl=false."
                )
            if mode in ("ALLOW_UNENCRYPTED_AND_ENCRYPTED", "ENCRYPTED_ONLY") and legacy is True:
                raise invalid_request(f"sslMode {mode} conflicts with requireSsl=true.")
        if settings.get("availabilityType") == "REGIONAL" and settings["tier"] in _SHARED:
            raise invalid_request("High availability (REGIONAL) is not supported for shared-core tiers.")

    def _check_private_network(self, key: str, network: str) -> None:
        project, name = key.split("/")[1], key.split("/")[3]
        path = re.sub(r"^.*?(projects/)", r"\1", network)
        compute = self.fake.handlers["compute"]
        if compute.canonical(path) not in compute.store:
            raise invalid_request(
                f"Incorrect Service Networking config for instance: {project}:{name}:NETWORK_NOT_FOUND."
            )
        if not self.fake.handlers["servicenetworking"].connected(project, path):  # type: ignore[attr-defined]
            raise invalid_request(
                f"Incorrect Service Networking config for instance: {project}:{name}:NETWORK_NOT_PEERED."
            )

    # -- outputs -----------------------------------------------------------------------------------------

    def prepare(self, req: Request | None, kind: Kind, key: str, resource: dict[str, Any]) -> None:
        project, name = key.split("/")[1], key.rsplit("/", 1)[-1]
        resource["name"] = name
        resource["etag"] = new_etag()
        instance = self.instance_of(key)
        resource["selfLink"] = f"{SELF_LINK}{key}"
        if kind.collection == "databases":
            resource.update(
                {"kind": "sql#database", "project": project, "instance": instance.rsplit("/", 1)[-1]}
            )
            resource.setdefault("charset", "UTF8")
            resource.setdefault("collation", "en_US.UTF8")
            return
        if kind.collection == "users":
            resource.pop("selfLink")
            resource.update({"kind": "sql#user", "project": project, "instance": instance.rsplit("/", 1)[-1]})
            resource.setdefault("type", "BUILT_IN")
            if "password" in resource:
                resource["_password"] = resource.pop("password")
            return
        region = resource.setdefault("region", "us-central1")
        version = resource["databaseVersion"]
        number = self.fake.project_number(project)
        if "rootPassword" in resource:
            resource["_rootPassword"] = resource.pop("rootPassword")
        settings = resource["settings"]
        edition = settings.get("edition")
        if edition in (None, "EDITION_UNSPECIFIED"):
            settings["edition"] = edition = default_edition(version)
        settings.update({"kind": "sql#settings", "settingsVersion": "1"})
        for field, value in (
            ("availabilityType", "ZONAL"),
            ("activationPolicy", "ALWAYS"),
            ("pricingPlan", "PER_USE"),
            ("dataDiskType", "PD_SSD"),
            ("dataDiskSizeGb", "10"),
            ("storageAutoResize", True),
            ("storageAutoResizeLimit", "0"),
            ("replicationType", "SYNCHRONOUS"),
            ("connectorEnforcement", "NOT_REQUIRED"),
            ("deletionProtectionEnabled", False),
        ):
            settings.setdefault(field, value)
        backup = settings.setdefault("backupConfiguration", {})
        backup.setdefault("enabled", False)
        backup.setdefault("startTime", "03:00")
        backup.setdefault("kind", "sql#backupConfiguration")
        backup.setdefault("transactionLogRetentionDays", 14 if edition == "ENTERPRISE_PLUS" else 7)
        backup.setdefault("backupRetentionSettings", {"retentionUnit": "COUNT", "retainedBackups": 7})
        if version.startswith("POSTGRES"):
            backup.setdefault("pointInTimeRecoveryEnabled", False)
        ip = settings.setdefault("ipConfiguration", {})
        ip.setdefault("ipv4Enabled", True)
        ip.setdefault("sslMode", "ALLOW_UNENCRYPTED_AND_ENCRYPTED")
        ip.setdefault("requireSsl", ip["sslMode"] == "TRUSTED_CLIENT_CERTIFICATE_REQUIRED")
        zone = f"{region}-a"
        settings.setdefault("locationPreference", {"zone": zone, "kind": "sql#locationPreference"})
        stamp = now_rfc3339()
        resource.update(
            {
                "kind": "sql#instance",
                "project": project,
                "connectionName": f"{project}:{region}:{name}",
                "backendType": "SECOND_GEN",
                "instanceType": "CLOUD_SQL_INSTANCE",
                "gceZone": zone,
                "createTime": stamp,
                "databaseInstalledVersion": f"{version}_1",
                "maintenanceVersion": f"{version}_1.R20260101.00_00",
                "serviceAccountEmailAddress": (
                    f"p{number}-{hashlib.sha256(key.encode()).hexdigest()[:6]}@gcp-sa-cloud-sql.iam.gserviceaccount.com"
                ),
            }
        )
        authority = Authority("Google Cloud SQL Server CA")
        resource["_serverCaKey"] = authority.key_pem
        resource["serverCaCert"] = {**authority.describe(), "instance": name}
        if settings["availabilityType"] == "REGIONAL":
            resource["secondaryGceZone"] = f"{region}-b"

    def on_ready(self, kind: Kind, key: str, resource: dict[str, Any]) -> None:
        if kind.collection != "instances":
            return
        ip = resource["settings"].get("ipConfiguration", {})
        digest = int(hashlib.sha256(key.encode()).hexdigest(), 16)
        addresses = []
        if ip.get("ipv4Enabled", True):
            addresses.append(
                {"type": "PRIMARY", "ipAddress": f"34.{digest % 200 + 20}.{digest % 250}.{digest % 240 + 2}"}
            )
        if ip.get("privateNetwork"):
            addresses.append(
                {"type": "PRIVATE", "ipAddress": f"10.{digest % 200 + 20}.{digest % 250}.{digest % 240 + 2}"}
            )
        resource["ipAddresses"] = addresses
        if resource["settings"].get("availabilityType") == "REGIONAL":
            resource["secondaryGceZone"] = f"{resource['region']}-b"
        else:
            resource.pop("secondaryGceZone", None)

    def touch(self, kind: Kind, resource: dict[str, Any]) -> None:
        resource["etag"] = new_etag()
        if kind.collection == "instances" and "settings" in resource:
            version = int(resource["settings"].get("settingsVersion", "0"))
            resource["settings"]["settingsVersion"] = str(version + 1)

    def on_console_change(self, kind: Kind, key: str, resource: dict[str, Any]) -> None:
        if kind.collection == "instances":
            self.on_ready(kind, key, resource)

    # -- verbs -------------------------------------------------------------------------------------------

    def generic_create(self, req: Request) -> dict[str, Any]:
        collection = self.path_key(req)
        if collection.endswith(("/databases", "/users")):
            self.lookup(self.instance_of(collection))
        return super().generic_create(req)

    def generic_delete(self, req: Request) -> dict[str, Any]:
        key = self.path_key(req)
        if key.endswith("/users"):
            name = req.query.get("name")
            if not name:
                raise invalid_request("The user name (name) must be given.")
            key = f"{key}/{name}"
            req.path = f"{self.prefix}{key}"
        if key.count("/") == 3:
            instance = self.lookup(key)
            self.busy(key)
            if instance.get("settings", {}).get("deletionProtectionEnabled"):
                raise invalid_request(
                    "The instance is protected from deletion: set deletionProtectionEnabled to false."
                )
            self.deleted.add(key)
        else:
            self.busy(self.instance_of(key))
            self.lookup(key)
        return super().generic_delete(req)

    def generic_update(self, req: Request) -> dict[str, Any]:
        key = self.path_key(req)
        if not key.endswith("/users"):
            return super().generic_update(req)
        name = req.query.get("name")
        if not name:
            raise invalid_request("The user name (name) must be given.")
        key = f"{key}/{name}"
        kind = self.kinds["users"]
        body = self.body(req)
        old = self.lookup(key, kind)
        new = {**old, **{k: v for k, v in body.items() if k not in ("name", "host")}}
        if "password" in new:
            new["_password"] = new.pop("password")
        return self.store_update(req, kind, key, old, new, "UPDATE")

    def generic_list(self, req: Request) -> dict[str, Any]:
        collection = self.path_key(req)
        if collection.count("/") == 4:
            self.lookup(self.instance_of(collection))
        body = super().generic_list(req)
        body["kind"] = {
            "instances": "sql#instancesList",
            "databases": "sql#databasesList",
            "users": "sql#usersList",
        }[collection.rsplit("/", 1)[-1]]
        return body

    def list_field(self, method: Any, kind: Kind) -> str:
        return "items"

    # -- operations --------------------------------------------------------------------------------------

    def start_operation(
        self,
        req: Request | None,
        verb: str,
        target: str,
        kind: Kind | None,
        complete: Any,
        *,
        delay: float | None = None,
    ) -> dict[str, Any]:
        project = target.split("/")[1]
        instance = self.instance_of(target)
        suffix = {"databases": "_DATABASE", "users": "_USER"}.get(kind.collection if kind else "", "")
        ident = str(uuid.uuid4())
        key = f"projects/{project}/operations/{ident}"
        op = Operation(
            api=self.api,
            style="sqladmin",
            key=key,
            name=ident,
            verb=f"{verb}{suffix}",
            target=target,
            due=time.time() + (self.fake.delay_for(self.api) if delay is None else delay),
            complete=complete,
            extra={
                "project": project,
                "targetId": instance.rsplit("/", 1)[-1],
                "targetLink": f"{SELF_LINK}{instance}",
                "selfLink": f"{SELF_LINK}{key}",
            },
        )
        return self.register(op)

    def list_operations(self, req: Request, collection: str) -> dict[str, Any]:
        instance = req.query.get("instance")
        project = collection.split("/")[1]
        ops = [
            op
            for (api, _), op in sorted(self.fake.operations.items(), key=lambda item: -item[1].started)
            if api == self.api
            and op.extra.get("project") == project
            and (not instance or op.extra.get("targetId") == instance)
        ]
        page, token = self.paginate(req, ops)

        body: dict[str, Any] = {"kind": "sql#operationsList"}
        if page:
            body["items"] = [render(op) for op in page]
        if token:
            body["nextPageToken"] = token
        return body

    def do_restart(self, req: Request) -> dict[str, Any]:
        """Restarts an instance (an operation, nothing else changes)."""
        key = self.path_key(req).removesuffix("/restart")
        self.lookup(key)
        self.busy(key)
        return self.start_operation(req, "RESTART", key, self.kinds["instances"], lambda: None)

    # -- connecting: what Google's Cloud SQL connectors call ------------------------------------------

    def generic_get(self, req: Request) -> dict[str, Any]:
        if req.method.id == "sql.connect.get":
            return self._connect_settings(self.path_key(req).removesuffix("/connectSettings"))
        return super().generic_get(req)

    def _connect_settings(self, key: str) -> dict[str, Any]:
        instance = self.lookup(key)
        return {
            "kind": "sql#connectSettings",
            "serverCaCert": instance["serverCaCert"],
            "ipAddresses": instance.get("ipAddresses", []),
            "region": instance.get("region"),
            "databaseVersion": instance.get("databaseVersion"),
            "backendType": instance.get("backendType"),
            "connectionName": instance.get("connectionName"),
            "pscEnabled": False,
        }

    def do_generateEphemeral(self, req: Request) -> dict[str, Any]:
        """Signs the caller's RSA public key (PEM): a client certificate for the instance, valid an hour
        (or ``validDuration``, 5 minutes to an hour), as mutual TLS with Cloud SQL needs."""
        key = self.path_key(req)
        instance = self.lookup(key)
        if instance.get("state") != "RUNNABLE":
            raise invalid_request(f"The instance is {instance.get('state')}, not RUNNABLE.")
        body = self.body(req)
        public = body.get("public_key") or ""
        if not public:
            raise invalid_request("public_key must be given.")
        from cryptography.hazmat.primitives.asymmetric import rsa
        from cryptography.hazmat.primitives.serialization import load_pem_public_key

        try:
            loaded = load_pem_public_key(public.encode())
        except ValueError:
            raise invalid_request("public_key is not a PEM-encoded public key.") from None
        if not isinstance(loaded, rsa.RSAPublicKey) or loaded.key_size < 2048:
            raise invalid_request("public_key must be an RSA key of at least 2048 bits.")
        seconds = 3600
        if body.get("validDuration"):
            seconds = int(float(str(body["validDuration"]).removesuffix("s")))
            if not 300 <= seconds <= 3600:
                raise invalid_request("validDuration must be between 5 minutes and 1 hour.")
        return {"ephemeralCert": _client_certificate(loaded, instance, seconds)}

    # -- for tests: what a real server behind an instance would present -----------------------------

    def server_identity(self, instance: str) -> tuple[str, str]:
        """A server certificate and its key (PEM) for instance ``instance`` (``projects/p/instances/i``),
        signed by the instance's server CA: what a test's PostgreSQL presents in the instance's place."""
        from cryptography.hazmat.primitives import serialization
        from cryptography.hazmat.primitives.asymmetric import ec

        with self.fake.lock:
            resource = self.lookup(self.canonical(instance))
            authority = Authority(
                "Google Cloud SQL Server CA", resource["_serverCaKey"], resource["serverCaCert"]["cert"]
            )
            name = f"{resource['project']}:{resource['name']}"
        key = ec.generate_private_key(ec.SECP256R1())
        certificate = authority.issue(key.public_key(), name, 86400)
        key_pem = key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
        return certificate.public_bytes(serialization.Encoding.PEM).decode(), key_pem.decode()

    @staticmethod
    def client_ca() -> str:
        """The certificate (PEM) of the CA that signs ephemeral client certificates: what a test's
        PostgreSQL trusts for client certificates, as Cloud SQL does."""
        return client_authority().describe()["cert"]


class Authority:
    """A certificate authority of the fake's own (an EC P-256 key and its self-signed certificate): the
    server CA of an instance, or the CA that signs ephemeral client certificates."""

    def __init__(self, name: str, key_pem: str | None = None, cert_pem: str | None = None) -> None:
        from cryptography import x509
        from cryptography.hazmat.primitives import serialization
        from cryptography.hazmat.primitives.asymmetric import ec

        self.name = name
        if key_pem is None or cert_pem is None:
            self.key: Any = ec.generate_private_key(ec.SECP256R1())
            self.certificate = self._sign(self.key.public_key(), name, 10 * 365 * 86400, authority=True)
        else:
            self.key = serialization.load_pem_private_key(key_pem.encode(), password=None)
            self.certificate = x509.load_pem_x509_certificate(cert_pem.encode())

    @property
    def key_pem(self) -> str:
        """The private key, PEM (kept in the fake's hidden fields, never answered)."""
        from cryptography.hazmat.primitives import serialization

        return self.key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        ).decode()

    def _sign(self, public: Any, common_name: str, seconds: int, *, authority: bool = False) -> Any:
        import datetime

        from cryptography import x509
        from cryptography.hazmat.primitives import hashes
        from cryptography.x509.oid import NameOID

        now = datetime.datetime.now(datetime.UTC)
        issuer = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, self.name)])
        builder = (
            x509.CertificateBuilder()
            .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)]))
            .issuer_name(issuer)
            .public_key(public)
            .serial_number(1 if authority else x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(minutes=1))
            .not_valid_after(now + datetime.timedelta(seconds=seconds))
            .add_extension(x509.BasicConstraints(ca=authority, path_length=None), critical=True)
        )
        return builder.sign(self.key, hashes.SHA256())

    def issue(self, public: Any, common_name: str, seconds: int) -> Any:
        """A certificate for ``public`` named ``common_name``, valid ``seconds``."""
        return self._sign(public, common_name, seconds)

    def describe(self, certificate: Any = None) -> dict[str, Any]:
        """``certificate`` (by default the CA's own) as Cloud SQL's ``SslCert``."""
        from cryptography.hazmat.primitives import hashes, serialization

        certificate = certificate or self.certificate
        return {
            "kind": "sql#sslCert",
            "cert": certificate.public_bytes(serialization.Encoding.PEM).decode(),
            "certSerialNumber": str(certificate.serial_number),
            "commonName": certificate.subject.rfc4514_string(),
            "createTime": certificate.not_valid_before_utc.strftime("%Y-%m-%dT%H:%M:%S.%fZ"),
            "expirationTime": certificate.not_valid_after_utc.strftime("%Y-%m-%dT%H:%M:%S.%fZ"),
            "sha1Fingerprint": certificate.fingerprint(hashes.SHA1()).hex(),
        }


_CLIENT_CA: list[Authority] = []


def client_authority() -> Authority:
    """The CA that signs the fake's ephemeral client certificates (one per process)."""
    if not _CLIENT_CA:
        _CLIENT_CA.append(Authority("FAKE Google Cloud SQL Client CA"))
    return _CLIENT_CA[0]


def _client_certificate(public: Any, instance: dict[str, Any], seconds: int) -> dict[str, Any]:
    """An X.509 client certificate for ``public``, signed by the fake's client CA."""
    authority = client_authority()
    certificate = authority.issue(public, f"{instance['project']}:{instance['name']}", seconds)
    return {**authority.describe(certificate), "instance": instance["name"]}

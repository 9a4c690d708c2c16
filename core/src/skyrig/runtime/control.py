"""The service host's control endpoints: requests under :data:`PREFIX` that carry the run's token in
header :data:`HEADER` (``POST /__skyrig/cron/JOB`` runs a cron job's endpoint now). The token reaches
the service process in :data:`TOKEN_VARIABLE`; ``skyrig run`` makes one per run (:mod:`skyrig.run`)."""

PREFIX = "/__skyrig/"
HEADER = "x-skyrig-token"
TOKEN_VARIABLE = "SKYRIG_CONTROL_TOKEN"

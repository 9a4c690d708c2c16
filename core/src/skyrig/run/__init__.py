"""``skyrig run``: an app's services served on this machine, each as a process under a supervisor, with
the local environment provisioned first, the dashboard beside them, and code changes reloaded.

- :mod:`~skyrig.run.runner`: provisioning, starting and stopping everything of one run;
- :mod:`~skyrig.run.supervisor`: the service processes;
- :mod:`~skyrig.run.watch`: reloading on code changes;
- :mod:`~skyrig.run.runfile`: how ``skyrig cron run`` and the dashboard find a running ``skyrig run``.

The service processes themselves run the in-app SDK (:mod:`skyrig.runtime`).
"""

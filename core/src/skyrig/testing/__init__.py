"""Testing apps built on skyrig: what ``skyrig test`` gives an app's own tests.

``skyrig test`` runs an app's tests with the pytest plugin :mod:`skyrig.testing.plugin` (inert in any
other pytest run) and its fixtures (:mod:`skyrig.testing.fixtures`), over the harness
(:mod:`skyrig.testing.harness`): in-process pub/sub (:mod:`skyrig.testing.pubsub`) and the providers'
test servers (:mod:`skyrig.testing.support`).

Running the ``skyrig`` command itself in tests (skyrig's own, and provider authors') is
:mod:`skyrig.cli.testing`.
"""

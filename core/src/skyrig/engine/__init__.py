"""The engine: the infrastructure graph (:mod:`~skyrig.engine.graph`), dependency order
(:mod:`~skyrig.engine.dag`), plans (:mod:`~skyrig.engine.plan`), applying them
(:mod:`~skyrig.engine.apply`), the runtime configs an apply writes (:mod:`~skyrig.engine.runtime_config`)
and the session that opens an environment for a command (:mod:`~skyrig.engine.session`). The node type
contract (:mod:`~skyrig.engine.contract`) is what providers implement; they reach it through
:mod:`skyrig.provider`."""

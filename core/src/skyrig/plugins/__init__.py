"""Plugin machinery: manifests (:mod:`~skyrig.plugins.manifest`), the provider base
(:mod:`~skyrig.plugins.base`), optional capabilities (:mod:`~skyrig.plugins.capabilities`), loading
named plugins (:mod:`~skyrig.plugins.registry`) and checking a model against an environment's providers
(:mod:`~skyrig.plugins.support`). Provider authors use :mod:`skyrig.provider`, which re-exports what is
public here."""

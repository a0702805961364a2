"""Mock catalogues: the reflex model (:mod:`~jaxhalo.mocks.reflex`), Li et al. halo populations
(:mod:`~jaxhalo.mocks.populations`) and cold substructure (:mod:`~jaxhalo.mocks.substructure`).
"""

"""validation: OpenMM simulation of q-TIP4P/F water, water observables, and the MAP release gate.

Imports map_core; map_core never imports this package.
"""

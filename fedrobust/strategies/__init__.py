"""Flower strategies (server logic) for robust federated learning.

Each strategy is a thin class over the pure functions of :mod:`fedrobust.aggregators` and
:mod:`fedrobust.compression`.
"""

"""Printing what a step would send: the ``--curl`` scripts and the credential formats.

Imports ``core``, ``transport`` and ``auth``.
"""

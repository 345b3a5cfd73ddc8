"""Calling the model: payloads, REST and gRPC routing, the readiness check, and what a model's answer means.

Imports ``core``, ``transport`` and ``auth``.
"""

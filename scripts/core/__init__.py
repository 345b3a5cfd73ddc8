"""The bottom layer: errors and exit codes, the injected environment, the .env state, the key table, values, and the step protocol.

Imports nothing else of ``scripts``; everything above builds on it (docs/architecture.md).
"""

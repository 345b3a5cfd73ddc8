"""Logging in: credentials and where they may go, Dex's pages, the gateway's signals, and the one login walk.

Imports only ``core`` and ``transport``.
"""

"""The tasks that are not one step: login, logout, doctor, status, profiles, init, load, locust and the sandbox.

They chain the steps (the modules of ``scripts/`` itself) and the layers below; the catalog lists them by name.
"""

"""A local stand-in cluster: real MLServer, and stand-ins for Istio + Dex and the Kubernetes API.

Everything listens on 127.0.0.1 on free ports.  ``sandbox.control`` starts and
stops it; the stand-ins follow the real components (``docs/auth-flows.md``, ``docs/real-components.md``).
"""

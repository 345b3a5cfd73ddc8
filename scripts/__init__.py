"""One module per documented step of calling a KServe model behind Kubeflow's Dex login.

The step modules (``resolve_ingress``, ``fetch_req``, ``authenticate``, ``approve``,
``extract_cookie``, ``expose_nodeport``, ``infer``) each do one thing, read the
state they need from the .env file and return the keys they produce.  The other
modules are what the steps share: the .env state, the HTTP session and its retry
policy, Dex page parsing, cookies, kubectl, the injected environment and errors.
"""

__version__ = "0.2.0"  # the one place the version is written (pyproject.toml reads it from here)

"""The Kubeflow Pipelines API stand-in, behind the gateway's session check like the real one at ``/pipeline``.

Only what ``kfp.Client`` (the real SDK) calls when it is made and for one
listing: ``GET /pipeline/apis/v2beta1/healthz`` (a multi-user deployment, as
Kubeflow's is) and ``GET /pipeline/apis/v2beta1/pipelines`` (one pipeline).
Anything else under the prefix answers 404 as the API server's gRPC gateway does.
"""

from __future__ import annotations

import json

from .httpserve import Reply, Request

PREFIX = "/pipeline/apis/v2beta1/"
PIPELINE = {
    "pipeline_id": "5e1c4c8e-7f3b-4a5e-9d43-1b2f0d6a7c10",
    "display_name": "[Tutorial] Data passing in python components",
    "description": "the sandbox's one pipeline",
    "created_at": "2026-11-01T00:00:00Z",
}


def answer(request: Request) -> Reply:
    """The API server's answer to an authenticated request under PREFIX."""
    resource = request.path[len(PREFIX) :]
    if request.method == "GET" and resource == "healthz":
        return Reply.json_text(200, json.dumps({"multi_user": True}))
    if request.method == "GET" and resource == "pipelines":
        return Reply.json_text(200, json.dumps({"pipelines": [PIPELINE], "total_size": 1}))
    return Reply.json_text(404, json.dumps({"error": "Not Found", "code": 5, "message": "Not Found", "details": []}))

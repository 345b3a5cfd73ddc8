"""Load through the auth path: the in-process engine, its report and progress line, and the Locust runner.

``engine`` sends one request over keep-alive connections from C threads and
records every answer; ``report`` turns that into the table, the JSON object
and the HTML charts; ``progress`` draws the live line on stderr;
``locust_run`` starts Locust's master and workers with ``locustfile``.  The
tasks that use them are declared in ``scripts/load_tasks.py``.  Nothing here
is imported to list tasks.
"""

"""Load through the auth path: the in-process engine, its report and progress line, and the Locust runner.

``engine`` sends one request over keep-alive connections from C threads and
records every answer (``curlmulti``: the same from one thread over libcurl's
multi interface, when pycurl is installed); ``rate`` sends it at a fixed rate,
each latency counted from its due time; ``sweep`` runs one fixed rate after
another and finds the knee; ``report`` turns a run into the table and the
JSON object, ``page`` into the HTML report; ``progress`` draws the live line
on stderr;
``locust_run`` starts Locust's master and workers with ``locustfile``.  The
tasks that use them are declared in ``scripts/commands/load_tasks.py``.  Nothing here
is imported to list tasks.
"""

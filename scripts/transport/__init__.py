"""How a call travels: the HTTP client and its retries, the settings read from the .env, cookies, redirects, kubectl.

Imports only ``core``.
"""

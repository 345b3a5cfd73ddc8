"""The application: the catalog of every task and the ``kfdex``/``invoke`` program around it.

The top layer: nothing imports it.
"""
